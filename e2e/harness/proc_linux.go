package harness

import "syscall"

// sysProcAttr kills a child when the test process dies without cleaning up,
// so no stray server outlives a crashed run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
