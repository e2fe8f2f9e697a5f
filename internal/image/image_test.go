package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var testCreated = time.Date(2026, 3, 1, 12, 30, 45, 0, time.UTC)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testSpec is a two-platform spec whose "binaries" are distinct files.
func testSpec(t *testing.T) Spec {
	t.Helper()
	dir := t.TempDir()
	return Spec{
		Ref: "irsa-webhook.local/test:e2e",
		Binaries: map[string]string{
			"linux/amd64": writeFile(t, dir, "amd64", "amd64 binary"),
			"linux/arm64": writeFile(t, dir, "arm64", "arm64 binary"),
		},
		Entrypoint: "/irsa-webhook",
		Cmd:        []string{"--help"},
		User:       "65532:65532",
		CACerts:    writeFile(t, dir, "ca.crt", testCA),
		Labels:     map[string]string{"org.opencontainers.image.version": "v1.2.3"},
		Created:    testCreated,
	}
}

func digest(t *testing.T, spec Spec) v1.Hash {
	t.Helper()
	idx, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildIsReproducible(t *testing.T) {
	spec := testSpec(t)
	first := digest(t, spec)
	if again := digest(t, spec); again != first {
		t.Fatalf("two builds of the same inputs: %s then %s", first, again)
	}
	// A copy of the inputs elsewhere, with other file modes and times,
	// builds the same image: only contents count.
	moved := testSpec(t)
	for p, bin := range moved.Binaries {
		if err := os.Chmod(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(bin, time.Now(), time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		moved.Binaries[p] = bin
	}
	if d := digest(t, moved); d != first {
		t.Errorf("same contents at other paths and times: %s, want %s", d, first)
	}

	changes := map[string]func(*Spec){
		"binary": func(s *Spec) {
			s.Binaries["linux/arm64"] = writeFile(t, t.TempDir(), "arm64", "arm64 binary, rebuilt")
		},
		"created":    func(s *Spec) { s.Created = s.Created.Add(time.Second) },
		"cmd":        func(s *Spec) { s.Cmd = []string{"serve"} },
		"user":       func(s *Spec) { s.User = "65532:65533" },
		"label":      func(s *Spec) { s.Labels = map[string]string{"org.opencontainers.image.version": "v1.2.4"} },
		"ca bundle":  func(s *Spec) { s.CACerts = "" },
		"entrypoint": func(s *Spec) { s.Entrypoint = "/bin/irsa-webhook" },
	}
	for what, change := range changes {
		t.Run(what, func(t *testing.T) {
			s := testSpec(t)
			change(&s)
			if d := digest(t, s); d == first {
				t.Errorf("changed %s, same index digest %s", what, d)
			}
		})
	}
}

func TestBuildConfig(t *testing.T) {
	spec := testSpec(t)
	idx, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, platforms); diff != "" {
		t.Errorf("index platforms (-want +got):\n%s", diff)
	}
	if im.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("index media type %q", im.MediaType)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := PlatformImage(idx, "linux/"+arch)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		want := v1.Config{
			User:       "65532:65532",
			Entrypoint: []string{"/irsa-webhook"},
			Cmd:        []string{"--help"},
			Env:        []string{defaultPath, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
			Labels:     map[string]string{"org.opencontainers.image.version": "v1.2.3"},
			WorkingDir: "/",
		}
		if diff := cmp.Diff(want, cf.Config); diff != "" {
			t.Errorf("%s config (-want +got):\n%s", arch, diff)
		}
		if cf.OS != "linux" || cf.Architecture != arch {
			t.Errorf("%s config platform %s/%s", arch, cf.OS, cf.Architecture)
		}
		if !cf.Created.Time.Equal(testCreated) {
			t.Errorf("%s created %s, want %s", arch, cf.Created.Time, testCreated)
		}
		if len(cf.History) != 1 || !cf.History[0].Created.Time.Equal(testCreated) {
			t.Errorf("%s history %+v, want one entry created %s", arch, cf.History, testCreated)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Errorf("%s manifest %+v: want an OCI manifest with one gzip layer", arch, m)
		}
	}
}

type tarEntry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	ModTime  time.Time
	Content  string
}

func layerEntries(t *testing.T, img v1.Image) []tarEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []tarEntry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tarEntry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime.UTC(), Content: string(b)})
	}
	return got
}

func TestLayerContents(t *testing.T) {
	const (
		passwd       = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
		group        = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
		rootPasswd   = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
		rootGroup    = "root:x:0:\nnobody:x:65534:\n"
		pausePasswd  = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\npause:x:65535:65535:pause:/home/pause:/sbin/nologin\n"
		pauseGroup   = "root:x:0:\nnobody:x:65534:\npause:x:65535:\n"
		dirT, fileT  = tar.TypeDir, tar.TypeReg
		created      = "2026-03-01T12:30:45Z"
		amd64, arm64 = "amd64 binary", "arm64 binary"
	)
	at, _ := time.Parse(time.RFC3339, created)
	d := func(name string, mode int64, id int) tarEntry {
		return tarEntry{Name: name, Type: dirT, Mode: mode, UID: id, GID: id, ModTime: at}
	}
	f := func(name string, mode int64, content string) tarEntry {
		return tarEntry{Name: name, Type: fileT, Mode: mode, ModTime: at, Content: content}
	}
	tests := []struct {
		name   string
		change func(*Spec)
		arch   string
		want   []tarEntry
	}{{
		name: "nonroot with CA bundle",
		arch: "arm64",
		want: []tarEntry{
			d("etc/", 0o755, 0), f("etc/group", 0o644, group), f("etc/passwd", 0o644, passwd),
			d("etc/ssl/", 0o755, 0), d("etc/ssl/certs/", 0o755, 0), f("etc/ssl/certs/ca-certificates.crt", 0o644, testCA),
			d("home/", 0o755, 0), d("home/nonroot/", 0o700, 65532),
			f("irsa-webhook", 0o755, arm64),
			d("tmp/", 0o1777, 0),
		},
	}, {
		name: "no CA bundle, nested entrypoint, other user",
		arch: "amd64",
		change: func(s *Spec) {
			s.CACerts = ""
			s.Entrypoint = "/usr/local/bin/pause"
			s.User = "65535:65535"
			s.UserName = "pause"
		},
		want: []tarEntry{
			d("etc/", 0o755, 0), f("etc/group", 0o644, pauseGroup), f("etc/passwd", 0o644, pausePasswd),
			d("home/", 0o755, 0), d("home/pause/", 0o700, 65535),
			d("tmp/", 0o1777, 0),
			d("usr/", 0o755, 0), d("usr/local/", 0o755, 0), d("usr/local/bin/", 0o755, 0), f("usr/local/bin/pause", 0o755, amd64),
		},
	}, {
		name:   "root",
		arch:   "amd64",
		change: func(s *Spec) { s.CACerts = ""; s.User = "0:0" },
		want: []tarEntry{
			d("etc/", 0o755, 0), f("etc/group", 0o644, rootGroup), f("etc/passwd", 0o644, rootPasswd),
			f("irsa-webhook", 0o755, amd64),
			d("root/", 0o700, 0),
			d("tmp/", 0o1777, 0),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec(t)
			if tt.change != nil {
				tt.change(&spec)
			}
			idx, err := Build(spec)
			if err != nil {
				t.Fatal(err)
			}
			img, err := PlatformImage(idx, "linux/"+tt.arch)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, layerEntries(t, img)); diff != "" {
				t.Errorf("layer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name   string
		change func(*Spec)
		want   string
	}{
		{"no binaries", func(s *Spec) { s.Binaries = nil }, "no binaries"},
		{"not linux", func(s *Spec) { s.Binaries = map[string]string{"windows/amd64": "x"} }, `platform "windows/amd64": want linux/ARCH`},
		{"missing binary", func(s *Spec) { s.Binaries["linux/amd64"] = missing }, "read binary: open " + missing},
		{"relative entrypoint", func(s *Spec) { s.Entrypoint = "irsa-webhook" }, `entrypoint "irsa-webhook" is not a clean absolute file path`},
		{"unclean entrypoint", func(s *Spec) { s.Entrypoint = "/bin/../x" }, "is not a clean absolute file path"},
		{"entrypoint over passwd", func(s *Spec) { s.Entrypoint = "/etc/passwd" }, "is a path the image reserves"},
		{"named user", func(s *Spec) { s.User = "nonroot" }, `user "nonroot": want numeric uid:gid`},
		{"negative uid", func(s *Spec) { s.User = "-1:0" }, "want numeric uid:gid"},
		{"bad user name", func(s *Spec) { s.UserName = "Non Root" }, `user name "Non Root": want at most 32`},
		{"missing CA bundle", func(s *Spec) { s.CACerts = missing }, "read CA bundle: open " + missing},
		{"CA bundle not PEM", func(s *Spec) { s.CACerts = writeFile(t, t.TempDir(), "ca", "nope") }, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec(t)
			tt.change(&spec)
			_, err := Build(spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDockerTarballLoadsBack(t *testing.T) {
	spec := testSpec(t)
	idx, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := WriteDockerTarball(path, spec.Ref, idx, "linux/arm64"); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(spec.Ref)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("load the tarball by its tag: %v", err)
	}
	want, err := PlatformImage(idx, "linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	for what, get := range map[string]func(v1.Image) (any, error){
		"config":      func(i v1.Image) (any, error) { return i.ConfigFile() },
		"config name": func(i v1.Image) (any, error) { return i.ConfigName() },
		"layers":      func(i v1.Image) (any, error) { return layerEntries(t, i), nil },
	} {
		w, err := get(want)
		if err != nil {
			t.Fatal(err)
		}
		g, err := get(loaded)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("loaded %s (-built +loaded):\n%s", what, diff)
		}
	}

	if err := WriteDockerTarball(path, spec.Ref, idx, "linux/s390x"); err == nil || !strings.Contains(err.Error(), "no image for platform linux/s390x") {
		t.Errorf("tarball for a platform not built: %v", err)
	}
	if err := WriteDockerTarball(path, "Not A Ref", idx, "linux/arm64"); err == nil || !strings.Contains(err.Error(), `tag "Not A Ref"`) {
		t.Errorf("tarball with a bad ref: %v", err)
	}
	if _, err := tarball.ImageFromPath(path, &tag); err != nil {
		t.Errorf("a refused write changed the tarball: %v", err)
	}
}

func TestWriteOCILayout(t *testing.T) {
	spec := testSpec(t)
	idx, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	// A stale layout is replaced whole: its blob does not survive.
	if _, err := layout.Write(dir, idx); err != nil {
		t.Fatal(err)
	}
	stale := writeFile(t, filepath.Join(dir, "blobs", "sha256"), "stale", "x")
	if err := WriteOCILayout(dir, idx, spec.Ref); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale blob after a rewrite: %v", err)
	}
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want || im.Manifests[0].Annotations[refNameAnnotation] != spec.Ref {
		t.Fatalf("index.json %+v: want one descriptor of %s named %s", im.Manifests, want, spec.Ref)
	}
	got, err := root.ImageIndex(want)
	if err != nil {
		t.Fatal(err)
	}
	img, err := PlatformImage(got, "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.ConfigFile(); err != nil {
		t.Errorf("read back the amd64 config: %v", err)
	}
	for _, l := range mustLayers(t, img) {
		if _, err := l.Compressed(); err != nil {
			t.Errorf("layer blob: %v", err)
		}
	}

	// Anything else at dir is refused and left alone.
	other := t.TempDir()
	keep := writeFile(t, other, "keep", "mine")
	if err := WriteOCILayout(other, idx); err == nil || !strings.Contains(err.Error(), "not an OCI layout") {
		t.Errorf("write over a directory that is not a layout: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("refused write removed a file: %v", err)
	}
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	spec := testSpec(t)
	idx, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/irsa-webhook/irsa-webhook:v1.2.3"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Push(ctx, ref, idx); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(r, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if got, _ := pulled.Digest(); got != want {
		t.Errorf("pulled index %s, pushed %s", got, want)
	}
	img, err := PlatformImage(pulled, "linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(layerEntries(t, mustImage(t, idx, "linux/arm64")), layerEntries(t, img)); diff != "" {
		t.Errorf("pulled arm64 layer (-pushed +pulled):\n%s", diff)
	}

	if err := Push(ctx, "bad ref!", idx); err == nil || !strings.Contains(err.Error(), `push "bad ref!"`) {
		t.Errorf("push to a bad ref: %v", err)
	}
}

func mustImage(t *testing.T, idx v1.ImageIndex, platform string) v1.Image {
	t.Helper()
	img, err := PlatformImage(idx, platform)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
