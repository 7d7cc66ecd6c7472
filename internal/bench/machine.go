package bench

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the benchmark ran.
type Machine struct {
	CPU        string    `json:"cpu"`
	Cores      int       `json:"cores"`
	GOOS       string    `json:"goos"`
	GOARCH     string    `json:"goarch"`
	GoVersion  string    `json:"go_version"` // the go command that built the binaries
	BenchGo    string    `json:"bench_go"`   // the Go that built wxbench itself
	Kernel     string    `json:"kernel"`     // from /proc/sys/kernel/osrelease
	Date       time.Time `json:"date"`
	Hostname   string    `json:"hostname,omitempty"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	// LoadStart and LoadEnd are the 1-minute load averages when the run
	// started and ended: other work on the machine inflates every timing.
	LoadStart float64 `json:"loadavg_start"`
	LoadEnd   float64 `json:"loadavg_end"`
}

// LoadAverage returns the 1-minute load average, or -1 when unknown.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// DescribeMachine collects the machine facts; goCmd is the go command used
// for the builds.
func DescribeMachine(ctx context.Context, goCmd string) Machine {
	m := Machine{
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		BenchGo:    runtime.Version(),
		Date:       time.Now().UTC().Truncate(time.Second),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		LoadStart:  LoadAverage(),
	}
	m.GoVersion = m.BenchGo
	if out, err := exec.CommandContext(ctx, goCmd, "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Hostname, _ = os.Hostname()
	return m
}

// cpuModel returns the first "model name" (x86) or a "Hardware"/"CPU part"
// description (arm) from /proc/cpuinfo, or runtime.GOARCH.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	var fallback string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			return v
		case "Hardware", "CPU part", "Model":
			if fallback == "" {
				fallback = k + " " + v
			}
		}
	}
	if fallback != "" {
		return fallback
	}
	return runtime.GOARCH
}
