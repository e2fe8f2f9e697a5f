// Package release assembles a release in one directory from one version:
// the static binaries with their SHA256SUMS, the multi-platform image as an
// OCI layout, the chart packaged with the same version and pinned to the
// image's digest, and install.yaml rendered from that chart. Check reads a
// release directory back and holds those promises; make release runs both.
package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

// Options say what to release and where from.
type Options struct {
	// Version is the tag, vMAJOR.MINOR.PATCH[-pre]; the chart's version is
	// the same without the v.
	Version string
	// RepoRoot is the checkout (charts/irsa-webhook, deploy/).
	RepoRoot string
	// Dist is the output directory; it must not exist or be empty.
	Dist string
	// Helm is the helm binary.
	Helm string
	// Binaries maps a platform (linux/amd64) to its static irsa-webhook.
	Binaries map[string]string
	// Revision and Created go into the image's labels and timestamps.
	Revision string
	Created  time.Time
}

// The file names in Dist.
const (
	SumsFile    = "SHA256SUMS"
	InstallFile = "install.yaml"
	ImageDir    = "image-oci"
	chartName   = "irsa-webhook"
	chartDir    = "charts/irsa-webhook"
)

var versionRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// ChartVersion is the chart's version for a release tag: v1.2.3 -> 1.2.3.
func ChartVersion(tag string) (string, error) {
	if !versionRE.MatchString(tag) {
		return "", fmt.Errorf("version %q is not a release tag vMAJOR.MINOR.PATCH[-pre]", tag)
	}
	return strings.TrimPrefix(tag, "v"), nil
}

// BinaryName is the released binary of a platform.
func BinaryName(tag, platform string) string {
	return fmt.Sprintf("irsa-webhook_%s_%s", tag, strings.ReplaceAll(platform, "/", "_"))
}

// ChartFile is the packaged chart.
func ChartFile(tag string) string { return chartName + "-" + strings.TrimPrefix(tag, "v") + ".tgz" }

// Run writes the release into o.Dist and returns the image index digest.
func Run(ctx context.Context, o Options) (string, error) {
	chartVersion, err := ChartVersion(o.Version)
	if err != nil {
		return "", err
	}
	if len(o.Binaries) == 0 {
		return "", errors.New("no binaries")
	}
	if entries, err := os.ReadDir(o.Dist); err == nil && len(entries) > 0 {
		return "", fmt.Errorf("%s is not empty: remove it first, a release is written whole", o.Dist)
	}
	if err := os.MkdirAll(o.Dist, 0o755); err != nil {
		return "", err
	}
	platforms := make([]string, 0, len(o.Binaries))
	for p := range o.Binaries {
		platforms = append(platforms, p)
	}
	slices.Sort(platforms)
	var sums []string // in file order

	for _, p := range platforms {
		name := BinaryName(o.Version, p)
		if err := copyFile(o.Binaries[p], filepath.Join(o.Dist, name), 0o755); err != nil {
			return "", err
		}
		sums = append(sums, name)
	}

	// The image, from the same binaries.
	spec := image.WebhookSpec(image.BuildInfo{Version: o.Version, Revision: o.Revision, Created: o.Created}, o.Binaries)
	idx, err := image.Build(spec)
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", fmt.Errorf("image digest: %w", err)
	}
	digest := d.String()
	if err := image.WriteOCILayout(filepath.Join(o.Dist, ImageDir), idx, spec.Ref); err != nil {
		return "", err
	}

	// The chart, with the release's version and the image's digest as its
	// defaults, packaged.
	work, err := os.MkdirTemp("", "irsa-release-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	chart := filepath.Join(work, chartName)
	if err := copyTree(filepath.Join(o.RepoRoot, chartDir), chart); err != nil {
		return "", err
	}
	if err := setLine(filepath.Join(chart, "Chart.yaml"), "version: ", chartVersion); err != nil {
		return "", err
	}
	if err := setLine(filepath.Join(chart, "Chart.yaml"), "appVersion: ", o.Version); err != nil {
		return "", err
	}
	if err := setLine(filepath.Join(chart, "values.yaml"), "  digest: ", `"`+digest+`"`); err != nil {
		return "", err
	}
	if _, err := helm(ctx, o, "lint", "--strict", chart); err != nil {
		return "", err
	}
	if _, err := helm(ctx, o, "package", chart, "--destination", o.Dist); err != nil {
		return "", err
	}
	sums = append(sums, ChartFile(o.Version))

	// install.yaml: the default install of deploy/, from the pinned chart.
	out, err := helm(ctx, o, "template", chartName, chart, "--namespace", "irsa-system",
		"-f", filepath.Join(o.RepoRoot, "deploy", "values.yaml"), "-f", filepath.Join(o.RepoRoot, "deploy", "overlays", "cert-manager", "values.yaml"))
	if err != nil {
		return "", err
	}
	header := fmt.Sprintf("# irsa-webhook %s: the default install (deploy/overlays/cert-manager), image %s@%s.\n", o.Version, image.WebhookRepository, digest)
	if err := os.WriteFile(filepath.Join(o.Dist, InstallFile), append([]byte(header), out...), 0o644); err != nil {
		return "", err
	}
	sums = append(sums, InstallFile)

	var b bytes.Buffer
	for _, name := range sums {
		sum, err := fileSHA256(filepath.Join(o.Dist, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, name) // the format of sha256sum -c
	}
	if err := os.WriteFile(filepath.Join(o.Dist, SumsFile), b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return digest, nil
}

func helm(ctx context.Context, o Options, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, o.Helm, args...)
	home, err := os.MkdirTemp("", "irsa-release-helm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.Bytes(), out)
	}
	return out, nil
}

// setLine replaces the value of the first line starting with prefix.
func setLine(path, prefix, value string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = prefix + value
			return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
		}
	}
	return fmt.Errorf("%s has no line %q", path, prefix)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(path, target, 0o644)
	})
}
