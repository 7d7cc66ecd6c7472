package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// CPUShare is the CPU time one component used during the load run.
type CPUShare struct {
	Component string  `json:"component"`
	Processes int     `json:"processes"`
	Seconds   float64 `json:"cpu_seconds"`
}

// userHZ is Linux's USER_HZ, the unit of /proc/<pid>/stat times.
const userHZ = 100

// cpuSnapshot returns utime+stime (ticks) of this process and of its
// direct children (the function instances and dynalite), by pid, with the
// component each belongs to. It returns nil where /proc is unavailable.
func cpuSnapshot() map[int]cpuSample {
	self := os.Getpid()
	out := map[int]cpuSample{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, ticks, ok := procTicks(pid)
		if !ok || (pid != self && ppid != self) {
			continue
		}
		comp := "wxbench process (load generator, gateway, Runtime API, emulator)"
		if pid != self {
			comp = classify(pid)
		}
		out[pid] = cpuSample{comp: comp, ticks: ticks}
	}
	return out
}

type cpuSample struct {
	comp  string
	ticks int64
}

// procTicks reads the parent pid and utime+stime of pid.
func procTicks(pid int) (ppid int, ticks int64, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, ut + st, true
}

// classify names a child process by its command line.
func classify(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	cmd := string(b)
	switch {
	case strings.Contains(cmd, "dynalite"):
		return "dynalite (node)"
	case strings.Contains(cmd, AuthorizerFunction):
		return "authorizer instances"
	case strings.Contains(cmd, APIFunction):
		return "api instances"
	case strings.Contains(cmd, LoginFunction):
		return "login instances"
	default:
		return "other child processes"
	}
}

// cpuDelta sums the CPU used between two snapshots by component, largest
// first. Processes that started in between count from zero.
func cpuDelta(before, after map[int]cpuSample) []CPUShare {
	by := map[string]*CPUShare{}
	for pid, a := range after {
		d := a.ticks - before[pid].ticks
		s := by[a.comp]
		if s == nil {
			s = &CPUShare{Component: a.comp}
			by[a.comp] = s
		}
		s.Processes++
		s.Seconds += float64(d) / userHZ
	}
	out := make([]CPUShare, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seconds != out[j].Seconds {
			return out[i].Seconds > out[j].Seconds
		}
		return out[i].Component < out[j].Component
	})
	return out
}
