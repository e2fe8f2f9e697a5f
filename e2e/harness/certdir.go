package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// CertDir is a serving certificate directory in the layout kubelet writes a
// mounted Secret in, which is how a certificate cert-manager renews reaches
// a pod: tls.crt and tls.key are symlinks into ..data, itself a symlink to
// a versioned directory. An update writes a new directory and swaps ..data
// with one rename, so a reader sees the old pair or the new pair, never a
// mix of the two, and then removes the old directory.
type CertDir struct {
	Dir     string
	version int
}

const certDataLink = "..data"

var certFiles = []string{"tls.crt", "tls.key"}

// AtomicCertDir turns dir (plain tls.crt and tls.key, as PKI.ServingCert
// writes them) into the kubelet layout, keeping the same certificate and
// key, so a server already reading dir serves on unchanged.
func AtomicCertDir(dir string) (*CertDir, error) {
	files := map[string][]byte{}
	for _, name := range certFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read serving certificate: %w", err)
		}
		files[name] = data
	}
	d := &CertDir{Dir: dir}
	if err := d.Update(files); err != nil {
		return nil, err
	}
	for _, name := range certFiles {
		tmp := filepath.Join(dir, "."+name+".tmp")
		_ = os.Remove(tmp)
		if err := os.Symlink(filepath.Join(certDataLink, name), tmp); err != nil {
			return nil, fmt.Errorf("link %s: %w", name, err)
		}
		// rename(2) replaces the plain file with the link in one step.
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("link %s: %w", name, err)
		}
	}
	return d, nil
}

// Update writes files into a new version directory and swaps ..data to it.
func (d *CertDir) Update(files map[string][]byte) error {
	d.version++
	name := "..v" + strconv.Itoa(d.version)
	vdir := filepath.Join(d.Dir, name)
	if err := os.Mkdir(vdir, 0o700); err != nil {
		return fmt.Errorf("update certificate directory: %w", err)
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(vdir, f), data, 0o600); err != nil {
			return fmt.Errorf("update certificate directory: %w", err)
		}
	}
	old, _ := os.Readlink(filepath.Join(d.Dir, certDataLink))
	tmp := filepath.Join(d.Dir, certDataLink+"_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		return fmt.Errorf("update certificate directory: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Dir, certDataLink)); err != nil {
		return fmt.Errorf("update certificate directory: %w", err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(d.Dir, old)); err != nil {
			return fmt.Errorf("remove old certificate version %s: %w", old, err)
		}
	}
	return nil
}

// NewWebhookCert issues a new serving certificate for the webhook from the
// Stack's CA and returns tls.crt and tls.key, ready for CertDir.Update, and
// the certificate itself.
func (s *Stack) NewWebhookCert() (map[string][]byte, *x509.Certificate, error) {
	dir, err := s.PKI.ServingCert("irsa-webhook-" + strconv.FormatInt(time.Now().UnixNano(), 36))
	if err != nil {
		return nil, nil, err
	}
	files := map[string][]byte{}
	for _, name := range certFiles {
		if files[name], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			return nil, nil, fmt.Errorf("read new serving certificate: %w", err)
		}
	}
	block, _ := pem.Decode(files["tls.crt"])
	if block == nil {
		return nil, nil, errors.New("new serving certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse new serving certificate: %w", err)
	}
	return files, cert, nil
}

// ServedCertificate completes a TLS handshake with addr (host:port),
// verifying against the Stack's CA, and returns the leaf certificate.
func (s *Stack) ServedCertificate(ctx context.Context, addr string) (*x509.Certificate, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: s.PKI.CertPool(), ServerName: "127.0.0.1"}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("tls handshake with %s: no certificate", addr)
	}
	return certs[0], nil
}
