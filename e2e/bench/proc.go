package bench

import (
	"fmt"
	"time"

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

// peakRSSBytes is the process's peak resident set size since it started
// (VmHWM in /proc/PID/status).
func peakRSSBytes(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, fmt.Errorf("read /proc of pid %d: %w", pid, err)
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	return float64(st.VmHWM), nil
}

// sampleRSS reads pid's resident set size every interval until stop is
// closed, and then sends the largest it saw (0 if none could be read).
func sampleRSS(pid int, interval time.Duration, stop <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		peak := 0.0
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v, err := rssBytes(pid); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}
