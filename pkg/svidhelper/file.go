package svidhelper

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenFileMode lets application containers running as another user read
// the token, as the projected service account token volume does.
const tokenFileMode = 0o644

// WriteFileAtomic replaces path with data so that a reader sees the old
// content or the new, never a mix or an empty file: it writes a temporary
// file in the same directory, syncs it and renames it over path.
func WriteFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	if err = tmp.Chmod(tokenFileMode); err != nil {
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	return nil
}

// signatureAlgorithms are those a JWT-SVID may be signed with.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512,
}

// CheckFile reports whether path holds a JWT that has not expired at now:
// what the sidecar's startup probe asks. The signature is not verified; the
// question is only whether the helper has written a usable token yet.
func CheckFile(path string, now time.Time) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("check token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return fmt.Errorf("check token file %s: empty", path)
	}
	tok, err := jwt.ParseSigned(token, signatureAlgorithms)
	if err != nil {
		return fmt.Errorf("check token file %s: not a signed JWT: %w", path, err)
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return fmt.Errorf("check token file %s: read claims: %w", path, err)
	}
	if claims.Expiry == nil {
		return fmt.Errorf("check token file %s: token has no exp claim", path)
	}
	if exp := claims.Expiry.Time(); !now.Before(exp) {
		return fmt.Errorf("check token file %s: token expired at %s", path, exp.UTC().Format(time.RFC3339))
	}
	return nil
}
