//go:build unix

package lambdaruntime

import "syscall"

// killGroup sends SIGKILL to the process group led by pid (children are
// started with Setpgid, so the group id is the child's pid). A pid ≤ 1 is
// refused: kill(-0) or kill(-1) would hit our own group or every process.
func killGroup(pid int) {
	if pid <= 1 {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
