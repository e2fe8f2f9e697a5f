package image

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func parse(t *testing.T, args ...string) *Config {
	t.Helper()
	t.Setenv("SOURCE_DATE_EPOCH", "")
	c := NewConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConfigDefaultsAreTheWebhook: imagebuild with only binaries, version
// and time builds exactly WebhookSpec.
func TestConfigDefaultsAreTheWebhook(t *testing.T) {
	dir := t.TempDir()
	amd, arm := writeFile(t, dir, "a", "a"), writeFile(t, dir, "b", "b")
	c := parse(t, "--binary", "linux/amd64="+amd, "--binary", "linux/arm64="+arm,
		"--version", "v0.1.0", "--revision", "abc123", "--source-date-epoch", "1772368245", "--oci-dir", dir+"/oci")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Spec()
	if err != nil {
		t.Fatal(err)
	}
	want := WebhookSpec(BuildInfo{Title: "irsa-webhook", Version: "v0.1.0", Revision: "abc123", Created: time.Unix(1772368245, 0).UTC()},
		map[string]string{"linux/amd64": amd, "linux/arm64": arm})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec from the default flags (-WebhookSpec +flags):\n%s", diff)
	}
	if got.Ref != "ghcr.io/irsa-webhook/irsa-webhook:v0.1.0" {
		t.Errorf("default ref %q", got.Ref)
	}
}

func TestConfigOverrides(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "pause", "p")
	c := parse(t, "--binary", "linux/arm64="+bin, "--ref", "irsa-webhook.local/pause:e2e", "--entrypoint", "/pause",
		"--cmd=", "--user", "65535:65535", "--user-name", "pause", "--ca-certs=", "--title", "pause",
		"--label", "a=b", "--label", "org.opencontainers.image.source=elsewhere", "--source-date-epoch", "0",
		"--tarball", filepath.Join(dir, "pause.tar"), "--tarball-platform", "linux/arm64")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Spec()
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Ref:        "irsa-webhook.local/pause:e2e",
		Binaries:   map[string]string{"linux/arm64": bin},
		Entrypoint: "/pause",
		User:       "65535:65535",
		UserName:   "pause",
		Labels: map[string]string{
			"a":                                "b",
			"org.opencontainers.image.source":  "elsewhere",
			"org.opencontainers.image.title":   "pause",
			"org.opencontainers.image.created": "1970-01-01T00:00:00Z",
		},
		Created: time.Unix(0, 0).UTC(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	var out bytes.Buffer
	if err := c.Run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "wrote "+filepath.Join(dir, "pause.tar")) {
		t.Errorf("output %q", out.String())
	}
}

func TestConfigValidateNamesEveryBadFlag(t *testing.T) {
	dir := t.TempDir()
	c := parse(t, "--binary", "linux/amd64", "--binary", "windows/amd64="+writeFile(t, dir, "w", "w"),
		"--binary", "linux/arm64="+filepath.Join(dir, "missing"), "--ref", "Bad Ref", "--entrypoint", "rel",
		"--user", "nonroot", "--user-name", "Bad", "--ca-certs", filepath.Join(dir, "no-ca.crt"),
		"--source-date-epoch", "yesterday", "--label", "=x", "--tarball", filepath.Join(dir, "nodir", "x.tar"),
		"--tarball-platform", "linux/s390x")
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad flags")
	}
	for _, want := range []string{
		`--binary: "linux/amd64" is not PLATFORM=PATH`,
		`--binary: "windows/amd64=`,
		"--binary: stat " + filepath.Join(dir, "missing"),
		`--ref: "Bad Ref" is not REGISTRY/NAME:TAG`,
		`--entrypoint: entrypoint "rel" is not a clean absolute file path`,
		`--user: user "nonroot": want numeric uid:gid`,
		`--user-name: user name "Bad"`,
		"--ca-certs: " + filepath.Join(dir, "no-ca.crt") + " does not exist: install the CA bundle (apt-get install ca-certificates)",
		`--source-date-epoch: "yesterday" is not Unix seconds`,
		"--label: empty key",
		`--tarball-platform: "linux/s390x" is not one of the --binary platforms [linux/arm64 windows/amd64]`,
		"--tarball: directory of",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}

	// No time at all is refused: never the clock.
	c = parse(t, "--binary", "linux/amd64="+writeFile(t, dir, "a", "a"), "--version", "v1", "--ca-certs=")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--source-date-epoch: is required") || !strings.Contains(err.Error(), "--oci-dir: nothing to do") {
		t.Errorf("Validate without a time or an output: %v", err)
	}
	// The product ref needs a version to be a tag.
	c = parse(t, "--binary", "linux/amd64="+writeFile(t, dir, "a", "a"), "--source-date-epoch", "1", "--push", "--ca-certs=")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--ref:") || !strings.Contains(err.Error(), "--version") {
		t.Errorf("Validate of the product image without a version: %v", err)
	}
}
