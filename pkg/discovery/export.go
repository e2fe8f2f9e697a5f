package discovery

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Export writes docs under dir at their URL paths relative to the issuer
// (.well-known/openid-configuration, openid/v1/jwks and keys.json), the same
// bytes the Handler serves, and returns the paths written. Each file is
// written to a temporary name and renamed, so a web server reading dir never
// sees half a document.
func Export(docs *Documents, dir string) ([]string, error) {
	if docs == nil {
		return nil, errors.New("no documents to export")
	}
	files := []struct {
		urlPath string
		body    []byte
	}{
		{ConfigPath, docs.Config},
		{JWKSPath, docs.JWKS},
		{LegacyJWKSPath, docs.JWKS},
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(f.urlPath, "/")))
		if err := writeAtomic(path, f.body); err != nil {
			return written, fmt.Errorf("export %s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}

func writeAtomic(path string, body []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
