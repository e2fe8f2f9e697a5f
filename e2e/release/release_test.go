package release

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

// fakeBinary is an ELF header for machine m: enough for the image and for
// Check, without compiling the product for two platforms.
func fakeBinary(t *testing.T, dir string, m elf.Machine) string {
	t.Helper()
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(m), Version: uint32(elf.EV_CURRENT), Ehsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	if err := binary.Write(&b, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, m.String())
	if err := os.WriteFile(path, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func release(t *testing.T, version string) (dist, digest string) {
	t.Helper()
	if _, err := os.Stat(image.CACertsPath); err != nil {
		t.Skipf("the image needs the build machine's CA bundle: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	helm, err := harness.BuildHelm(ctx, "", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bins := t.TempDir()
	dist = filepath.Join(t.TempDir(), "dist")
	digest, err = Run(ctx, Options{
		Version: version, RepoRoot: root, Dist: dist, Helm: helm,
		Binaries: map[string]string{"linux/amd64": fakeBinary(t, bins, elf.EM_X86_64), "linux/arm64": fakeBinary(t, bins, elf.EM_AARCH64)},
		Revision: "0123abc", Created: time.Unix(1767225600, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return dist, digest
}

var platforms = []string{"linux/amd64", "linux/arm64"}

// A release's parts agree: one version, one digest, sums that match.
func TestReleaseAgrees(t *testing.T) {
	dist, digest := release(t, "v1.2.3-rc.1")
	got, err := Check(dist, "v1.2.3-rc.1", platforms)
	if err != nil {
		t.Fatal(err)
	}
	if got != digest || !strings.HasPrefix(digest, "sha256:") {
		t.Errorf("Check found digest %s, Run built %s", got, digest)
	}
	install, err := os.ReadFile(filepath.Join(dist, InstallFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(install), "image: ghcr.io/irsa-webhook/irsa-webhook:v1.2.3-rc.1@"+digest); n != 2 {
		t.Errorf("install.yaml pins %d images to the digest, want 2", n)
	}
}

// Check is not a rubber stamp: each broken promise is named.
func TestCheckFindsEachBrokenPromise(t *testing.T) {
	dist, _ := release(t, "v0.9.0")
	for name, c := range map[string]struct {
		breakIt func(t *testing.T)
		want    string
	}{
		"wrong version": {func(t *testing.T) {}, "v0.9.1"},
		"a changed binary": {func(t *testing.T) {
			appendTo(t, filepath.Join(dist, BinaryName("v0.9.0", "linux/arm64")), "x")
		}, "sha256"},
		"install.yaml not pinned": {func(t *testing.T) {
			replaceIn(t, filepath.Join(dist, InstallFile), "@sha256:", "@sha256:0")
		}, "runs image"},
	} {
		t.Run(name, func(t *testing.T) {
			version := "v0.9.0"
			if name == "wrong version" {
				version = c.want
			}
			backup := snapshot(t, dist)
			defer restore(t, dist, backup)
			c.breakIt(t)
			if _, err := Check(dist, version, platforms); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Check = %v, want an error naming %q", err, c.want)
			}
		})
	}
	if _, err := Check(dist, "v0.9.0", []string{"linux/amd64"}); err == nil {
		t.Error("Check accepts an image for more platforms than released")
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, s...), 0o755); err != nil {
		t.Fatal(err)
	}
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), old, new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = b
		}
	}
	return out
}

func restore(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
