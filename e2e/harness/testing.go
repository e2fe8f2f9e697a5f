package harness

import (
	"context"
	"os"
	"strings"
	"testing"
)

// StartForTest starts a Stack for one test in a fresh directory. Cleanup
// stops every process; when the test failed it prints each process's log
// tail and keeps the directory (its path is logged).
func StartForTest(t testing.TB, bins *Binaries, o Options) *Stack {
	t.Helper()
	dir, err := os.MkdirTemp("", "irsa-e2e-"+strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())+"-")
	if err != nil {
		t.Fatalf("create stack dir: %v", err)
	}
	o.Dir, o.Binaries = dir, bins
	if o.Progress == nil {
		o.Progress = testWriter{t}
	}
	s, err := Start(context.Background(), o)
	if s != nil {
		t.Cleanup(func() { cleanup(t, s) })
	} else {
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	return s
}

func cleanup(t testing.TB, s *Stack) {
	if err := s.Stop(); err != nil {
		t.Errorf("stop stack: %v", err)
	}
	if t.Failed() {
		var b strings.Builder
		s.DumpLogs(&b, 40)
		t.Logf("process logs (kept in %s):\n%s", s.Dir, b.String())
		return
	}
	_ = os.RemoveAll(s.Dir)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
