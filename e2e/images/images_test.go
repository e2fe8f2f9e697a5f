package images

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

// files returns the regular files of img's layers, by path, with modes.
func files(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				got[h.Name] = h
			}
		}
		rc.Close()
	}
	return got
}

// extract copies path out of img's layer into dir.
func extract(t *testing.T, img v1.Image, path, dest string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", path, err)
		}
		if h.Name != path {
			continue
		}
		f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
}

func TestBuildWritesImportableImages(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles s3get and pause: not in -short")
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out := t.TempDir()
	created := time.Unix(1772368245, 0).UTC()
	tb, err := Build(ctx, Options{RepoRoot: root, OutDir: out, Created: created})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		tarball, ref, entrypoint, user string
		files                          []string
	}{
		{tb.S3Get, S3GetRef, S3GetEntrypoint, image.NonrootUser, []string{"etc/group", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "s3get"}},
		{tb.Pause, PauseRef, PauseEntrypoint, PauseUser, []string{"etc/group", "etc/passwd", "pause"}},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			tag, err := name.NewTag(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			img, err := tarball.ImageFromPath(tt.tarball, &tag)
			if err != nil {
				t.Fatalf("load %s as %s: %v", tt.tarball, tt.ref, err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Config.User != tt.user || !cmp.Equal(cf.Config.Entrypoint, []string{tt.entrypoint}) || len(cf.Config.Cmd) != 0 {
				t.Errorf("config user %q entrypoint %q cmd %q", cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd)
			}
			if got := cf.OS + "/" + cf.Architecture; got != image.HostPlatform() || !cf.Created.Time.Equal(created) {
				t.Errorf("config platform %s created %s, want %s at %s", got, cf.Created.Time, image.HostPlatform(), created)
			}
			fs := files(t, img)
			var names []string
			for n := range fs {
				names = append(names, n)
			}
			if diff := cmp.Diff(tt.files, names, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			bin := strings.TrimPrefix(tt.entrypoint, "/")
			if h := fs[bin]; h == nil || h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 {
				t.Errorf("binary header %+v: want mode 0755, owner 0:0", h)
			}
		})
	}

	// The s3get in the image is the static program itself: run it out of
	// the layer with no arguments and it prints its usage.
	tag, _ := name.NewTag(S3GetRef)
	img, err := tarball.ImageFromPath(tb.S3Get, &tag)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "s3get")
	extract(t, img, "s3get", exe)
	outb, err := exec.CommandContext(ctx, exe).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(outb), "usage: s3get BUCKET KEY") {
		t.Errorf("s3get from the image: %v, %q; want its usage and exit 1", err, outb)
	}
}

func TestBuildRejects(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		o    Options
		want string
	}{
		{"no repo", Options{OutDir: t.TempDir()}, "RepoRoot and OutDir are required"},
		{"no out", Options{RepoRoot: "."}, "RepoRoot and OutDir are required"},
		{"not linux", Options{RepoRoot: ".", OutDir: t.TempDir(), Platform: "darwin/arm64"}, `platform "darwin/arm64" is not linux/ARCH`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(ctx, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build: %v, want %q", err, tt.want)
			}
		})
	}
}
