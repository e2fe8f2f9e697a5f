package harness

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
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

// BuildTimeout bounds a test package's build of its binaries. It only stops
// a hung build: a cold build of every part takes 20 minutes on a quiet
// 2-core machine and an hour when every e2e package's TestMain builds at
// once beside other work (docs/e2e.md), and a package waiting on another's
// build lock spends its own bound waiting; make e2e's go test -timeout is
// the bound of the whole run.
const BuildTimeout = 60 * time.Minute

// BuildForPackage builds the binaries for one test package's TestMain into
// a temporary directory (bounded by BuildTimeout). Call cleanup after m.Run.
func BuildForPackage(name string) (bins *Binaries, cleanup func(), err error) {
	out, err := os.MkdirTemp("", "irsa-"+name+"-bin-")
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	bins, err = Build(ctx, BuildOptions{OutDir: out, Progress: os.Stderr})
	if err != nil {
		os.RemoveAll(out)
		return nil, nil, err
	}
	return bins, func() { os.RemoveAll(out) }, nil
}
