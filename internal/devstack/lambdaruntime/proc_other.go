//go:build unix && !linux

package lambdaruntime

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts the child in its own process group so killGroup reaches
// everything it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// procStatus would read the peak RSS; without /proc the REPORT line shows 0 MB.
type procStatus struct{}

func openProcStatus(int) *procStatus { return &procStatus{} }
func (*procStatus) hwm() int64       { return 0 }
func (*procStatus) close()           {}

// exitedRSS is not reported outside Linux.
func exitedRSS(*exec.Cmd) int64 { return 0 }
