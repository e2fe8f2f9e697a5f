package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// cachedBinary is a control-plane binary from the cache, or skips the test
// when it has not been built yet (the e2e packages build it).
func cachedBinary(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	dir, err := BinDir()
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(dir, name)
	if !isExecutable(path) {
		t.Skipf("%s is not built yet; any e2e package builds it", path)
	}
	return path
}

// The real servers say "address in use" in their own words; each one, on a
// taken first port, moves and becomes ready.
func TestRealPartsMoveOffATakenPort(t *testing.T) {
	for name, tc := range map[string]struct {
		start func(t *testing.T, dir string) (*Process, func(context.Context) error)
	}{
		"etcd": {start: func(t *testing.T, dir string) (*Process, func(context.Context) error) {
			e, err := newEtcd(cachedBinary(t, "etcd-"+EtcdVersion), dir, dir)
			if err != nil {
				t.Fatal(err)
			}
			return e.Process, e.Start
		}},
		"kube-apiserver": {start: func(t *testing.T, dir string) (*Process, func(context.Context) error) {
			bin := cachedBinary(t, "kube-apiserver-"+KubernetesVersion)
			e, err := newEtcd(cachedBinary(t, "etcd-"+EtcdVersion), dir, dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Kill() })
			if err := e.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			pki, err := NewPKI(filepath.Join(dir, "pki"))
			if err != nil {
				t.Fatal(err)
			}
			key, err := NewSigningKey(filepath.Join(dir, "pki"), "sa")
			if err != nil {
				t.Fatal(err)
			}
			a, err := newAPIServer(bin, pki, e, dir, dir, APIServerConfig{Issuer: "https://127.0.0.1:1", Audiences: []string{DefaultAudience}, SigningKey: key})
			if err != nil {
				t.Fatal(err)
			}
			// Its readiness wait goes through the admin client, which must
			// follow the move, and so must the admin kubeconfig.
			return a.Process, func(ctx context.Context) error {
				if err := a.Start(ctx); err != nil {
					return err
				}
				data, err := os.ReadFile(a.AdminKubeconfig)
				if err != nil {
					return err
				}
				if !strings.Contains(string(data), "server: "+a.URL+"\n") {
					return fmt.Errorf("admin kubeconfig does not point at %s:\n%s", a.URL, data)
				}
				return nil
			}
		}},
		"minio": {start: func(t *testing.T, dir string) (*Process, func(context.Context) error) {
			m := portsOnlyMinIO(t, dir)
			return m.Process, m.Start
		}},
	} {
		t.Run(name, func(t *testing.T) {
			p, start := tc.start(t, t.TempDir())
			t.Cleanup(func() { _ = p.Kill() })
			// As if another program bound the first port between the
			// choice and the start.
			taken := occupied(t)
			chosen := slices.Clone(p.Ports)
			closeAll(p.held)
			p.held = nil
			p.Ports[0] = taken
			if err := p.UsePorts(p.Ports); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := start(ctx); err != nil {
				t.Fatalf("start: %v\n%s", err, p.LogTail(20))
			}
			if slices.Contains(p.Ports, taken) {
				t.Errorf("still on the taken port %d: ports %v", taken, p.Ports)
			}
			if slices.Equal(p.Ports, chosen) {
				t.Errorf("back on the first choice %v, want fresh ports", chosen)
			}
			if got := countLog(t, p, "starting again on ports"); got != 1 {
				t.Errorf("log has %d move notes, want 1:\n%s", got, p.LogTail(20))
			}
			if !p.Running() {
				t.Error("not running after a successful start")
			}
		})
	}
}

// MinIO compares its API port with its default console port even with the
// console off; given that port among its two, it still starts.
func TestMinIOStartsGivenItsDefaultConsolePort(t *testing.T) {
	m := portsOnlyMinIO(t, t.TempDir())
	t.Cleanup(func() { _ = m.Kill() })
	// The second port stays reserved by newMinIO until the start.
	m.Ports = []int{minioDefaultConsolePort, m.Ports[0]}
	if err := m.UsePorts(m.Ports); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, m.LogTail(20))
	}
	if strings.HasSuffix(m.Endpoint, fmt.Sprintf(":%d", minioDefaultConsolePort)) {
		t.Errorf("MinIO's API is on its default console port: %s", m.Endpoint)
	}
}

// portsOnlyMinIO is a MinIO in dir without an OpenID provider: for tests
// about ports only.
func portsOnlyMinIO(t *testing.T, dir string) *MinIO {
	t.Helper()
	pki, err := NewPKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMinIO(cachedBinary(t, "minio-"+MinIOVersion), pki, dir, dir, "", DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	m.Env = slices.DeleteFunc(m.Env, func(e string) bool { return strings.HasPrefix(e, "MINIO_IDENTITY_OPENID_") })
	return m
}
