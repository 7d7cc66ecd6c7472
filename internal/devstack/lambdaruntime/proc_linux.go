//go:build linux

package lambdaruntime

import (
	"bytes"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
)

// sysProcAttr puts the child in its own process group (so killGroup reaches
// everything it started) and kills it if the parent thread dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// procStatus reads a child's peak resident set size (VmHWM) from
// /proc/<pid>/status through a descriptor opened once, right after the
// start: every invocation reads it (REPORT's Max Memory Used), and one
// pread costs about half of an open+read+close. The descriptor also stays
// bound to this process, so a recycled pid is never read by mistake.
type procStatus struct {
	mu  sync.Mutex
	fd  int // -1: unavailable or closed
	buf []byte
}

func openProcStatus(pid int) *procStatus {
	s := &procStatus{fd: -1}
	if pid <= 0 {
		return s
	}
	fd, err := syscall.Open("/proc/"+strconv.Itoa(pid)+"/status", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err == nil {
		s.fd = fd
	}
	return s
}

// hwm returns VmHWM in bytes, or 0 (closed, exited, unreadable).
func (s *procStatus) hwm() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return 0
	}
	if s.buf == nil {
		s.buf = make([]byte, 4096)
	}
	for {
		// The file is generated whole on each read from offset 0.
		n, err := syscall.Pread(s.fd, s.buf, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return 0
		}
		if n == len(s.buf) && len(s.buf) < 1<<20 {
			s.buf = make([]byte, 2*len(s.buf))
			continue
		}
		return parseHWM(s.buf[:n])
	}
}

func (s *procStatus) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd >= 0 {
		_ = syscall.Close(s.fd)
		s.fd = -1
	}
}

// parseHWM returns the VmHWM line's value of a /proc/<pid>/status file in
// bytes, or 0.
func parseHWM(b []byte) int64 {
	i := bytes.Index(b, []byte("\nVmHWM:"))
	if i < 0 {
		return 0
	}
	rest := b[i+len("\nVmHWM:"):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	f := bytes.Fields(rest) // "12345", "kB"
	if len(f) == 0 {
		return 0
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0
	}
	return kb * 1024
}

// exitedRSS returns the peak RSS of an exited child from its rusage, in bytes.
func exitedRSS(cmd *exec.Cmd) int64 {
	if cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024 // kilobytes on Linux
	}
	return 0
}
