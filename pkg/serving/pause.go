package serving

import (
	"sync"
	"sync/atomic"
	"time"
)

// pauseClock measures how long this process was not running: stopped
// (SIGSTOP, a frozen cgroup) or starved of CPU. A deadline set before a
// pause expires during it, and the next read then fails even though the
// client's bytes arrived in time (Go reports a passed deadline before it
// looks at the socket). A conn extends its deadlines by the pauses that
// fell inside them, so a pause never becomes a closed connection under a
// request in flight (issue: "EOF on reused keep-alive connections").
type pauseClock struct {
	once   sync.Once
	last   atomic.Int64 // monotonic nanoseconds of the last tick
	paused atomic.Int64 // nanoseconds not running, summed over gaps
}

const (
	pauseTick = 20 * time.Millisecond
	// pauseMin is the gap between ticks that counts as a pause; shorter
	// ones are scheduling noise.
	pauseMin = 200 * time.Millisecond
)

// epoch makes monotonic readings small integers.
var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

var pauses pauseClock

func (p *pauseClock) start() {
	p.once.Do(func() {
		p.last.Store(monotonic())
		go func() {
			t := time.NewTicker(pauseTick)
			for range t.C {
				now := monotonic()
				if gap := now - p.last.Load(); gap > int64(pauseMin) {
					p.paused.Add(gap - int64(pauseTick))
				}
				p.last.Store(now)
			}
		}()
	})
}

// total is the time not running since the clock started, including a
// pause that has just ended and that the ticker has not counted yet: the
// first code to run after SIGCONT may be the read whose deadline passed.
func (p *pauseClock) total() time.Duration {
	n := p.paused.Load()
	if gap := monotonic() - p.last.Load(); gap > int64(pauseMin) {
		n += gap - int64(pauseTick)
	}
	return time.Duration(n)
}
