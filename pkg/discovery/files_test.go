package discovery

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logBuffer collects every log line, at every verbosity.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.buf.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func copyKey(t *testing.T, name, dst string) {
	t.Helper()
	if err := os.WriteFile(dst, readKeyFile(t, name), 0o600); err != nil {
		t.Fatal(err)
	}
}

func servedKIDs(p *Publisher) []string {
	if d := p.Documents(); d != nil {
		return d.KeyIDs
	}
	return nil
}

// TestFileSourceReloadsRotatedSecret rotates keys the way the kubelet
// updates a mounted Secret (a new timestamped directory, then an atomic
// swap of the ..data symlink) and waits, bounded, for the new kid.
func TestFileSourceReloadsRotatedSecret(t *testing.T) {
	dir := t.TempDir()
	mkVersion := func(name string, files map[string]string) {
		v := filepath.Join(dir, name)
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
		for dst, src := range files {
			copyKey(t, src, filepath.Join(v, dst))
		}
	}
	swap := func(name string) {
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	mkVersion("..v1", map[string]string{"old.pem": "rsa-pkcs1.key", "new.pem": "ec256.pub"})
	swap("..v1")
	for _, f := range []string{"old.pem", "new.pem"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}

	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	pub := NewPublisher(testIssuer, testIssuer+JWKSPath, PublisherOptions{Metrics: metrics})
	// An hour between polls: only the change notification can reload in time.
	src := &FileSource{Paths: []string{filepath.Join(dir, "old.pem"), filepath.Join(dir, "new.pem")}, Interval: time.Hour, Publisher: pub}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), logs.logger()))
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()

	waitFor(t, 10*time.Second, "the first keys", func() bool { return len(servedKIDs(pub)) == 2 })
	if diff := cmp.Diff([]string{kidRSA, kidEC256}, servedKIDs(pub)); diff != "" {
		t.Errorf("kids (-want +got):\n%s", diff)
	}

	// Rotation: the old key becomes the P-256 one, the new one a fresh RSA
	// private key.
	mkVersion("..v2", map[string]string{"old.pem": "ec256.pub", "new.pem": "rsa-rotated.key"})
	swap("..v2")
	waitFor(t, 10*time.Second, "the rotated kid", func() bool {
		kids := servedKIDs(pub)
		return len(kids) == 2 && kids[1] == kidRotated
	})
	if diff := cmp.Diff([]string{kidEC256, kidRotated}, servedKIDs(pub)); diff != "" {
		t.Errorf("kids after rotation (-want +got):\n%s", diff)
	}

	// A broken update keeps the last good keys.
	good := pub.Documents()
	mkVersion("..v3", map[string]string{"old.pem": "garbage.pem", "new.pem": "rsa-rotated.key"})
	swap("..v3")
	waitFor(t, 10*time.Second, "the failed reload", func() bool { return testutil.ToFloat64(metrics.refreshFailures) >= 1 })
	if pub.Documents() != good {
		t.Error("documents changed after a broken key file")
	}
	waitFor(t, 10*time.Second, "the failure logged", func() bool { return strings.Contains(logs.String(), "reload key files failed") })

	assertNoPrivateMaterial(t, "JWKS", pub.Documents().JWKS, "rsa-pkcs1.key", "rsa-rotated.key")
	for _, finding := range privateMaterialIn([]byte(logs.String()), secretStrings(t, "rsa-pkcs1.key", "rsa-rotated.key")) {
		t.Errorf("logs: %s", finding)
	}
	if !strings.Contains(logs.String(), kidRotated) {
		t.Errorf("logs do not name the kids served:\n%s", logs)
	}
}

func TestFileSourcePolls(t *testing.T) {
	// Only the poll can see this change: the watched directory holds a
	// symlink to a file in another directory, and that file is rewritten
	// in place, so the watched directory itself never changes.
	watched, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "sa.pub")
	copyKey(t, "rsa.pub", target)
	path := filepath.Join(watched, "sa.pub")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	pub := NewPublisher(testIssuer, testIssuer+JWKSPath, PublisherOptions{})
	src := &FileSource{Paths: []string{path}, Interval: 20 * time.Millisecond, Publisher: pub}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "the first key", func() bool { return len(servedKIDs(pub)) == 1 })
	copyKey(t, "ec384-sec1.key", target)
	waitFor(t, 10*time.Second, "the new key, found by the poll", func() bool {
		kids := servedKIDs(pub)
		return len(kids) == 1 && kids[0] == kidEC384
	})
}

func TestFileSourceRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "sa.key")
	copyKey(t, "ec521-sec1.key", private)
	tests := map[string]struct {
		paths []string
		want  string
	}{
		"missing file": {paths: []string{filepath.Join(dir, "nope.pem")}, want: "read key file " + filepath.Join(dir, "nope.pem") + ": open " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		"unsupported":  {paths: []string{private}, want: "parse key file " + private + ": PEM block 1 (EC PRIVATE KEY): ECDSA curve P-521 is not supported; use P-256 or P-384"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			logs := &logBuffer{}
			pub := NewPublisher(testIssuer, testIssuer+JWKSPath, PublisherOptions{})
			src := &FileSource{Paths: tc.paths, Interval: time.Hour, Publisher: pub}
			err := src.Run(logr.NewContext(context.Background(), logs.logger()))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Run = %v, want %q", err, tc.want)
			}
			if pub.Documents() != nil {
				t.Error("documents published")
			}
			for _, finding := range privateMaterialIn([]byte(err.Error()+logs.String()), secretStrings(t, "ec521-sec1.key")) {
				t.Errorf("error or logs: %s", finding)
			}
		})
	}
}
