// Command wxbench is `make bench`: it measures wxsession against its
// performance budgets and prints a table (stdout) and, with -out, writes
// the same results as JSON. Progress and the raw `go test -bench` output go
// to stderr. See bench/README.md.
//
// It exits 0 when every measurement could be made, even if a budget fails
// (the table says FAIL); with -strict, a failed budget exits 1. It exits 2
// when a measurement could not be made.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/wxsession/wxsession/internal/bench"
)

func main() { os.Exit(run()) }

// run is main, returning the exit status so that deferred calls run.
func run() int {
	var (
		cfg     bench.Config
		out     = flag.String("out", "", "write the results as JSON to this file")
		strict  = flag.Bool("strict", false, "exit 1 when a budget fails")
		noBench = flag.Bool("no-gobench", false, "skip the go test benchmarks")
		timeout = flag.Duration("timeout", 10*time.Minute, "give up after this long")
		cpuProf = flag.String("cpuprofile", "", "write a CPU profile of the wxbench process (load generator, local gateway, Runtime API, emulator) to this file")
	)
	flag.StringVar(&cfg.Root, "root", "", "repository root (default: the nearest go.mod above the working directory)")
	flag.StringVar(&cfg.Go, "go", "go", "go command used for the builds and the benchmarks")
	flag.BoolVar(&cfg.Quick, "quick", false, "tiny sample sizes: checks that everything runs, numbers mean nothing")
	flag.IntVar(&cfg.ColdRuns, "cold-runs", 0, "timed cold starts per function (default 101)")
	flag.IntVar(&cfg.MeRequests, "me-requests", 0, "sequential GET /me requests (default 2000)")
	flag.IntVar(&cfg.Logins, "logins", 0, "sequential POST /login requests (default 200)")
	flag.IntVar(&cfg.LoadConns, "conns", 0, "connections of the GET /me load (default 16)")
	flag.DurationVar(&cfg.LoadDuration, "load-duration", 0, "duration of the GET /me load (default 5s)")
	flag.BoolVar(&cfg.WarmOnly, "warm-only", false, "only warm latency and throughput (and the Go benchmarks unless -no-gobench): no sizes, cold starts or DynamoDB counts")
	flag.StringVar(&cfg.GoBenchTime, "benchtime", "", "go test -benchtime (default: go's)")
	flag.Parse()
	cfg.GoBench = !*noBench
	cfg.Progress = os.Stderr

	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "wxbench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	r, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wxbench:", err)
		return 2
	}
	if err := r.WriteText(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wxbench:", err)
		return 2
	}
	if *out != "" {
		if err := r.WriteJSON(*out); err != nil {
			fmt.Fprintln(os.Stderr, "wxbench:", err)
			return 2
		}
		fmt.Fprintln(os.Stderr, "wxbench: wrote", *out)
	}
	if *strict && !r.Pass() {
		return 1
	}
	return 0
}
