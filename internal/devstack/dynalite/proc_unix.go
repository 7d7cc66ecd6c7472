//go:build unix && !linux

package dynalite

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts dynalite in its own process group so Stop can signal the
// whole group.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
