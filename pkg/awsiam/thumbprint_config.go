package awsiam

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// ThumbprintConfig is everything `irsa-webhook thumbprint` is told by flags
// and its one argument.
type ThumbprintConfig struct {
	// Target is the issuer (or jwks_uri) URL, or a bare host[:port].
	Target  string
	CAFile  string
	Timeout time.Duration
	Output  string
	// Discovery treats an https Target as the issuer, as AWS's procedure
	// does: its discovery document is read and the jwks_uri host's
	// thumbprint taken as well when it is another host, since AWS then
	// checks both. A bare host[:port] is thumbprinted as it is.
	Discovery bool
}

// NewThumbprintConfig returns the defaults, which AddFlags shows in --help.
func NewThumbprintConfig() *ThumbprintConfig {
	return &ThumbprintConfig{Timeout: 10 * time.Second, Output: OutputText, Discovery: true}
}

// AddFlags binds each flag to its field, with the field's value as default.
func (c *ThumbprintConfig) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.CAFile, "ca-file", c.CAFile, "PEM file of the CA certificates that sign the server's chain, for a private CA. Default: the system's trusted roots.")
	fs.BoolVar(&c.Discovery, "discovery", c.Discovery, "Treat an https URL as the issuer, as AWS's procedure does: read its /.well-known/openid-configuration and also print the thumbprint of the jwks_uri host when it is another host (AWS wants both). --discovery=false thumbprints the URL's host alone. A bare host[:port] is always thumbprinted alone.")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "Bound on connecting and the TLS handshake.")
	fs.StringVarP(&c.Output, "output", "o", c.Output, "Output format: text (the thumbprint alone) or json (with the certificate it was taken from and the whole chain).")
}

// Validate reports every bad flag and argument at once.
func (c *ThumbprintConfig) Validate() error {
	var errs []error
	if _, _, err := ThumbprintAddress(c.Target); err != nil {
		errs = append(errs, fmt.Errorf("URL argument: %w", err))
	}
	if c.CAFile != "" {
		if _, err := LoadCAFile(c.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("--ca-file: %w", err))
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: %s must be positive", c.Timeout))
	}
	if c.Output != OutputJSON && c.Output != OutputText {
		errs = append(errs, fmt.Errorf("--output: %q is not text or json", c.Output))
	}
	return errors.Join(errs...)
}

// LoadCAFile reads a PEM bundle of CA certificates.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA file %s holds no PEM CERTIFICATE block", path)
	}
	return pool, nil
}

// Run loads --ca-file and takes the thumbprint of Target, bounded by
// Timeout. Call Validate first.
func (c *ThumbprintConfig) Run(ctx context.Context) (*ThumbprintResult, error) {
	var roots *x509.CertPool
	if c.CAFile != "" {
		var err error
		if roots, err = LoadCAFile(c.CAFile); err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	res, err := Thumbprint(ctx, c.Target, roots)
	if err != nil || !c.Discovery || !strings.HasPrefix(c.Target, "https://") {
		return res, err
	}
	jwksURI, err := discoveryJWKSURI(ctx, c.Target, roots)
	if err != nil {
		return nil, err
	}
	addr, _, err := ThumbprintAddress(jwksURI)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri of %s: %w", c.Target, err)
	}
	if addr != res.Address {
		if res.JWKS, err = Thumbprint(ctx, jwksURI, roots); err != nil {
			return nil, fmt.Errorf("jwks_uri %s: %w", jwksURI, err)
		}
	}
	return res, nil
}

// Write renders r as output: OutputText prints the thumbprints alone, one
// a line (for scripts); OutputJSON the whole result.
func (r *ThumbprintResult) Write(w io.Writer, output string) error {
	if output == OutputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("render thumbprint: %w", err)
		}
		return nil
	}
	_, err := fmt.Fprintln(w, strings.Join(r.Thumbprints(), "\n"))
	return err
}
