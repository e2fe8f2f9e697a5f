package serving

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/irsa-webhook/irsa-webhook/internal/boundedfile"
	"github.com/irsa-webhook/irsa-webhook/pkg/certpool"
)

// MaxCAFileBytes bounds a CA file: a bundle of a few hundred certificates.
const MaxCAFileBytes = 1 << 20

// DefaultCAReloadInterval is how often the client CA file is re-read; a
// mounted ConfigMap or Secret changes within about a minute anyway.
const DefaultCAReloadInterval = 10 * time.Second

// ClientAuthConfig is what the --client-* flags of irsa-webhook serve set.
type ClientAuthConfig struct {
	// CAFile, when set, makes the server complete the TLS handshake only
	// with clients whose certificate chains to one of its PEM certificates.
	CAFile string
	// AllowedNames, when set, are the names a client certificate must carry
	// one of, as its subject CN or a DNS or URI SAN. Empty: any certificate
	// from the CA.
	AllowedNames []string
	// ReloadInterval is how often CAFile is re-read (not a flag).
	ReloadInterval time.Duration
}

// NewClientAuthConfig returns the defaults: no client authentication.
func NewClientAuthConfig() *ClientAuthConfig {
	return &ClientAuthConfig{ReloadInterval: DefaultCAReloadInterval}
}

// AddFlags binds each flag to its field, with the field's value as default.
func (c *ClientAuthConfig) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.CAFile, "client-ca-file", c.CAFile, "PEM file of the CAs whose client certificates the webhook accepts; when set, clients without one (anything but the API server) fail the TLS handshake. Reloaded when it changes. Empty: no client authentication.")
	fs.StringSliceVar(&c.AllowedNames, "client-allowed-names", c.AllowedNames, "With --client-ca-file: the client certificate's subject CN or one of its DNS or URI SANs must be one of these names. Empty: any certificate from those CAs.")
}

// Enabled says whether client certificates are required.
func (c *ClientAuthConfig) Enabled() bool { return c.CAFile != "" }

// Validate reports every bad flag at once, each by its name.
func (c *ClientAuthConfig) Validate() error {
	var errs []error
	if c.CAFile != "" {
		if _, _, err := loadCA(c.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("--client-ca-file: %w", err))
		}
	}
	if len(c.AllowedNames) > 0 && c.CAFile == "" {
		errs = append(errs, errors.New("--client-allowed-names: needs --client-ca-file"))
	}
	for _, n := range c.AllowedNames {
		if n == "" || strings.ContainsFunc(n, isSpaceOrControl) {
			errs = append(errs, fmt.Errorf("--client-allowed-names: %q is empty or contains white space", n))
		}
	}
	if c.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("client CA reload interval %s is not positive", c.ReloadInterval))
	}
	return errors.Join(errs...)
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// loadCA reads a CA file of at most MaxCAFileBytes into a pool, with the
// bytes read (for the reloader to compare). A file without certificates,
// or with anything but certificates (a key pasted in by mistake), is an
// error; the error never holds the file's content.
func loadCA(path string) (*x509.CertPool, []byte, error) {
	data, err := boundedfile.Read(path, MaxCAFileBytes)
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &pathErr):
		return nil, nil, err
	case err != nil:
		return nil, nil, fmt.Errorf("%s is %w", path, err)
	}
	pool, err := certpool.New(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return pool, data, nil
}

// ClientAuth requires TLS clients to present a certificate from the CAs of
// a file, re-read on an interval, with one of the allowed names. It is a
// controller-runtime Runnable: Start runs the reloader.
type ClientAuth struct {
	file     string
	allowed  []string
	interval time.Duration
	log      logr.Logger

	pool atomic.Pointer[x509.CertPool]
	// Only the reloader uses these: the content behind pool, and the last
	// error, logged once rather than every interval.
	last    []byte
	lastErr string
}

// NewClientAuth loads cfg.CAFile; cfg must have passed Validate and be
// enabled.
func NewClientAuth(cfg ClientAuthConfig, log logr.Logger) (*ClientAuth, error) {
	pool, data, err := loadCA(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	a := &ClientAuth{file: cfg.CAFile, allowed: slices.Clone(cfg.AllowedNames), interval: cfg.ReloadInterval, log: log, last: data}
	a.pool.Store(pool)
	return a, nil
}

// ConfigureTLS makes a server's tls.Config require client certificates; it
// is a tlsOpts function of webhook.NewServer. Each handshake uses a copy of
// c, as it is then, with the CAs last loaded.
func (a *ClientAuth) ConfigureTLS(c *tls.Config) {
	prev := c.GetConfigForClient
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		base := c
		if prev != nil {
			cfg, err := prev(hello)
			if err != nil {
				return nil, err
			}
			if cfg != nil {
				base = cfg
			}
		}
		cfg := base.Clone()
		cfg.GetConfigForClient = nil
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = a.pool.Load()
		cfg.VerifyConnection = a.verifyConnection
		return cfg, nil
	}
}

// verifyConnection checks the names. crypto/tls has verified the chain
// against ClientCAs; it also runs for resumed sessions, which crypto/tls
// resumes only while their chain still verifies against the CAs of now.
func (a *ClientAuth) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("client certificate required")
	}
	leaf := cs.PeerCertificates[0]
	if len(a.allowed) > 0 && !slices.ContainsFunc(certNames(leaf), func(n string) bool { return slices.Contains(a.allowed, n) }) {
		return fmt.Errorf("client certificate %q names none of --client-allowed-names", leaf.Subject.CommonName)
	}
	return nil
}

// certNames are the names a client certificate is matched by.
func certNames(c *x509.Certificate) []string {
	names := append([]string{c.Subject.CommonName}, c.DNSNames...)
	for _, u := range c.URIs {
		names = append(names, u.String())
	}
	return names
}

// NeedLeaderElection is false: every replica serves.
func (a *ClientAuth) NeedLeaderElection() bool { return false }

// Start re-reads the CA file every interval until ctx ends. A file that
// cannot be read or holds no certificates is logged and the CAs last
// loaded stay, so a bad edit does not lock the API server out.
func (a *ClientAuth) Start(ctx context.Context) error {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			changed, err := a.reload()
			switch {
			case err != nil && err.Error() != a.lastErr:
				a.log.Error(err, "client CA file not reloaded; keeping the CAs last loaded", "file", a.file)
			case changed:
				a.log.Info("client CA file reloaded", "file", a.file)
			}
			a.lastErr = ""
			if err != nil {
				a.lastErr = err.Error()
			}
		}
	}
}

// reload loads the file if its content changed.
func (a *ClientAuth) reload() (bool, error) {
	pool, data, err := loadCA(a.file)
	if err != nil {
		return false, err
	}
	if bytes.Equal(data, a.last) {
		return false, nil
	}
	a.pool.Store(pool)
	a.last = data
	return true, nil
}
