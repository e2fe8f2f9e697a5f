package main

import (
	"bytes"
	"strings"
	"sync"
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
