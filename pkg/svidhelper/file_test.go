package svidhelper

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// A reader racing many rewrites only ever sees a whole token, and no
// temporary file is left behind.
func TestWriteFileAtomicNeverShowsPartialContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	contents := map[string]bool{}
	var all []string
	for i := range 50 {
		// Large enough that a non-atomic write would be seen half done.
		c := strings.Repeat(string(rune('a'+i%26)), 64<<10) + "-" + string(rune('A'+i%26))
		contents[c] = true
		all = append(all, c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil || !contents[string(data)] {
				bad = append(bad, fmt.Sprintf("%s (%d bytes)", errString(err), len(data)))
			}
		}
	})
	for _, c := range all {
		if err := WriteFileAtomic(path, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("reader saw %d partial or failed reads, first: %s", len(bad), bad[0])
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != all[len(all)-1] {
		t.Fatalf("final content wrong: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != tokenFileMode {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), os.FileMode(tokenFileMode))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only token", names)
	}
}

func errString(err error) string {
	if err == nil {
		return "content not one of the written tokens"
	}
	return err.Error()
}

func TestWriteFileAtomicErrorNamesFileAndChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "token")
	err := WriteFileAtomic(path, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v does not name %s", err, path)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed write left %d entries", len(entries))
	}
}

func TestCheckFile(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := func(exp *jwt.NumericDate) string {
		s, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: testID, Expiry: exp}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := map[string]struct {
		content *string
		wantErr string
	}{
		"valid":            {ptr(token(jwt.NewNumericDate(now.Add(time.Minute)))), ""},
		"valid, newline":   {ptr(token(jwt.NewNumericDate(now.Add(time.Minute))) + "\n"), ""},
		"missing":          {nil, "no such file"},
		"empty":            {ptr(""), "empty"},
		"not a JWT":        {ptr("hello"), "not a signed JWT"},
		"no exp":           {ptr(token(nil)), "no exp claim"},
		"expired":          {ptr(token(jwt.NewNumericDate(now.Add(-time.Second)))), "expired at 2026-01-01T11:59:59Z"},
		"expires this sec": {ptr(token(jwt.NewNumericDate(now))), "expired"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if tc.content != nil {
				if err := os.WriteFile(path, []byte(*tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckFile(path, now)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func ptr(s string) *string { return &s }
