package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refNameAnnotation names an image in an OCI layout's index.json; it is
// what `ctr images import` and skopeo's oci: transport tag it with.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteOCILayout writes idx as an OCI image layout directory: index.json
// points at idx, annotated with each of refs. An existing layout at dir is
// replaced whole, so no blob of an earlier build stays; any other existing
// dir is refused.
func WriteOCILayout(dir string, idx v1.ImageIndex, refs ...string) error {
	if err := replaceable(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	// One descriptor per ref: the annotation holds one name.
	if len(refs) == 0 {
		err = p.AppendIndex(idx)
	}
	for _, r := range refs {
		if err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: r})); err != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	// 0755 like any build output directory; MkdirTemp made it 0700.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("oci layout %s: remove the previous layout: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return nil
}

// replaceable refuses a dir that exists and is neither empty nor an OCI
// layout, so a mistyped path cannot delete someone's files.
func replaceable(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(ents) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("oci layout %s: exists and is not an OCI layout; refusing to replace it", dir)
	}
	return nil
}

// PlatformImage returns idx's image for platform ("linux/amd64").
func PlatformImage(idx v1.ImageIndex, platform string) (v1.Image, error) {
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", platform, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.Equals(*want) {
			return idx.Image(d.Digest)
		}
		have = append(have, d.Platform.String())
	}
	return nil, fmt.Errorf("no image for platform %s in the index (it has %v)", platform, have)
}

// WriteDockerTarball writes idx's image for platform as a `docker save`
// tarball tagged ref, which `docker load` and `ctr images import` read.
// It writes a temporary file and renames it, so path is never half
// written.
func WriteDockerTarball(path, ref string, idx v1.ImageIndex, platform string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("tag %q: %w", ref, err)
	}
	img, err := PlatformImage(idx, platform)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("docker tarball %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := tarball.Write(tag, img, f); err != nil {
		f.Close()
		return fmt.Errorf("docker tarball %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("docker tarball %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("docker tarball %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("docker tarball %s: %w", path, err)
	}
	return nil
}

// Push uploads idx and its images to ref's registry, with the credentials
// of the docker config (~/.docker/config.json) unless opts say otherwise.
// A registry on a loopback address is spoken to over plain HTTP, like
// localhost.
func Push(ctx context.Context, ref string, idx v1.ImageIndex, opts ...remote.Option) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("push %q: %w", ref, err)
	}
	if loopback(r.Context().RegistryStr()) {
		r, err = name.ParseReference(ref, name.Insecure)
		if err != nil {
			return fmt.Errorf("push %q: %w", ref, err)
		}
	}
	all := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.WriteIndex(r, idx, all...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

func loopback(registry string) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = registry
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
