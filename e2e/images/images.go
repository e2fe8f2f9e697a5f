package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

// The references the tarballs are tagged with, and so the names the node
// knows the images by once imported. The .local registry is never pulled
// from: a Pod naming one needs imagePullPolicy Never or IfNotPresent.
const (
	S3GetRef = "irsa-webhook.local/s3get:e2e"
	PauseRef = "irsa-webhook.local/pause:e2e"
)

// Where the binaries go in the images; each is its image's entrypoint.
const (
	S3GetEntrypoint = "/s3get"
	PauseEntrypoint = "/pause"
)

// PauseUser is the upstream pause image's user.
const PauseUser = "65535:65535"

// Options say what to build from and where to write.
type Options struct {
	// RepoRoot is the checkout (harness.RepoRoot()). Required.
	RepoRoot string
	// OutDir receives s3get.tar, pause.tar and the binaries in bin/.
	// Required.
	OutDir string
	// Platform is the images' one platform; default this machine's.
	Platform string
	// Created is every timestamp of the images; zero is the Unix epoch.
	Created time.Time
}

// Tarballs are the paths of the written docker-save tarballs.
type Tarballs struct {
	S3Get string
	Pause string
}

// S3GetSpec is the workload image of an s3get binary built for platform.
func S3GetSpec(binary, platform string, created time.Time) image.Spec {
	return image.Spec{
		Ref:        S3GetRef,
		Binaries:   map[string]string{platform: binary},
		Entrypoint: S3GetEntrypoint,
		User:       image.NonrootUser,
		// The SDK talks https to STS and S3 endpoints it must trust.
		CACerts: image.CACertsPath,
		Labels:  image.BuildInfo{Title: "s3get", Version: "e2e", Created: created}.Labels(),
		Created: created,
	}
}

// PauseSpec is the sandbox image of a pause binary built for platform.
func PauseSpec(binary, platform string, created time.Time) image.Spec {
	return image.Spec{
		Ref:        PauseRef,
		Binaries:   map[string]string{platform: binary},
		Entrypoint: PauseEntrypoint,
		User:       PauseUser,
		UserName:   "pause",
		Labels:     image.BuildInfo{Title: "pause", Version: "e2e", Created: created}.Labels(),
		Created:    created,
	}
}

// Build compiles s3get and pause for o.Platform and writes their images.
func Build(ctx context.Context, o Options) (*Tarballs, error) {
	if o.RepoRoot == "" || o.OutDir == "" {
		return nil, errors.New("build e2e images: RepoRoot and OutDir are required")
	}
	if o.Platform == "" {
		o.Platform = image.HostPlatform()
	}
	plat, err := v1.ParsePlatform(o.Platform)
	if err != nil || plat.OS != "linux" || plat.Architecture == "" {
		return nil, fmt.Errorf("build e2e images: platform %q is not linux/ARCH", o.Platform)
	}
	if _, err := os.Stat(image.CACertsPath); err != nil {
		return nil, fmt.Errorf("build e2e images: the s3get image needs the CA bundle %s: install it (apt-get install ca-certificates): %w", image.CACertsPath, err)
	}
	binDir := filepath.Join(o.OutDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, fmt.Errorf("build e2e images: %w", err)
	}
	suffix := "-" + strings.ReplaceAll(o.Platform, "/", "-")
	t := &Tarballs{S3Get: filepath.Join(o.OutDir, "s3get.tar"), Pause: filepath.Join(o.OutDir, "pause.tar")}
	for _, img := range []struct {
		pkg, tarball string
		spec         func(binary, platform string, created time.Time) image.Spec
	}{
		{"./cmd/s3get", t.S3Get, S3GetSpec},
		{"./cmd/pause", t.Pause, PauseSpec},
	} {
		bin := filepath.Join(binDir, filepath.Base(img.pkg)+suffix)
		if err := goBuild(ctx, filepath.Join(o.RepoRoot, "e2e"), plat, bin, img.pkg); err != nil {
			return nil, err
		}
		spec := img.spec(bin, o.Platform, o.Created)
		idx, err := image.Build(spec)
		if err != nil {
			return nil, fmt.Errorf("build image %s: %w", spec.Ref, err)
		}
		if err := image.WriteDockerTarball(img.tarball, spec.Ref, idx, o.Platform); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// goBuild builds pkg static and trimmed, with the flags of make
// build-static, so the image runs on a node with no libc.
func goBuild(ctx context.Context, dir string, plat *v1.Platform, out, pkg string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", abs, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+plat.OS, "GOARCH="+plat.Architecture, "GOWORK=off")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", pkg, plat, err, buf.String())
	}
	return nil
}

// WebhookRef is the product image as the node tier imports it; an
// installed webhook's manifests name it through a kustomize images entry.
const WebhookRef = "irsa-webhook.local/irsa-webhook:e2e"

// BuildWebhook builds the product image from this checkout as make image
// does (internal/image's WebhookSpec on the static, trimmed binary of
// ./cmd/irsa-webhook), for o.Platform only, tagged WebhookRef, and returns
// the docker-save tarball's path (OutDir/irsa-webhook.tar).
func BuildWebhook(ctx context.Context, o Options) (string, error) {
	if o.RepoRoot == "" || o.OutDir == "" {
		return "", errors.New("build webhook image: RepoRoot and OutDir are required")
	}
	if o.Platform == "" {
		o.Platform = image.HostPlatform()
	}
	plat, err := v1.ParsePlatform(o.Platform)
	if err != nil || plat.OS != "linux" || plat.Architecture == "" {
		return "", fmt.Errorf("build webhook image: platform %q is not linux/ARCH", o.Platform)
	}
	bin := filepath.Join(o.OutDir, "bin", "irsa-webhook-"+strings.ReplaceAll(o.Platform, "/", "-"))
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("build webhook image: %w", err)
	}
	if err := goBuild(ctx, o.RepoRoot, plat, bin, "./cmd/irsa-webhook"); err != nil {
		return "", err
	}
	spec := image.WebhookSpec(image.BuildInfo{Version: "e2e", Created: o.Created}, map[string]string{o.Platform: bin})
	spec.Ref = WebhookRef
	idx, err := image.Build(spec)
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", spec.Ref, err)
	}
	out := filepath.Join(o.OutDir, "irsa-webhook.tar")
	if err := image.WriteDockerTarball(out, spec.Ref, idx, o.Platform); err != nil {
		return "", err
	}
	return out, nil
}
