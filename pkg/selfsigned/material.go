package selfsigned

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/certpool"
)

// Keys of the Secret's data, as in a kubernetes.io/tls Secret.
const (
	CAKey   = "ca.crt"
	CertKey = corev1.TLSCertKey
	KeyKey  = corev1.TLSPrivateKeyKey
)

// backdate keeps a node whose clock is a little behind from rejecting a
// certificate as not yet valid.
const backdate = 5 * time.Minute

// maxCAs bounds ca.crt: the current CA and the previous ones still valid.
const maxCAs = 3

// material is one generation of the Secret's content, parsed.
type material struct {
	caPEM   []byte // the current CA first, then previous ones
	certPEM []byte
	keyPEM  []byte
	cert    *tls.Certificate
	leaf    *x509.Certificate
}

// renewAt is when the serving certificate is due: 2/3 of its lifetime.
func (m *material) renewAt() time.Time {
	life := m.leaf.NotAfter.Sub(m.leaf.NotBefore)
	return m.leaf.NotBefore.Add(life * 2 / 3)
}

func (m *material) data() map[string][]byte {
	return map[string][]byte{CAKey: m.caPEM, CertKey: m.certPEM, KeyKey: m.keyPEM}
}

// parseMaterial checks the Secret's data: a key pair that matches, a
// certificate for every one of dnsNames and ips that chains to a CA in
// ca.crt and is valid at now. It never returns key bytes in an error.
func parseMaterial(data map[string][]byte, dnsNames []string, ips []net.IP, now time.Time) (*material, error) {
	if len(data[CAKey]) == 0 || len(data[CertKey]) == 0 || len(data[KeyKey]) == 0 {
		return nil, fmt.Errorf("one of %s, %s, %s is missing", CAKey, CertKey, KeyKey)
	}
	pair, err := tls.X509KeyPair(data[CertKey], data[KeyKey])
	if err != nil {
		return nil, errors.New("tls.crt and tls.key are not a matching certificate and key")
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse tls.crt: %w", err)
		}
	}
	roots, err := certpool.New(data[CAKey])
	if err != nil {
		return nil, fmt.Errorf("ca.crt %w", err)
	}
	for _, name := range dnsNames {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: now}); err != nil {
			return nil, fmt.Errorf("tls.crt for %s: %w", name, err)
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return nil, fmt.Errorf("tls.crt does not name %s", ip)
		}
	}
	return &material{caPEM: data[CAKey], certPEM: data[CertKey], keyPEM: data[KeyKey], cert: &pair, leaf: leaf}, nil
}

// generate makes a CA, signs a serving certificate for dnsNames and ips with
// it and forgets the CA's key. Serial numbers are random (crypto/x509
// picks them when the template has none). keepCAs (PEM) are appended to ca.crt for as
// long as they are valid, so servers still using an older certificate stay
// trusted.
func generate(dnsNames []string, ips []net.IP, validity time.Duration, now time.Time, keepCAs []byte) (*material, error) {
	notBefore := now.Add(-backdate)
	notAfter := now.Add(validity)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "irsa-webhook-ca@" + now.UTC().Format(time.RFC3339)},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	leafTemplate := &x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0]},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode serving key: %w", err)
	}

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	caPEM = append(caPEM, stillValid(keepCAs, now, maxCAs-1)...)
	return parseMaterial(map[string][]byte{
		CAKey:   caPEM,
		CertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		KeyKey:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, dnsNames, ips, now)
}

// stillValid returns up to limit of the PEM certificates in bundle that are
// valid at now, in order, without duplicates.
func stillValid(bundle []byte, now time.Time, limit int) []byte {
	var out [][]byte
	for len(bundle) > 0 && len(out) < limit {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || now.After(c.NotAfter) {
			continue
		}
		enc := pem.EncodeToMemory(block)
		if !slices.ContainsFunc(out, func(b []byte) bool { return bytes.Equal(b, enc) }) {
			out = append(out, enc)
		}
	}
	return bytes.Join(out, nil)
}
