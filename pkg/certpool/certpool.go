package certpool

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/irsa-webhook/irsa-webhook/internal/boundedfile"
)

// MaxFileBytes bounds a CA file: far more than any real bundle (the public
// roots of a whole OS are about 250 KiB), far less than would hurt.
const MaxFileBytes = 4 << 20

// Parse returns the certificates of a PEM bundle. A bundle without one, or
// with a block that is not a parseable certificate, is an error; the error
// never holds the bundle's bytes.
func Parse(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		n := len(certs) + 1
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("holds no PEM certificate")
	}
	return certs, nil
}

// New returns a pool of the certificates of a PEM bundle.
func New(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if err := Append(pool, data); err != nil {
		return nil, err
	}
	return pool, nil
}

// Append adds the certificates of a PEM bundle to pool, or, on an error,
// none of them.
func Append(pool *x509.CertPool, data []byte) error {
	certs, err := Parse(data)
	if err != nil {
		return err
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return nil
}

// ReadFile reads a CA file of at most MaxFileBytes and checks that it is a
// PEM bundle of certificates; it returns the bytes, for a caller that
// reloads the file and compares.
func ReadFile(path string) ([]byte, error) {
	data, err := boundedfile.Read(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if _, err := Parse(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// LoadFile is ReadFile into a new pool.
func LoadFile(path string) (*x509.CertPool, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return New(data)
}
