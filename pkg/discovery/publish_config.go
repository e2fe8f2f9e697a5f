package discovery

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// PublishConfig is everything `irsa-webhook discovery publish` is told by
// flags.
type PublishConfig struct {
	SourceConfig
	Kubeconfig string
	// RefreshInterval is how often the keys are re-read from their source.
	RefreshInterval        time.Duration
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// Bucket and Prefix say where the issuer's documents go: for an issuer
	// https://<bucket>.s3.<region>.amazonaws.com/<prefix>, Bucket and
	// Prefix name the same place.
	Bucket string
	Prefix string
	// Region of the bucket; empty means the SDK's (AWS_REGION, the shared
	// config).
	Region string
	// EndpointURL overrides the S3 endpoint (an S3-compatible store, a VPC
	// endpoint); PathStyle addresses the bucket in the path, as such
	// stores often need.
	EndpointURL string
	PathStyle   bool
	// Once publishes the current documents and exits, for a Job.
	Once bool
}

// NewPublishConfig returns the defaults, which AddFlags shows in --help.
func NewPublishConfig() *PublishConfig {
	d := NewConfig()
	return &PublishConfig{RefreshInterval: d.RefreshInterval, MetricsBindAddress: d.MetricsBindAddress, HealthProbeBindAddress: d.HealthProbeBindAddress}
}

// AddFlags binds each flag to its field.
func (c *PublishConfig) AddFlags(fs *pflag.FlagSet) {
	c.SourceConfig.AddFlags(fs)
	fs.DurationVar(&c.RefreshInterval, "refresh-interval", c.RefreshInterval, "How often keys are re-read from their source; a change is published within one interval, and /readyz fails after 3 intervals without the bucket matching the keys.")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "Path to a kubeconfig, for --from-apiserver. Default: in-cluster credentials, then $KUBECONFIG.")
	fs.StringVar(&c.Bucket, "bucket", c.Bucket, "S3 bucket the documents are written to (required). Its AWS credentials come from the SDK's usual chain (environment, a mounted Secret's shared credentials file, the node's role), never from IRSA: the issuer is not published yet.")
	fs.StringVar(&c.Prefix, "prefix", c.Prefix, "Key prefix of the issuer's path in the bucket, e.g. clusters/prod for https://<bucket host>/clusters/prod. Empty: the bucket's root.")
	fs.StringVar(&c.Region, "region", c.Region, "Region of the bucket. Default: the SDK's (AWS_REGION, the shared config).")
	fs.StringVar(&c.EndpointURL, "endpoint-url", c.EndpointURL, "S3 endpoint URL (https) instead of AWS's, e.g. an S3-compatible store. Default: the SDK's (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL).")
	fs.BoolVar(&c.PathStyle, "path-style", c.PathStyle, "Address the bucket in the URL path instead of the host name, as S3-compatible stores often need.")
	fs.BoolVar(&c.Once, "once", c.Once, "Publish the current documents once and exit (for a Job); otherwise keep the bucket current until stopped.")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "Address of the Prometheus metrics endpoint (plain HTTP). \"0\" disables it.")
	fs.StringVar(&c.HealthProbeBindAddress, "health-probe-bind-address", c.HealthProbeBindAddress, "Address of /healthz and /readyz (plain HTTP). \"0\" disables it.")
}

// Validate reports every bad flag at once, each by its name.
func (c *PublishConfig) Validate() error {
	errs := []error{c.SourceConfig.Validate(), (&Config{RefreshInterval: c.RefreshInterval}).ValidateRefresh()}
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if err := ValidateBucketName(c.Bucket); err != nil {
		bad("bucket", "%v", err)
	}
	if err := ValidatePrefix(c.Prefix); err != nil {
		bad("prefix", "%v", err)
	}
	if err := ValidateEndpointURL(c.EndpointURL); err != nil {
		bad("endpoint-url", "%v", err)
	}
	if err := validateBindAddress(c.MetricsBindAddress); err != nil {
		bad("metrics-bind-address", "%v", err)
	}
	if err := validateBindAddress(c.HealthProbeBindAddress); err != nil {
		bad("health-probe-bind-address", "%v", err)
	}
	return errors.Join(errs...)
}

// ValidatePrefix checks a key prefix of the issuer's path in a bucket.
func ValidatePrefix(prefix string) error {
	if strings.Contains(prefix, "//") || strings.ContainsAny(prefix, " \t\n?#\\") {
		return fmt.Errorf("%q must be a plain key prefix (no white space, //, ?, # or \\)", prefix)
	}
	return nil
}

// ValidateEndpointURL checks an S3 endpoint URL: empty (the SDK's) or https.
func ValidateEndpointURL(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	if u, err := url.Parse(endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an https URL", endpoint)
	}
	return nil
}

// ValidateBucketName checks the S3 general purpose bucket naming rules that
// matter here: 3 to 63 characters of lower case letters, digits, '.' and
// '-', starting and ending with a letter or digit. A bucket whose name has
// dots cannot serve virtual-hosted https without a certificate mismatch,
// but path-style URLs still work, so dots are allowed.
func ValidateBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("%q must be 3 to 63 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '.' || r == '-') && i > 0 && i < len(name)-1
		if !ok {
			return fmt.Errorf("%q may hold only lower case letters, digits, '.' and '-', and must start and end with a letter or digit", name)
		}
	}
	return nil
}
