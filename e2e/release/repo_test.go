package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The chart in the repository says one version twice (the chart's and the
// image's), and the README's install section pins that same version for
// both installs.
func TestRepositoryVersionsAgree(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	want, err := ChartVersion(meta.AppVersion)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Version != want {
		t.Errorf("Chart.yaml version %s, appVersion %s: want version %s", meta.Version, meta.AppVersion, want)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{"--version " + meta.Version + " ", "/releases/download/" + meta.AppVersion + "/" + InstallFile} {
		if !strings.Contains(string(readme), pin) {
			t.Errorf("README.md's install section does not pin %q", pin)
		}
	}
}
