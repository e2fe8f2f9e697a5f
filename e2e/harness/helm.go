package harness

import (
	"context"
	"io"
	"os"
	"os/exec"
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

// HelmCommand is helm at bin with args, run in dir, with its
// configuration, cache and data under home: no user's configuration or
// repositories reach the tests.
func HelmCommand(ctx context.Context, bin, dir, home string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	return cmd
}
