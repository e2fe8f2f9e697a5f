package bench

import (
	"fmt"

	"github.com/prometheus/procfs"
)

// cpuSeconds is the user plus system CPU time the process has used so far,
// all threads, from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, fmt.Errorf("read /proc of pid %d: %w", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	return st.CPUTime(), nil
}

// rssBytes is the process's resident set size.
func rssBytes(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, fmt.Errorf("read /proc of pid %d: %w", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	return float64(st.ResidentMemory()), nil
}
