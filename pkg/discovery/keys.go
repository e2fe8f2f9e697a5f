package discovery

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// PEM block types ParseKeys reads. "EC PARAMETERS", which openssl writes
// before an EC private key, is skipped.
const (
	blockPublicKey     = "PUBLIC KEY"      // PKIX (RSA or EC)
	blockRSAPublicKey  = "RSA PUBLIC KEY"  // PKCS#1
	blockRSAPrivateKey = "RSA PRIVATE KEY" // PKCS#1
	blockPrivateKey    = "PRIVATE KEY"     // PKCS#8 (RSA or EC)
	blockECPrivateKey  = "EC PRIVATE KEY"  // SEC 1
	blockECParameters  = "EC PARAMETERS"
)

const (
	// minRSAModulusBits is the smallest RSA key accepted.
	minRSAModulusBits = 2048
	// maxKeys bounds the keys one source may publish.
	maxKeys = 100
)

// ErrNoKeys is returned when input holds no key at all.
var ErrNoKeys = errors.New("no PEM key block found")

// ParseKeys returns the public keys in PEM data, in the order they appear.
// It accepts RSA (2048 bits or more) and ECDSA P-256 or P-384 keys as PKIX
// or PKCS#1 public keys, or PKCS#1, PKCS#8 or SEC 1 private keys, of which
// only the public half is kept. Any block it cannot use is an error naming
// the block's position and type, never its contents.
func ParseKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	rest := data
	for i := 1; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == blockECParameters {
			continue
		}
		pub, err := parseBlock(block)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", i, block.Type, err)
		}
		if err := checkPublicKey(pub); err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", i, block.Type, err)
		}
		keys = append(keys, pub)
		if len(keys) > maxKeys {
			return nil, fmt.Errorf("more than %d keys", maxKeys)
		}
	}
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the last PEM block is not PEM")
	}
	return keys, nil
}

// parseBlock turns one PEM block into a public key. Private keys are
// reduced to their public half here and go no further.
func parseBlock(block *pem.Block) (crypto.PublicKey, error) {
	if len(block.Headers) != 0 {
		return nil, errors.New("encrypted or annotated PEM blocks are not supported")
	}
	var (
		pub crypto.PublicKey
		err error
	)
	switch block.Type {
	case blockPublicKey:
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case blockRSAPublicKey:
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case blockRSAPrivateKey:
		var k *rsa.PrivateKey
		if k, err = x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			pub = &k.PublicKey
		}
	case blockECPrivateKey:
		var k *ecdsa.PrivateKey
		if k, err = x509.ParseECPrivateKey(block.Bytes); err == nil {
			pub = &k.PublicKey
		}
	case blockPrivateKey:
		var k any
		if k, err = x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			signer, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("unsupported private key type %T", k)
			}
			pub = signer.Public()
		}
	default:
		return nil, fmt.Errorf("unsupported PEM block type; want %s, %s, %s, %s or %s",
			blockPublicKey, blockRSAPublicKey, blockRSAPrivateKey, blockPrivateKey, blockECPrivateKey)
	}
	if err != nil {
		return nil, fmt.Errorf("decode key: %w", err)
	}
	return pub, nil
}

// checkPublicKey accepts the key types AWS IAM verifies and kube-apiserver
// signs with: RSA of at least 2048 bits, ECDSA on P-256 or P-384.
func checkPublicKey(pub crypto.PublicKey) error {
	_, err := Algorithm(pub)
	return err
}

// Algorithm is the JWS algorithm kube-apiserver signs with for pub: RS256
// for RSA, ES256 for P-256 and ES384 for P-384 keys.
func Algorithm(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSAModulusBits {
			return "", fmt.Errorf("RSA key is smaller than %d bits", minRSAModulusBits)
		}
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		}
		name := "unknown"
		if k.Curve != nil && k.Curve.Params() != nil {
			name = k.Curve.Params().Name
		}
		return "", fmt.Errorf("ECDSA curve %s is not supported; use P-256 or P-384", name)
	}
	return "", fmt.Errorf("key type %T is not supported; use RSA or ECDSA", pub)
}

// KeyID is the kid kube-apiserver stamps into the tokens it signs with the
// private half of pub: the unpadded base64url encoding of the SHA-256 digest
// of the key's DER-encoded PKIX (SubjectPublicKeyInfo) form.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key as PKIX: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// JWK is pub as a signing key of the JWKS: kty from the key, alg from
// Algorithm, use "sig", and kid from KeyID.
func JWK(pub crypto.PublicKey) (jose.JSONWebKey, error) {
	kid, err := KeyID(pub)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return jwkWithID(pub, kid)
}

// jwkWithID builds a public signing JWK with the given kid. It refuses any
// key that is not a supported public key, so a private key can never reach
// a rendered document.
func jwkWithID(pub crypto.PublicKey, kid string) (jose.JSONWebKey, error) {
	alg, err := Algorithm(pub)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k := jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(alg), Use: "sig"}
	if !k.IsPublic() || !k.Valid() {
		return jose.JSONWebKey{}, errors.New("not a valid public key")
	}
	return k, nil
}
