//go:build unix

package admissionjson

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the test process has used, in all its
// threads: on a machine shared with other work, wall time per operation
// also counts the time the benchmark waited for a core.
func processCPU() (time.Duration, bool) {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0, false
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()), true
}
