package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

func write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

var digestLine = regexp.MustCompile(`@(sha256:[0-9a-f]{64})\)`)

// build runs imagebuild as make image does and returns the index digest it
// reports.
func build(t *testing.T, dir, amd64 string) string {
	t.Helper()
	ca := write(t, filepath.Join(dir, "ca.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	arm := write(t, filepath.Join(dir, "arm64"), "arm64 binary")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{
		"--binary", "linux/amd64=" + amd64, "--binary", "linux/arm64=" + arm,
		"--version", "v0.1.0", "--revision", "0123abcd", "--source-date-epoch", "1772368245", "--ca-certs", ca,
		"--oci-dir", filepath.Join(dir, "oci"), "--tarball", filepath.Join(dir, "irsa-webhook.tar"), "--tarball-platform", "linux/amd64",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("imagebuild exit %d: %s", code, stderr.String())
	}
	m := digestLine.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no digest in the output %q", stdout.String())
	}
	return m[1]
}

func TestImagebuildIsReproducible(t *testing.T) {
	first, second, changed := t.TempDir(), t.TempDir(), t.TempDir()
	d1 := build(t, first, write(t, filepath.Join(first, "amd64"), "amd64 binary"))
	d2 := build(t, second, write(t, filepath.Join(second, "amd64"), "amd64 binary"))
	if d1 != d2 {
		t.Errorf("two builds of the same inputs: %s and %s", d1, d2)
	}
	if d3 := build(t, changed, write(t, filepath.Join(changed, "amd64"), "amd64 binary, changed")); d3 == d1 {
		t.Errorf("a changed binary kept the digest %s", d3)
	}

	// The layout holds that index under the product's name, and the
	// tarball loads back as the product image for amd64.
	idx, err := layout.ImageIndexFromPath(filepath.Join(first, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	const ref = "ghcr.io/irsa-webhook/irsa-webhook:v0.1.0"
	if len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != d1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != ref {
		t.Errorf("layout index.json %+v: want %s named %s", im.Manifests, d1, ref)
	}
	tag, _ := name.NewTag(ref)
	img, err := tarball.ImageFromPath(filepath.Join(first, "irsa-webhook.tar"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"org.opencontainers.image.source":   image.Source,
		"org.opencontainers.image.version":  "v0.1.0",
		"org.opencontainers.image.revision": "0123abcd",
		"org.opencontainers.image.created":  "2026-03-01T12:30:45Z",
		"org.opencontainers.image.title":    "irsa-webhook",
	}
	for k, v := range want {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if cf.Architecture != "amd64" || cf.Config.User != "65532:65532" || strings.Join(cf.Config.Entrypoint, " ") != "/irsa-webhook" || strings.Join(cf.Config.Cmd, " ") != "--help" {
		t.Errorf("tarball config %s %q %q %q", cf.Architecture, cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd)
	}
}

func TestImagebuildRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"help", []string{"--help"}, 0, []string{"--binary stringArray"}},
		{"unknown flag", []string{"--nope"}, 2, []string{"unknown flag: --nope"}},
		{"positional", []string{"x"}, 2, []string{`unexpected arguments ["x"]`}},
		{"every bad flag at once", []string{"--binary", "linux/amd64=" + filepath.Join(dir, "missing"), "--user", "me", "--source-date-epoch", "now"}, 1,
			[]string{"--binary: stat", "--user:", "--source-date-epoch:", "--oci-dir: nothing to do"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a refused build wrote %v", ents)
	}
}
