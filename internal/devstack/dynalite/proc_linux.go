package dynalite

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts dynalite in its own process group (so Stop can signal
// the whole group) and has the kernel kill it if this process dies without
// calling Stop (a test binary killed by -timeout must not leak servers).
// Pdeathsig is tied to the starting OS thread, which Start keeps locked for
// the child's lifetime.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
