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

// readHWM is not available without /proc; the REPORT line shows 0 MB.
func readHWM(int) int64 { return 0 }

// exitedRSS is not reported outside Linux.
func exitedRSS(*exec.Cmd) int64 { return 0 }
