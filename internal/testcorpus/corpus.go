// Package testcorpus writes and checks seed corpus files of Go fuzz targets
// (testdata/fuzz/<FuzzName>/<seed>), so seeds are generated from readable
// code, reviewed like code, and cannot silently go stale.
package testcorpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Encode renders values in the Go fuzzing corpus format ("go test fuzz
// v1"). Supported types: []byte, string, bool, int, int64.
func Encode(values ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%t)\n", v)
		case int:
			fmt.Fprintf(&b, "int(%d)\n", v)
		case int64:
			fmt.Fprintf(&b, "int64(%d)\n", v)
		default:
			panic(fmt.Sprintf("testcorpus: unsupported type %T", v))
		}
	}
	return b.Bytes()
}

// Check compares each seed of target (seed name → encoded file) with
// testdata/fuzz/<target>/<name>; with update it writes them instead. Files
// it does not know (inputs the fuzzer saved after a failure) are left alone.
func Check(t *testing.T, target string, seeds map[string][]byte, update bool) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	names := make([]string, 0, len(seeds))
	for n := range seeds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		if update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, seeds[name], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, seeds[name]) {
			t.Errorf("seed %s is missing or stale; rewrite the seeds with: go test -run TestFuzzCorpus -update", path)
		}
	}
}
