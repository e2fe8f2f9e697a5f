package svidhelper

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// Config is everything `irsa-webhook svid-helper` is told by flags.
type Config struct {
	// WorkloadAPIAddr is the Workload API endpoint ("unix:///path"); empty
	// means $SPIFFE_ENDPOINT_SOCKET.
	WorkloadAPIAddr string
	// Audience of the JWT-SVID: what the AWS OpenID provider's client ID is.
	Audience string
	// SPIFFEID, when not empty, picks which of the workload's identities to
	// fetch an SVID for.
	SPIFFEID string
	// File receives the token.
	File string
	// MetricsBindAddress serves /metrics; "0" turns it off.
	MetricsBindAddress string
	// MinBackoff and MaxBackoff bound the wait between failed fetches.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// NewConfig returns the defaults, which AddFlags shows in --help.
func NewConfig() *Config {
	return &Config{
		Audience:           identity.DefaultAudience,
		MetricsBindAddress: "0",
		MinBackoff:         time.Second,
		MaxBackoff:         30 * time.Second,
	}
}

// AddFlags binds each flag to its field, with the field's value as default.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.WorkloadAPIAddr, "workload-api-addr", c.WorkloadAPIAddr, "Workload API endpoint, unix:///path/to/socket. Default: $SPIFFE_ENDPOINT_SOCKET.")
	fs.StringVar(&c.Audience, "audience", c.Audience, "Audience of the JWT-SVID (the AWS OpenID Connect provider's client ID).")
	fs.StringVar(&c.SPIFFEID, "spiffe-id", c.SPIFFEID, "SPIFFE ID to fetch the JWT-SVID for, when the workload has several. Default: the Workload API's first identity.")
	fs.StringVar(&c.File, "file", c.File, "File to write the token to (what AWS_WEB_IDENTITY_TOKEN_FILE names). Required.")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "Address of the Prometheus metrics endpoint (plain HTTP), e.g. 127.0.0.1:9464. \"0\" disables it.")
	fs.DurationVar(&c.MinBackoff, "min-backoff", c.MinBackoff, "First wait after a failed fetch; it doubles on each failure up to --max-backoff.")
	fs.DurationVar(&c.MaxBackoff, "max-backoff", c.MaxBackoff, "Longest wait between failed fetches.")
}

// Validate reports every bad flag at once, each by its name.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.WorkloadAPIAddr != "" {
		if err := workloadapi.ValidateAddress(c.WorkloadAPIAddr); err != nil {
			bad("workload-api-addr", "%q: %v (want unix:///path/to/socket)", c.WorkloadAPIAddr, err)
		}
	}
	if err := identity.ValidateAudience(c.Audience); err != nil {
		bad("audience", "%v", err)
	}
	if c.SPIFFEID != "" {
		if err := identity.ValidateSPIFFEID(c.SPIFFEID); err != nil {
			bad("spiffe-id", "%v", err)
		}
	}
	if c.File == "" {
		bad("file", "is required: the path AWS_WEB_IDENTITY_TOKEN_FILE names")
	} else if filepath.Base(c.File) == "." || filepath.Base(c.File) == string(filepath.Separator) {
		bad("file", "%q names a directory, want a file", c.File)
	}
	if c.MetricsBindAddress != "0" {
		if _, _, err := net.SplitHostPort(c.MetricsBindAddress); err != nil {
			bad("metrics-bind-address", "%q is not host:port or \"0\"", c.MetricsBindAddress)
		}
	}
	if c.MinBackoff <= 0 {
		bad("min-backoff", "%s must be positive", c.MinBackoff)
	}
	if c.MaxBackoff < c.MinBackoff {
		bad("max-backoff", "%s is shorter than --min-backoff %s", c.MaxBackoff, c.MinBackoff)
	}
	return errors.Join(errs...)
}
