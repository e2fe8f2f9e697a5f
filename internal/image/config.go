package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"
)

// Config is everything cmd/imagebuild is told by flags. Its defaults are
// WebhookSpec's, so building the product image takes only the binaries,
// the version and where to write.
type Config struct {
	// Ref tags the docker tarball and the OCI layout, and is where --push
	// pushes.
	Ref string
	// Binaries are PLATFORM=PATH pairs, e.g. linux/arm64=bin/x-arm64.
	Binaries   []string
	Entrypoint string
	Cmd        []string
	User       string
	UserName   string
	// CACerts is the CA bundle to copy in; empty for none.
	CACerts string
	// Title, Version, Revision and Licenses are the OCI labels; Labels
	// adds or overrides any.
	Title    string
	Version  string
	Revision string
	Licenses string
	Labels   map[string]string
	// SourceDateEpoch is every timestamp of the image, in seconds since
	// the epoch; its default is $SOURCE_DATE_EPOCH. Required: an image
	// never takes the current time, or no two builds would match.
	SourceDateEpoch string
	// OCIDir and Tarball are where to write; TarballPlatform is the one
	// platform the tarball holds.
	OCIDir          string
	Tarball         string
	TarballPlatform string
	Push            bool
}

// NewConfig returns the defaults, the product image's, which AddFlags
// shows in --help.
func NewConfig() *Config {
	w := WebhookSpec(BuildInfo{}, nil)
	return &Config{
		Ref:             w.Ref,
		Entrypoint:      w.Entrypoint,
		Cmd:             w.Cmd,
		User:            w.User,
		CACerts:         w.CACerts,
		Title:           w.Labels["org.opencontainers.image.title"],
		SourceDateEpoch: os.Getenv("SOURCE_DATE_EPOCH"),
		TarballPlatform: HostPlatform(),
	}
}

// HostPlatform is the platform of this machine, the one a local container
// runtime imports.
func HostPlatform() string { return "linux/" + runtime.GOARCH }

// AddFlags binds each flag to its field, with the field's value as default.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Ref, "ref", c.Ref, "Image reference the tarball and layout are tagged with, and --push pushes to (REGISTRY/NAME:TAG). Default: the product image, tagged --version.")
	fs.StringArrayVar(&c.Binaries, "binary", c.Binaries, "PLATFORM=PATH of a static binary, e.g. linux/arm64=bin/irsa-webhook-linux-arm64; repeat for each platform of the image index.")
	fs.StringVar(&c.Entrypoint, "entrypoint", c.Entrypoint, "Absolute path of the binary in the image, and its entrypoint.")
	fs.StringArrayVar(&c.Cmd, "cmd", c.Cmd, "Default argument; repeat for each. --cmd= (empty) alone means none.")
	fs.StringVar(&c.User, "user", c.User, "Numeric uid:gid the image runs as; /etc/passwd and /etc/group get entries for it.")
	fs.StringVar(&c.UserName, "user-name", c.UserName, "Name of that user and group, home /home/NAME. Default: nonroot (root for uid 0).")
	fs.StringVar(&c.CACerts, "ca-certs", c.CACerts, "CA bundle copied to "+CACertsPath+" (Debian's ca-certificates package); empty for none.")
	fs.StringVar(&c.Title, "title", c.Title, "org.opencontainers.image.title label.")
	fs.StringVar(&c.Version, "version", c.Version, "org.opencontainers.image.version label, and the tag of the default --ref.")
	fs.StringVar(&c.Revision, "revision", c.Revision, "org.opencontainers.image.revision label: the commit built.")
	fs.StringVar(&c.Licenses, "licenses", c.Licenses, "org.opencontainers.image.licenses label (SPDX); empty leaves it out.")
	fs.StringToStringVar(&c.Labels, "label", c.Labels, "Extra KEY=VALUE labels; they override the ones above.")
	fs.StringVar(&c.SourceDateEpoch, "source-date-epoch", c.SourceDateEpoch, "Every timestamp of the image, in Unix seconds (the commit time); default $SOURCE_DATE_EPOCH. Required: the image never takes the current time.")
	fs.StringVar(&c.OCIDir, "oci-dir", c.OCIDir, "Write the image index as an OCI image layout directory here (an existing layout there is replaced).")
	fs.StringVar(&c.Tarball, "tarball", c.Tarball, "Write a docker-save tarball of the --tarball-platform image here, for docker load or ctr images import.")
	fs.StringVar(&c.TarballPlatform, "tarball-platform", c.TarballPlatform, "Platform of the image in --tarball.")
	fs.BoolVar(&c.Push, "push", c.Push, "Push the image index to --ref (credentials from the docker config).")
}

// Validate reports every bad flag at once, each by its name.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if len(c.Binaries) == 0 {
		bad("binary", "is required: PLATFORM=PATH of a static binary")
	}
	seen := map[string]bool{}
	for _, b := range c.Binaries {
		p, path, ok := strings.Cut(b, "=")
		if !ok || p == "" || path == "" {
			bad("binary", "%q is not PLATFORM=PATH", b)
			continue
		}
		if plat, err := v1.ParsePlatform(p); err != nil || plat.OS != "linux" || plat.Architecture == "" {
			bad("binary", "%q: platform %q is not linux/ARCH", b, p)
		}
		if seen[p] {
			bad("binary", "platform %s given twice", p)
		}
		seen[p] = true
		if st, err := os.Stat(path); err != nil {
			bad("binary", "%v", err)
		} else if !st.Mode().IsRegular() {
			bad("binary", "%s is not a regular file", path)
		}
	}
	if _, err := c.ref(); err != nil {
		bad("ref", "%v", err)
	}
	if err := checkEntrypoint(c.Entrypoint); err != nil {
		bad("entrypoint", "%v", err)
	}
	if _, _, err := parseUser(c.User); err != nil {
		bad("user", "%v", err)
	}
	if err := checkUserName(c.UserName); err != nil {
		bad("user-name", "%v", err)
	}
	if c.CACerts != "" {
		if _, err := os.Stat(c.CACerts); errors.Is(err, os.ErrNotExist) {
			bad("ca-certs", "%s does not exist: install the CA bundle (apt-get install ca-certificates) or name another with --ca-certs", c.CACerts)
		} else if err != nil {
			bad("ca-certs", "%v", err)
		}
	}
	if _, err := c.created(); err != nil {
		bad("source-date-epoch", "%v", err)
	}
	for k := range c.Labels {
		if k == "" {
			bad("label", "empty key")
		}
	}
	if c.OCIDir == "" && c.Tarball == "" && !c.Push {
		bad("oci-dir", "nothing to do: give --oci-dir, --tarball or --push")
	}
	if c.Tarball != "" {
		if !seen[c.TarballPlatform] {
			have := make([]string, 0, len(seen))
			for p := range seen {
				have = append(have, p)
			}
			sort.Strings(have)
			bad("tarball-platform", "%q is not one of the --binary platforms %v", c.TarballPlatform, have)
		}
		if st, err := os.Stat(filepath.Dir(c.Tarball)); err != nil || !st.IsDir() {
			bad("tarball", "directory of %s does not exist", c.Tarball)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) ref() (string, error) {
	ref := c.Ref
	if ref == WebhookRepository && c.Version != "" {
		ref += ":" + c.Version
	}
	if _, err := name.NewTag(ref, name.StrictValidation); err != nil {
		return "", fmt.Errorf("%q is not REGISTRY/NAME:TAG (or give --version to tag the product image): %w", ref, err)
	}
	return ref, nil
}

func (c *Config) created() (time.Time, error) {
	if c.SourceDateEpoch == "" {
		return time.Time{}, errors.New("is required (or $SOURCE_DATE_EPOCH): the commit time, e.g. $(git log -1 --format=%ct); the image never takes the current time")
	}
	s, err := strconv.ParseInt(c.SourceDateEpoch, 10, 64)
	if err != nil || s < 0 || s > 253402300799 {
		return time.Time{}, fmt.Errorf("%q is not Unix seconds between 0 and year 9999", c.SourceDateEpoch)
	}
	return time.Unix(s, 0).UTC(), nil
}

// Spec is the image c describes. Call Validate first.
func (c *Config) Spec() (Spec, error) {
	ref, err := c.ref()
	if err != nil {
		return Spec{}, fmt.Errorf("--ref: %w", err)
	}
	created, err := c.created()
	if err != nil {
		return Spec{}, fmt.Errorf("--source-date-epoch: %w", err)
	}
	labels := BuildInfo{Title: c.Title, Version: c.Version, Revision: c.Revision, Licenses: c.Licenses, Created: created}.Labels()
	for k, v := range c.Labels {
		labels[k] = v
	}
	bins := map[string]string{}
	for _, b := range c.Binaries {
		p, path, _ := strings.Cut(b, "=")
		bins[p] = path
	}
	var cmd []string
	for _, a := range c.Cmd {
		// --cmd= alone clears the default.
		if !(a == "" && len(c.Cmd) == 1) {
			cmd = append(cmd, a)
		}
	}
	return Spec{
		Ref:        ref,
		Binaries:   bins,
		Entrypoint: c.Entrypoint,
		Cmd:        cmd,
		User:       c.User,
		UserName:   c.UserName,
		CACerts:    c.CACerts,
		Labels:     labels,
		Created:    created,
	}, nil
}

// Run builds the image and writes or pushes it where c says, reporting
// each output and the index digest on out.
func (c *Config) Run(ctx context.Context, out io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	spec, err := c.Spec()
	if err != nil {
		return err
	}
	idx, err := Build(spec)
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("image index: %w", err)
	}
	if c.OCIDir != "" {
		if err := WriteOCILayout(c.OCIDir, idx, spec.Ref); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (OCI layout, %s@%s)\n", c.OCIDir, spec.Ref, d)
	}
	if c.Tarball != "" {
		if err := WriteDockerTarball(c.Tarball, spec.Ref, idx, c.TarballPlatform); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (docker tarball, %s, %s)\n", c.Tarball, spec.Ref, c.TarballPlatform)
	}
	if c.Push {
		if err := Push(ctx, spec.Ref, idx); err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed %s@%s\n", spec.Ref, d)
	}
	return nil
}
