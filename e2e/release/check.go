package release

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

var elfMachine = map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}

// Check reads the release in dist back: SHA256SUMS covers every file and
// matches it, each platform's binary is an ELF for that platform, the OCI
// layout holds one index tagged with the version for exactly those
// platforms, and the packaged chart and install.yaml run that index by its
// digest, with the chart's version the tag's. It returns the digest.
func Check(dist, tag string, platforms []string) (string, error) {
	chartVersion, err := ChartVersion(tag)
	if err != nil {
		return "", err
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	// SHA256SUMS
	sums, err := os.ReadFile(filepath.Join(dist, SumsFile))
	if err != nil {
		return "", err
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(sums)))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			fail("%s: line %q is not \"<sha256>  <file>\"", SumsFile, sc.Text())
			continue
		}
		listed[name] = true
		got, err := fileSHA256(filepath.Join(dist, name))
		if err != nil {
			fail("%s: %v", SumsFile, err)
		} else if got != sum {
			fail("%s: %s has sha256 %s, listed %s", SumsFile, name, got, sum)
		}
	}
	want := []string{ChartFile(tag), InstallFile}
	for _, p := range platforms {
		want = append(want, BinaryName(tag, p))
	}
	for _, name := range want {
		if !listed[name] {
			fail("%s does not list %s", SumsFile, name)
		}
	}

	// The binaries are for their platforms.
	for _, p := range platforms {
		path := filepath.Join(dist, BinaryName(tag, p))
		f, err := elf.Open(path)
		if err != nil {
			fail("%s: %v", path, err)
			continue
		}
		if m, ok := elfMachine[p]; !ok || f.Machine != m {
			fail("%s is an ELF for %s, want %s", BinaryName(tag, p), f.Machine, p)
		}
		f.Close()
	}

	// The image.
	digest, err := ociDigest(filepath.Join(dist, ImageDir), image.WebhookRepository+":"+tag, platforms)
	if err != nil {
		fail("image: %v", err)
	}
	pinned := image.WebhookRepository + ":" + tag + "@" + digest

	// The chart.
	files, err := untar(filepath.Join(dist, ChartFile(tag)), chartName+"/Chart.yaml", chartName+"/values.yaml")
	if err != nil {
		fail("chart: %v", err)
	} else {
		var meta struct {
			Version    string `json:"version"`
			AppVersion string `json:"appVersion"`
		}
		var values struct {
			Image struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
				Digest     string `json:"digest"`
			} `json:"image"`
		}
		if err := yaml.Unmarshal(files[0], &meta); err != nil {
			fail("chart Chart.yaml: %v", err)
		}
		if err := yaml.Unmarshal(files[1], &values); err != nil {
			fail("chart values.yaml: %v", err)
		}
		if meta.Version != chartVersion || meta.AppVersion != tag {
			fail("chart version %q appVersion %q, want %q and %q", meta.Version, meta.AppVersion, chartVersion, tag)
		}
		if values.Image.Repository != image.WebhookRepository || values.Image.Digest != digest || (values.Image.Tag != "" && values.Image.Tag != tag) {
			fail("chart image %s:%s@%s, want %s", values.Image.Repository, values.Image.Tag, values.Image.Digest, pinned)
		}
	}

	// install.yaml runs exactly that image, everywhere.
	install, err := os.ReadFile(filepath.Join(dist, InstallFile))
	if err != nil {
		fail("%v", err)
	}
	images := 0
	for _, line := range strings.Split(string(install), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "image: "); ok {
			images++
			if v != pinned {
				fail("%s runs image %s, want %s", InstallFile, v, pinned)
			}
		}
	}
	if images < 2 {
		fail("%s names %d images, want the webhook's and discovery's", InstallFile, images)
	}
	return digest, errors.Join(errs...)
}

// ociDigest is the digest of the image index tagged ref in an OCI layout,
// after checking that it is an index of exactly platforms.
func ociDigest(dir, ref string, platforms []string) (string, error) {
	type descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
		Platform    *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		} `json:"platform"`
	}
	var layout struct {
		Manifests []descriptor `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(b, &layout); err != nil {
		return "", fmt.Errorf("index.json: %w", err)
	}
	if len(layout.Manifests) != 1 || layout.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != ref {
		return "", fmt.Errorf("index.json holds %d manifests, want one tagged %s", len(layout.Manifests), ref)
	}
	d := layout.Manifests[0].Digest
	algo, hexsum, _ := strings.Cut(d, ":")
	blob, err := os.ReadFile(filepath.Join(dir, "blobs", algo, hexsum))
	if err != nil {
		return "", fmt.Errorf("the tagged index: %w", err)
	}
	var idx struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(blob, &idx); err != nil {
		return "", fmt.Errorf("the tagged index: %w", err)
	}
	var got []string
	for _, m := range idx.Manifests {
		if m.Platform != nil {
			got = append(got, m.Platform.OS+"/"+m.Platform.Architecture)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(platforms))
	if !slices.Equal(got, want) {
		return "", fmt.Errorf("the image is for %v, want %v", got, want)
	}
	return d, nil
}

// untar returns the named files of a .tgz, in the order asked.
func untar(path string, names ...string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	found := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if slices.Contains(names, h.Name) {
			if found[h.Name], err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return nil, err
			}
		}
	}
	out := make([][]byte, len(names))
	for i, n := range names {
		if found[n] == nil {
			return nil, fmt.Errorf("%s has no %s", path, n)
		}
		out[i] = found[n]
	}
	return out, nil
}
