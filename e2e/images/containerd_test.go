package images

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerd is a private containerd daemon: its own root, state and
// socket in a temporary directory, the CRI plugin off, so it touches
// nothing of the host's; cleanup stops it by PID.
type containerd struct {
	address string
	logs    *bytes.Buffer
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	for _, bin := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install containerd): %v", bin, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root")
	}
	// Short: a unix socket path has a 108-byte limit.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &containerd{address: filepath.Join(dir, "containerd.sock"), logs: &bytes.Buffer{}}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.address, c.address+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // reported by the wait below
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // last resort
			<-exited
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := c.ctr(context.Background(), "version"); err == nil {
			return c
		}
		select {
		case err := <-exited:
			t.Fatalf("containerd exited: %v\n%s", err, c.logs)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not answering on %s within 60s:\n%s", c.address, c.logs)
		}
	}
}

func (c *containerd) ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.address, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// importImages imports each tarball the way the node tier does and checks
// the image is then known by its reference, content complete.
func importImages(t *testing.T, ctx context.Context, tarballs map[string]string) {
	c := startContainerd(t)
	for ref, path := range tarballs {
		if out, err := c.ctr(ctx, "images", "import", "--snapshotter", "native", path); err != nil {
			t.Fatalf("import %s: %v\n%s", path, err, c.logs)
		} else {
			t.Logf("import %s: %s", path, strings.TrimSpace(out))
		}
		out, err := c.ctr(ctx, "images", "check", "name=="+ref)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, ref) || !strings.Contains(out, "complete") {
			t.Errorf("after import, ctr images check %s:\n%s", ref, out)
		}
	}
}
