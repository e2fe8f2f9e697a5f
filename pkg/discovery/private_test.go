package discovery

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
)

// parsePrivateForTest reads the last private key of a PEM file, so tests
// know which secret values must never appear in any output.
func parsePrivateForTest(data []byte) (crypto.PrivateKey, error) {
	var key crypto.PrivateKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
		if err != nil {
			return nil, err
		}
	}
	if key == nil {
		return nil, errors.New("no private key")
	}
	return key, nil
}
