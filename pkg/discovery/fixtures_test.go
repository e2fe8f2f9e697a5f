package discovery

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const testIssuer = "https://oidc.example.com/cluster-1"

// jwksFromFiles parses the named test key files into signing keys.
func jwksFromFiles(t testing.TB, files ...string) []jose.JSONWebKey {
	t.Helper()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = keyFile(f)
	}
	keys, err := (&FileSource{Paths: paths}).Load()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// publisherWith returns a publisher for testIssuer serving the keys in files.
func publisherWith(t testing.TB, opts PublisherOptions, files ...string) *Publisher {
	t.Helper()
	p := NewPublisher(testIssuer, testIssuer+JWKSPath, opts)
	if len(files) > 0 {
		if _, err := p.Publish(jwksFromFiles(t, files...)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// golden compares got with testdata/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file:\nwant %s\ngot  %s", name, want, got)
	}
}
