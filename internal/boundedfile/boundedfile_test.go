package boundedfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, tc := range []struct {
		size    int
		wantErr string
	}{{0, ""}, {10, ""}, {11, "larger than 10 bytes"}, {1 << 16, "larger than 10 bytes"}} {
		data := bytes.Repeat([]byte("x"), tc.size)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Read(path, 10)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%d bytes: Read = %d bytes, %v; want %q", tc.size, len(got), err, tc.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: Read = %d bytes, %v", tc.size, len(got), err)
		}
	}
	if _, err := Read(filepath.Join(dir, "absent"), 10); !os.IsNotExist(err) {
		t.Errorf("absent file: %v, want a not-exist error", err)
	}
}
