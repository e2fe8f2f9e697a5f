package harness

import (
	"context"
	"io"
	"os"
	"path/filepath"
)

// HelmVersion is the helm the chart tests run; deploy/Makefile.inc builds
// the same one into the same cache for "make manifests".
const HelmVersion = "v4.3.2"

const helmModule = "helm.sh/helm/v4/cmd/helm"

// BuildHelm builds helm from its Go module into cacheDir (default BinDir())
// unless it is there already, and returns its path. Like MinIO it is built
// with go install pkg@version, outside every module of this repository, so
// none of helm's dependencies reach them.
func BuildHelm(ctx context.Context, cacheDir string, progressTo io.Writer) (string, error) {
	if cacheDir == "" {
		var err error
		if cacheDir, err = BinDir(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	dest := filepath.Join(cacheDir, "helm-"+HelmVersion)
	p := &progress{w: progressTo}
	err := p.cached("helm "+HelmVersion, dest, func(out string) error {
		gobin, err := os.MkdirTemp(filepath.Dir(out), ".helm-gobin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(gobin)
		if err := goCmd(ctx, gobin, []string{"GOBIN=" + gobin, "CGO_ENABLED=0"}, "install", "-trimpath", "-ldflags", "-s -w", helmModule+"@"+HelmVersion); err != nil {
			return err
		}
		return os.Rename(filepath.Join(gobin, "helm"), out)
	})
	return dest, err
}
