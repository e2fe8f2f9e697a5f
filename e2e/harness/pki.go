package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a throw-away certificate authority for one Stack: it signs the
// serving certificates of every server and the client certificates the API
// server authenticates. Nothing here is ever reused across runs.
type PKI struct {
	Dir    string
	CAFile string // PEM of the CA certificate
	CAPEM  []byte

	ca    *x509.Certificate
	caKey crypto.Signer
}

// NewPKI creates a CA under dir.
func NewPKI(dir string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki dir: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "irsa-webhook e2e CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	p := &PKI{Dir: dir, CAFile: filepath.Join(dir, "ca.crt"), CAPEM: pemBlock("CERTIFICATE", der), ca: ca, caKey: key}
	if err := os.WriteFile(p.CAFile, p.CAPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write CA certificate: %w", err)
	}
	return p, nil
}

// CertPool returns a pool holding only this PKI's CA.
func (p *PKI) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// ServingCert writes tls.crt and tls.key for 127.0.0.1, ::1, localhost and
// extraIPs into Dir/name and returns that directory (the --cert-dir layout).
func (p *PKI) ServingCert(name string, extraIPs ...net.IP) (string, error) {
	dir := filepath.Join(p.Dir, name)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		DNSNames:    []string{"localhost"},
		IPAddresses: append([]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, extraIPs...),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return dir, p.issue(dir, "tls.crt", "tls.key", tmpl)
}

// ClientCert writes name.crt and name.key for a client authenticating as
// user in groups, and returns their paths.
func (p *PKI) ClientCert(name, user string, groups ...string) (certFile, keyFile string, err error) {
	dir := filepath.Join(p.Dir, "clients")
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	return certFile, keyFile, p.issue(dir, name+".crt", name+".key", tmpl)
}

func (p *PKI) issue(dir, certName, keyName string, tmpl *x509.Certificate) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key for %s: %w", tmpl.Subject.CommonName, err)
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		return fmt.Errorf("sign certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key for %s: %w", tmpl.Subject.CommonName, err)
	}
	if err := os.WriteFile(filepath.Join(dir, certName), pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return fmt.Errorf("write certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyName), pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return fmt.Errorf("write key for %s: %w", tmpl.Subject.CommonName, err)
	}
	return nil
}

// SigningKey is a service-account token signing key pair on disk.
type SigningKey struct {
	PrivateFile string // PKCS#8 PEM, for --service-account-signing-key-file
	PublicFile  string // PKIX PEM, for --service-account-key-file and --key-file
	Key         *rsa.PrivateKey
}

// NewSigningKey writes a fresh RSA-2048 key pair as name.key and name.pub
// under dir. RSA is what AWS IAM and kube-apiserver's default use (RS256).
func NewSigningKey(dir, name string) (*SigningKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate signing key %s: %w", name, err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key %s: %w", name, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encode public key %s: %w", name, err)
	}
	k := &SigningKey{PrivateFile: filepath.Join(dir, name+".key"), PublicFile: filepath.Join(dir, name+".pub"), Key: key}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.WriteFile(k.PrivateFile, pemBlock("PRIVATE KEY", priv), 0o600); err != nil {
		return nil, fmt.Errorf("write signing key %s: %w", name, err)
	}
	if err := os.WriteFile(k.PublicFile, pemBlock("PUBLIC KEY", pub), 0o644); err != nil {
		return nil, fmt.Errorf("write public key %s: %w", name, err)
	}
	return k, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(fmt.Sprintf("read random serial: %v", err)) // crypto/rand never fails on Linux
	}
	return n
}
