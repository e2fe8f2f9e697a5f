package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// CACertsPath is where the CA bundle goes in the image: the path Debian's
// ca-certificates writes and Go's crypto/x509 reads first on Linux.
const CACertsPath = "/etc/ssl/certs/ca-certificates.crt"

// defaultPath is the PATH distroless sets; nothing here has a shell, but
// exec probes and debug containers resolve names with it.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec is what one image is made of, for every platform it is built for.
type Spec struct {
	// Ref is the reference the docker tarball is tagged with, e.g.
	// "irsa-webhook.local/s3get:e2e". Build does not use it.
	Ref string
	// Binaries maps a platform ("linux/amd64") to the path of a static
	// binary built for it; one image per platform.
	Binaries map[string]string
	// Entrypoint is where the binary goes in the image, and the entrypoint.
	Entrypoint string
	// Cmd is the default arguments.
	Cmd []string
	// User is "uid:gid" (numeric, so runAsNonRoot can verify it);
	// /etc/passwd and /etc/group get entries for both.
	User string
	// UserName names the user and group in /etc/passwd and /etc/group; its
	// home is /home/UserName. Default: "nonroot" as in distroless, or
	// "root" for uid 0.
	UserName string
	// CACerts is an optional CA bundle copied to CACertsPath.
	CACerts string
	// Labels are the image config's labels (org.opencontainers.image.*).
	Labels map[string]string
	// Created is every timestamp of the image: config, history and file
	// times. Zero means the Unix epoch, never the current time.
	Created time.Time
}

// Build returns an OCI image index with one image per Spec.Binaries
// platform, in platform order.
func Build(spec Spec) (v1.ImageIndex, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	created := spec.created()
	var caCerts []byte
	if spec.CACerts != "" {
		b, err := os.ReadFile(spec.CACerts)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", spec.CACerts)
		}
		caCerts = b
	}
	platforms := make([]string, 0, len(spec.Binaries))
	for p := range spec.Binaries {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		img, err := buildImage(spec, *plat, spec.Binaries[p], caCerts, created)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: plat},
		})
	}
	// Computing the digest here surfaces any layer error now rather than
	// halfway through a write.
	if _, err := idx.Digest(); err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	return idx, nil
}

func (s Spec) validate() error {
	var errs []error
	if len(s.Binaries) == 0 {
		errs = append(errs, errors.New("no binaries: name at least one platform's binary"))
	}
	for p, bin := range s.Binaries {
		plat, err := v1.ParsePlatform(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("platform %q: %w", p, err))
		case plat.OS != "linux" || plat.Architecture == "":
			errs = append(errs, fmt.Errorf("platform %q: want linux/ARCH", p))
		}
		if bin == "" {
			errs = append(errs, fmt.Errorf("platform %q: empty binary path", p))
		}
	}
	if err := checkEntrypoint(s.Entrypoint); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := parseUser(s.User); err != nil {
		errs = append(errs, err)
	}
	if err := checkUserName(s.UserName); err != nil {
		errs = append(errs, err)
	}
	for k := range s.Labels {
		if k == "" {
			errs = append(errs, errors.New("empty label key"))
		}
	}
	return errors.Join(errs...)
}

func (s Spec) created() time.Time {
	if s.Created.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	// Tar headers hold whole seconds; the config gets the same instant.
	return s.Created.UTC().Truncate(time.Second)
}

// parseUser splits "uid:gid" into numbers.
func parseUser(user string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(user, ":")
	if ok {
		uid, err = strconv.Atoi(u)
		if err == nil {
			gid, err = strconv.Atoi(g)
		}
	}
	if !ok || err != nil || uid < 0 || gid < 0 || uid > 1<<31-1 || gid > 1<<31-1 {
		return 0, 0, fmt.Errorf("user %q: want numeric uid:gid, e.g. 65532:65532", user)
	}
	return uid, gid, nil
}

func checkEntrypoint(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("entrypoint %q is not a clean absolute file path", p)
	}
	if reserved(p) {
		return fmt.Errorf("entrypoint %q is a path the image reserves for its own files", p)
	}
	return nil
}

// checkUserName accepts what passwd(5) tools accept without quoting;
// empty means the default.
func checkUserName(n string) error {
	ok := len(n) <= 32
	for i, r := range n {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("user name %q: want at most 32 lower-case letters, digits, - and _, starting with a letter or _", n)
	}
	return nil
}

func buildImage(spec Spec, plat v1.Platform, binary string, caCerts []byte, created time.Time) (v1.Image, error) {
	layerTar, err := layerContents(spec, binary, caCerts, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	createdBy := "imagebuild: " + spec.Entrypoint + ", /etc/passwd, /etc/group"
	if caCerts != nil {
		createdBy += ", " + CACertsPath
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: createdBy},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS = plat.OS
	cf.Architecture = plat.Architecture
	cf.Variant = plat.Variant
	cf.Config = v1.Config{
		User:       spec.User,
		Entrypoint: []string{spec.Entrypoint},
		Cmd:        append([]string(nil), spec.Cmd...),
		Env:        []string{defaultPath},
		Labels:     spec.Labels,
		WorkingDir: "/",
	}
	if caCerts != nil {
		cf.Config.Env = append(cf.Config.Env, "SSL_CERT_FILE="+CACertsPath)
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// reserved reports whether p is one of the files or directories the image
// lays itself, which the binary must not replace.
func reserved(p string) bool {
	switch p {
	case "/etc", "/etc/passwd", "/etc/group", "/etc/ssl", "/etc/ssl/certs", CACertsPath, "/home", "/tmp":
		return true
	}
	return strings.HasPrefix(p, "/home/")
}

type entry struct {
	hdr  tar.Header
	data []byte
}

// layerContents returns the uncompressed layer: the binary, the user's
// passwd and group entries, the CA bundle and their directories, sorted by
// path, owned by root except the user's home, every time created.
func layerContents(spec Spec, binary string, caCerts []byte, created time.Time) ([]byte, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	uid, gid, _ := parseUser(spec.User)
	name := spec.UserName
	if name == "" {
		name = "nonroot"
		if uid == 0 {
			name = "root"
		}
	}
	passwd, group := accounts(name, uid, gid)

	entries := []entry{
		dir("etc/", 0o755, 0, 0),
		file("etc/passwd", 0o644, passwd),
		file("etc/group", 0o644, group),
		dir("tmp/", 0o1777, 0, 0),
		file(strings.TrimPrefix(spec.Entrypoint, "/"), 0o755, bin),
	}
	switch uid {
	case 0:
		entries = append(entries, dir("root/", 0o700, 0, 0))
	case 65534: // nobody's home is /nonexistent
	default:
		entries = append(entries, dir("home/", 0o755, 0, 0), dir("home/"+name+"/", 0o700, uid, gid))
	}
	if caCerts != nil {
		entries = append(entries,
			dir("etc/ssl/", 0o755, 0, 0),
			dir("etc/ssl/certs/", 0o755, 0, 0),
			file(strings.TrimPrefix(CACertsPath, "/"), 0o644, caCerts))
	}
	// Parent directories of the entrypoint, e.g. /usr/local/bin.
	seen := map[string]bool{}
	for _, e := range entries {
		seen[strings.TrimSuffix(e.hdr.Name, "/")] = true
	}
	for d := path.Dir(strings.TrimPrefix(spec.Entrypoint, "/")); d != "."; d = path.Dir(d) {
		if !seen[d] {
			seen[d] = true
			entries = append(entries, dir(d+"/", 0o755, 0, 0))
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.ModTime = created
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

func dir(name string, mode int64, uid, gid int) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid}}
}

func file(name string, mode int64, data []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data: data}
}

// accounts returns /etc/passwd and /etc/group: root, nobody, and the user,
// laid out as distroless's.
func accounts(name string, uid, gid int) (passwd, group []byte) {
	var p, g strings.Builder
	p.WriteString("root:x:0:0:root:/root:/sbin/nologin\n")
	p.WriteString("nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")
	g.WriteString("root:x:0:\n")
	g.WriteString("nobody:x:65534:\n")
	if uid != 0 && uid != 65534 {
		fmt.Fprintf(&p, "%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", name, uid, gid, name, name)
	}
	if gid != 0 && gid != 65534 {
		fmt.Fprintf(&g, "%s:x:%d:\n", name, gid)
	}
	return []byte(p.String()), []byte(g.String())
}
