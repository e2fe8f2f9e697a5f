package harness

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Local images: no registry is reachable, so the node tier builds each
// image from this run's static binaries, writes it as a docker-archive
// tarball, and imports it into containerd. Pods use them with
// imagePullPolicy Never.
const (
	PauseImage = "irsa-e2e.local/pause:e2e"
	S3GetImage = "irsa-e2e.local/s3get:e2e"
)

// imageSpec is a one-layer image: files (path in the image to path on the
// host) and how to run it.
type imageSpec struct {
	ref        string
	files      map[string]string
	entrypoint []string
}

// writeImageTarball writes spec as a docker-archive tarball at path.
func writeImageTarball(path string, spec imageSpec) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for dst, src := range spec.files {
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("image %s: %w", spec.ref, err)
		}
		hdr := &tar.Header{Name: dst, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("image %s: %w", spec.ref, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("image %s: %w", spec.ref, err)
		}
	}
	// A writable /tmp: the SDK and Go's runtime expect one.
	if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}); err != nil {
		return fmt.Errorf("image %s: %w", spec.ref, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image %s: %w", spec.ref, err)
	}
	layerData := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerData)), nil
	})
	if err != nil {
		return fmt.Errorf("image %s: layer: %w", spec.ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("image %s: %w", spec.ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("image %s: %w", spec.ref, err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: time.Unix(0, 0)}
	cfg.Config.Entrypoint = spec.entrypoint
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return fmt.Errorf("image %s: %w", spec.ref, err)
	}
	tag, err := name.NewTag(spec.ref)
	if err != nil {
		return fmt.Errorf("image %s: %w", spec.ref, err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("image %s: write %s: %w", spec.ref, path, err)
	}
	return nil
}
