package discovery

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExportGolden(t *testing.T) {
	pub := publisherWith(t, PublisherOptions{}, goldenKeys...)
	dir := t.TempDir()
	files, err := Export(pub.Documents(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(dir, ".well-known", "openid-configuration"),
		filepath.Join(dir, "openid", "v1", "jwks"),
		filepath.Join(dir, "keys.json"),
	}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("files written (-want +got):\n%s", diff)
	}
	for _, rel := range []string{".well-known/openid-configuration", "openid/v1/jwks", "keys.json"} {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "export/"+rel, got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{".well-known", "keys.json", "openid"}, names); diff != "" {
		t.Errorf("entries in --out (no temporary files left) (-want +got):\n%s", diff)
	}
}

func TestExportNothing(t *testing.T) {
	if _, err := Export(nil, t.TempDir()); err == nil {
		t.Error("Export(nil) succeeded")
	}
}
