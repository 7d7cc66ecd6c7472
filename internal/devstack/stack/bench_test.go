package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGetMe drives authorized GET /me through a local stack (in-memory
// dynalite, free ports) from 16 keep-alive connections, as `make bench`'s
// throughput run does, and reports the CPU time per request of each
// process: this one (gateway, Runtime API, load generator), the function
// instances and dynalite. Profile the Go side with
//
//	go test -run '^$' -bench GetMe -benchtime 10000x -cpuprofile /tmp/cpu.out ./internal/devstack/stack/
//
// and the function processes with `perf record -a -g` during the run:
// BENCH_FUNCTION_BINARIES=dir swaps in dir/authorizer and dir/api (e.g.
// unstripped `go build -tags lambda.norpc` builds, which perf can
// symbolize; their CPU is then reported as "other").
func BenchmarkGetMe(b *testing.B) {
	if testing.Short() {
		b.Skip("builds the functions and starts dynalite")
	}
	const conns = 16
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, file, _, _ := runtime.Caller(0)
	s, err := Start(ctx, Options{
		Root: filepath.Join(filepath.Dir(file), "..", "..", ".."), APIAddr: "127.0.0.1:0", WeChatAddr: "127.0.0.1:0", DynamoAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		LogOut: io.Discard,
		Getenv: func(string) string { return "" },
	})
	if err != nil {
		b.Fatalf("Start: %v", err)
	}
	defer s.Close()
	if dir := os.Getenv("BENCH_FUNCTION_BINARIES"); dir != "" {
		// For perf: unstripped builds of the two functions GET /me uses.
		s.Pool("AuthorizerFunction").Replace(filepath.Join(dir, "authorizer"))
		s.Pool("ApiFunction").Replace(filepath.Join(dir, "api"))
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute,
	}}
	defer c.CloseIdleConnections()
	do := func(method, url, auth, body string) (int, []byte, error) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return 0, nil, err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		rb, err := io.ReadAll(resp.Body)
		return resp.StatusCode, rb, err
	}
	sids := make([]string, conns)
	for i := range sids {
		code, err := s.Emulator.IssueCode("", "")
		if err != nil {
			b.Fatal(err)
		}
		st, body, err := do(http.MethodPost, s.APIURL+"/login", "", `{"code":"`+code+`"}`)
		if err != nil || st != http.StatusOK {
			b.Fatalf("login: %d %s %v", st, body, err)
		}
		var r struct {
			SessionID string `json:"session_id"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			b.Fatal(err)
		}
		sids[i] = r.SessionID
	}
	run := func(n int) {
		var next atomic.Int64
		var errs atomic.Int64
		var first atomic.Value
		var wg sync.WaitGroup
		for _, sid := range sids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					st, body, err := do(http.MethodGet, s.APIURL+"/me", sid, "")
					if err != nil || st != http.StatusOK {
						errs.Add(1)
						first.CompareAndSwap(nil, fmt.Sprintf("%d %s %v", st, body, err))
					}
				}
			}()
		}
		wg.Wait()
		if errs.Load() > 0 {
			b.Fatalf("%d errors, first: %v", errs.Load(), first.Load())
		}
	}
	run(2000) // warm-up: the pools start their instances
	before := procCPU()
	b.ResetTimer()
	t0 := time.Now()
	run(b.N)
	el := time.Since(t0)
	b.StopTimer()
	after := procCPU()
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	for comp, t := range after {
		if t == before[comp] {
			continue
		}
		b.ReportMetric(float64(t-before[comp])*10/float64(b.N), "cpu-ms/op-"+comp)
	}
}

// procCPU returns utime+stime ticks of this process and its children by
// component.
func procCPU() map[string]int64 {
	self := os.Getpid()
	out := map[string]int64{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		ppid, _ := strconv.Atoi(f[1])
		if pid != self && ppid != self {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stt, _ := strconv.ParseInt(f[12], 10, 64)
		comp := "self"
		if pid != self {
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			switch c := string(cmd); {
			case strings.Contains(c, "dynalite"):
				comp = "dynalite"
			case strings.Contains(c, "AuthorizerFunction"):
				comp = "authorizer"
			case strings.Contains(c, "ApiFunction"):
				comp = "api"
			default:
				comp = "other"
			}
		}
		out[comp] += ut + stt
	}
	return out
}
