package main

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe for the logger's flushing goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsAreWrittenByClose: lines are buffered off the caller's path, and
// close writes every one of them, in order, before the command returns.
func TestLogsAreWrittenByClose(t *testing.T) {
	out := &lockedBuffer{}
	o := &logOptions{format: "json", out: out}
	log, closeLogs := o.setup()
	for i := range 3 {
		log.Info("admission decision", "n", i)
	}
	closeLogs()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines written, want 3:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if !strings.Contains(l, `"msg":"admission decision"`) || !strings.Contains(l, `"n":`+string(rune('0'+i))) {
			t.Errorf("line %d is %s", i, l)
		}
	}
}

// syncCounter is a log destination that counts fsyncs.
type syncCounter struct {
	lockedBuffer
	syncs atomic.Int32
}

func (s *syncCounter) Sync() error { s.syncs.Add(1); return nil }

// TestLogsAreNeverSynced: flushing writes the lines but does not fsync the
// destination, which would hold every admission while the disk catches up.
func TestLogsAreNeverSynced(t *testing.T) {
	out := &syncCounter{}
	log, closeLogs := (&logOptions{format: "json", out: out}).setup()
	log.Info("admission decision")
	closeLogs()
	if !strings.Contains(out.String(), "admission decision") {
		t.Fatalf("the line was not written: %q", out.String())
	}
	if n := out.syncs.Load(); n != 0 {
		t.Errorf("the destination was synced %d times, want 0", n)
	}
}

// TestLogSampling: below --v=2 a burst of lines with one message is
// sampled; from --v=2 on every line is written.
func TestLogSampling(t *testing.T) {
	const burst = 300
	for _, tc := range []struct {
		verbosity int
		sampled   bool
	}{{0, true}, {1, true}, {2, false}} {
		out := &lockedBuffer{}
		log, closeLogs := (&logOptions{format: "json", verbosity: tc.verbosity, out: out}).setup()
		for range burst {
			log.Info("admission decision")
		}
		closeLogs()
		// A burst crosses at most one second boundary, so sampling lets
		// at most 2×100 lines and a few more through.
		n := strings.Count(out.String(), "\n")
		if tc.sampled && (n < 100 || n > 210) {
			t.Errorf("--v=%d: %d of %d lines written, want sampling (100 to 210)", tc.verbosity, n, burst)
		}
		if !tc.sampled && n != burst {
			t.Errorf("--v=%d: %d of %d lines written, want all", tc.verbosity, n, burst)
		}
	}
}
