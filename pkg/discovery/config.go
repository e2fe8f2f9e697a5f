package discovery

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/irsa-webhook/irsa-webhook/pkg/issuer"
)

// SourceConfig names the issuer and where its keys come from; `discovery
// serve`, `discovery export` and `serve --discovery-port` share it.
type SourceConfig struct {
	// Issuer is the service account issuer, exactly as the API server's
	// --service-account-issuer and as registered with AWS IAM.
	Issuer string
	// JWKSURI overrides <Issuer>/openid/v1/jwks in the configuration.
	JWKSURI       string
	KeyFiles      []string
	FromAPIServer bool
	// FromSPIFFE serves a SPIFFE trust domain's JWT bundle from the
	// Workload API (WorkloadAPIAddr, default $SPIFFE_ENDPOINT_SOCKET);
	// SPIFFETrustDomain picks the bundle when there are several.
	FromSPIFFE        bool
	SPIFFETrustDomain string
	WorkloadAPIAddr   string
}

// AddFlags binds --issuer, --jwks-uri, --key-file and --from-apiserver.
func (c *SourceConfig) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "Service account issuer URL (https, no query or fragment), exactly the API server's --service-account-issuer and the URL registered with AWS IAM.")
	fs.StringVar(&c.JWKSURI, "jwks-uri", c.JWKSURI, "jwks_uri advertised in the configuration document (https). Default: <issuer>/openid/v1/jwks.")
	fs.StringArrayVar(&c.KeyFiles, "key-file", c.KeyFiles, "PEM file of service account public keys, or private keys of which only the public half is used (RSA, ECDSA P-256/P-384). Repeat for rotation. Reloaded on change.")
	fs.BoolVar(&c.FromAPIServer, "from-apiserver", c.FromAPIServer, "Read the keys from the API server's /openid/v1/jwks with this process's credentials (in-cluster or --kubeconfig).")
	fs.BoolVar(&c.FromSPIFFE, "from-spiffe", c.FromSPIFFE, "Serve a SPIFFE trust domain's JWT bundle from the SPIRE agent's Workload API, following its rotations. --issuer must equal the SPIRE server's jwt_issuer.")
	fs.StringVar(&c.SPIFFETrustDomain, "spiffe-trust-domain", c.SPIFFETrustDomain, "Trust domain whose JWT bundle --from-spiffe serves. Default: the only one the Workload API returns.")
	fs.StringVar(&c.WorkloadAPIAddr, "workload-api-addr", c.WorkloadAPIAddr, "Workload API endpoint for --from-spiffe, unix:///path/to/socket. Default: $SPIFFE_ENDPOINT_SOCKET.")
}

// Validate reports every bad source flag, each by name.
func (c *SourceConfig) Validate() error {
	var errs []error
	if err := issuer.Validate(c.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("--issuer: %w", err))
	}
	if c.JWKSURI != "" {
		if _, err := issuer.ParseHTTPS(c.JWKSURI); err != nil {
			errs = append(errs, fmt.Errorf("--jwks-uri: %w", err))
		}
	}
	sources := 0
	for _, on := range []bool{len(c.KeyFiles) > 0, c.FromAPIServer, c.FromSPIFFE} {
		if on {
			sources++
		}
	}
	switch {
	case sources > 1:
		errs = append(errs, errors.New("--key-file, --from-apiserver, --from-spiffe: give exactly one key source, not several"))
	case sources == 0:
		errs = append(errs, errors.New("--key-file, --from-apiserver, --from-spiffe: give exactly one key source (--key-file FILE, repeatable, --from-apiserver or --from-spiffe)"))
	}
	if c.SPIFFETrustDomain != "" {
		if _, err := spiffeid.TrustDomainFromString(c.SPIFFETrustDomain); err != nil {
			errs = append(errs, fmt.Errorf("--spiffe-trust-domain: %q: %w", c.SPIFFETrustDomain, err))
		}
	}
	if c.WorkloadAPIAddr != "" {
		if err := workloadapi.ValidateAddress(c.WorkloadAPIAddr); err != nil {
			errs = append(errs, fmt.Errorf("--workload-api-addr: %q: %w (want unix:///path/to/socket)", c.WorkloadAPIAddr, err))
		}
	}
	if !c.FromSPIFFE && (c.SPIFFETrustDomain != "" || c.WorkloadAPIAddr != "") {
		errs = append(errs, errors.New("--spiffe-trust-domain, --workload-api-addr: only used with --from-spiffe"))
	}
	for _, f := range c.KeyFiles {
		if strings.TrimSpace(f) == "" {
			errs = append(errs, errors.New("--key-file: must not be empty"))
		}
	}
	return errors.Join(errs...)
}

// EffectiveJWKSURI is --jwks-uri, or <issuer>/openid/v1/jwks.
func (c *SourceConfig) EffectiveJWKSURI() string {
	if c.JWKSURI != "" {
		return c.JWKSURI
	}
	return c.Issuer + JWKSPath
}

// Config is everything `irsa-webhook discovery serve` is told by flags.
type Config struct {
	SourceConfig
	// RefreshInterval is how often keys are re-read; the documents count
	// as stale after MaxStaleness.
	RefreshInterval        time.Duration
	Kubeconfig             string
	BindAddress            string
	Port                   int
	CertDir                string
	InsecureHTTP           bool
	MetricsBindAddress     string
	HealthProbeBindAddress string
}

// NewConfig returns the defaults, which AddFlags shows in --help.
func NewConfig() *Config {
	return &Config{
		RefreshInterval:        time.Minute,
		Port:                   8443,
		CertDir:                "/etc/irsa-webhook/tls",
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
	}
}

// AddRefreshFlag binds --refresh-interval.
func (c *Config) AddRefreshFlag(fs *pflag.FlagSet) {
	fs.DurationVar(&c.RefreshInterval, "refresh-interval", c.RefreshInterval, "How often keys are re-read from their source; /readyz fails after 3 intervals without a successful refresh.")
}

// AddFlags binds each flag to its field, with the field's value as default.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.SourceConfig.AddFlags(fs)
	c.AddRefreshFlag(fs)
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "Path to a kubeconfig, for --from-apiserver. Default: in-cluster credentials, then $KUBECONFIG.")
	fs.StringVar(&c.BindAddress, "bind-address", c.BindAddress, "Address the discovery server listens on. Empty means all interfaces.")
	fs.IntVar(&c.Port, "port", c.Port, "Port the discovery server listens on.")
	fs.StringVar(&c.CertDir, "cert-dir", c.CertDir, "Directory holding the serving certificate and key as tls.crt and tls.key; reloaded when they change. Unused with --insecure-http.")
	fs.BoolVar(&c.InsecureHTTP, "insecure-http", c.InsecureHTTP, "Serve plain HTTP, for use behind an Ingress or load balancer that terminates TLS. AWS itself only fetches https.")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "Address of the Prometheus metrics endpoint (plain HTTP). \"0\" disables it.")
	fs.StringVar(&c.HealthProbeBindAddress, "health-probe-bind-address", c.HealthProbeBindAddress, "Address of /healthz and /readyz (plain HTTP). \"0\" disables it.")
}

// Validate reports every bad flag at once, each by its name.
func (c *Config) Validate() error {
	errs := []error{c.SourceConfig.Validate(), c.ValidateRefresh()}
	if c.BindAddress != "" && net.ParseIP(c.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("--bind-address: %q is not an IP address", c.BindAddress))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port: %d is not a port number (1-65535)", c.Port))
	}
	if !c.InsecureHTTP && c.CertDir == "" {
		errs = append(errs, errors.New("--cert-dir: must not be empty unless --insecure-http is set"))
	}
	if err := validateBindAddress(c.MetricsBindAddress); err != nil {
		errs = append(errs, fmt.Errorf("--metrics-bind-address: %w", err))
	}
	if err := validateBindAddress(c.HealthProbeBindAddress); err != nil {
		errs = append(errs, fmt.Errorf("--health-probe-bind-address: %w", err))
	}
	return errors.Join(errs...)
}

// ValidateRefresh checks --refresh-interval.
func (c *Config) ValidateRefresh() error {
	if c.RefreshInterval < time.Second || c.RefreshInterval > 24*time.Hour {
		return fmt.Errorf("--refresh-interval: %s is outside [1s, 24h]", c.RefreshInterval)
	}
	return nil
}

// MaxStaleness is how long the documents may go without a successful
// refresh before /readyz says so: three refresh intervals.
func (c *Config) MaxStaleness() time.Duration { return 3 * c.RefreshInterval }

// validateBindAddress accepts "0" (off) or host:port.
func validateBindAddress(addr string) error {
	if addr == "0" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port or \"0\": %w", addr, err)
	}
	return nil
}

// ExportConfig is everything `irsa-webhook discovery export` is told.
type ExportConfig struct {
	SourceConfig
	Kubeconfig string
	Out        string
	// Output is how the result is reported: text or json.
	Output string
}

// NewExportConfig returns the defaults.
func NewExportConfig() *ExportConfig { return &ExportConfig{Output: "text"} }

// AddFlags binds each flag to its field.
func (c *ExportConfig) AddFlags(fs *pflag.FlagSet) {
	c.SourceConfig.AddFlags(fs)
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "Path to a kubeconfig, for --from-apiserver. Default: in-cluster credentials, then $KUBECONFIG.")
	fs.StringVar(&c.Out, "out", c.Out, "Directory to write the documents into, at their URL paths below the issuer.")
	fs.StringVarP(&c.Output, "output", "o", c.Output, "Report format: text or json.")
}

// Validate reports every bad flag at once, each by its name.
func (c *ExportConfig) Validate() error {
	errs := []error{c.SourceConfig.Validate()}
	if c.Out == "" {
		errs = append(errs, errors.New("--out: required: the directory to write the documents into"))
	}
	if c.Output != "text" && c.Output != "json" {
		errs = append(errs, fmt.Errorf("--output: %q is not text or json", c.Output))
	}
	return errors.Join(errs...)
}
