package doctor

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/issuer"
)

// Output formats.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// Config is everything `irsa-webhook doctor` is told by flags.
type Config struct {
	Namespace      string
	ServiceAccount string
	// Issuer is the public issuer AWS trusts. Empty: the API server's own
	// (its /.well-known/openid-configuration).
	Issuer     string
	Kubeconfig string
	// AnnotationPrefix, TokenAudience and TokenExpiration mirror the
	// webhook's flags of the same names, so that doctor requests the token
	// the webhook would have projected.
	AnnotationPrefix string
	TokenAudience    string
	TokenExpiration  int64
	// RoleSessionName and RolePolicyAction mirror the webhook's flags of
	// the same names, so that doctor decides as the webhook does.
	RoleSessionName  string
	RolePolicyAction string
	// WebhookConfiguration names the MutatingWebhookConfiguration to check.
	// Empty: found by name (see findWebhooks).
	WebhookConfiguration string
	// CAFile holds extra CA certificates trusted for the discovery URLs, for
	// a private CA (AWS itself needs a publicly trusted chain, or the
	// provider's thumbprint).
	CAFile  string
	Timeout time.Duration
	Output  string
	// WorkloadAPIAddr is the SPIRE agent's Workload API doctor fetches a
	// JWT-SVID from, for ServiceAccounts with token-source spiffe; empty
	// means $SPIFFE_ENDPOINT_SOCKET.
	WorkloadAPIAddr string
	// SVIDs, when set, replaces the Workload API client (tests).
	SVIDs SVIDFetcher
	// Bucket, when set, is the S3 bucket `discovery publish` writes the
	// issuer's documents to, below BucketPrefix (publish's --prefix):
	// doctor reads them back (s3:GetObject, with the AWS SDK's default
	// credentials) and checks them against the issuer and its keys.
	Bucket       string
	BucketPrefix string
	// S3 says how to reach Bucket, as publish's flags of the same names.
	S3 discovery.S3Options
}

// NewConfig returns the defaults, which AddFlags shows in --help.
func NewConfig() *Config {
	return &Config{
		AnnotationPrefix: identity.DefaultPrefix,
		TokenAudience:    identity.DefaultAudience,
		TokenExpiration:  identity.DefaultTokenExpiration,
		RolePolicyAction: identity.RolePolicyDeny,
		Timeout:          10 * time.Second,
		Output:           OutputText,
	}
}

// AddFlags binds each flag to its field, with the field's value as default.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&c.Namespace, "namespace", "n", c.Namespace, "Namespace of the ServiceAccount to check.")
	fs.StringVar(&c.ServiceAccount, "service-account", c.ServiceAccount, "Name of the ServiceAccount to check.")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "Public issuer URL AWS trusts (the IAM OIDC provider's URL). Default: the API server's own issuer.")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "Path to a kubeconfig. Default: in-cluster credentials, then $KUBECONFIG.")
	fs.StringVar(&c.AnnotationPrefix, "annotation-prefix", c.AnnotationPrefix, "Annotation prefix the webhook runs with (its --annotation-prefix).")
	fs.StringVar(&c.TokenAudience, "token-audience", c.TokenAudience, "Token audience the webhook runs with (its --token-audience), unless the ServiceAccount's <prefix>/audience says otherwise.")
	fs.Int64Var(&c.TokenExpiration, "token-expiration", c.TokenExpiration, "Token lifetime in seconds the webhook runs with (its --token-expiration), unless the ServiceAccount's annotation says otherwise.")
	fs.StringVar(&c.RoleSessionName, "role-session-name", c.RoleSessionName, "Session-name setting the webhook runs with (its --role-session-name: pod or empty), unless the ServiceAccount's "+identity.RoleSessionName+" says otherwise.")
	fs.StringVar(&c.RolePolicyAction, "role-policy-action", c.RolePolicyAction, "What the webhook does with a role its namespace's "+identity.AllowedRoleARNs+" does not allow (its --role-policy-action: deny or warn).")
	fs.StringVar(&c.WebhookConfiguration, "webhook-configuration", c.WebhookConfiguration, "Name of the MutatingWebhookConfiguration to check. Default: those whose name, or a webhook's name, contains irsa-webhook.")
	fs.StringVar(&c.CAFile, "ca-file", c.CAFile, "PEM file of extra CA certificates to trust for the discovery URLs (a private CA).")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "Bound on each request doctor makes.")
	fs.StringVarP(&c.Output, "output", "o", c.Output, "Output format: text (a checklist) or json.")
	fs.StringVar(&c.Bucket, "bucket", c.Bucket, "S3 bucket discovery publish writes the issuer's documents to: doctor also reads them back (s3:GetObject, with the AWS SDK's default credentials) and checks them against the issuer and the API server's keys. Nothing is written. Default: no bucket checks.")
	fs.StringVar(&c.BucketPrefix, "bucket-prefix", c.BucketPrefix, "With --bucket: key prefix of the issuer's path in the bucket (discovery publish's --prefix). Empty: the bucket's root.")
	fs.StringVar(&c.S3.Region, "region", c.S3.Region, "With --bucket: region of the bucket (as discovery publish --region). Default: the SDK's (AWS_REGION, the shared config).")
	fs.StringVar(&c.S3.EndpointURL, "endpoint-url", c.S3.EndpointURL, "With --bucket: S3 endpoint URL (https), as discovery publish --endpoint-url. Default: the SDK's (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL).")
	fs.BoolVar(&c.S3.PathStyle, "path-style", c.S3.PathStyle, "With --bucket: address the bucket in the URL path (as discovery publish --path-style).")
	fs.StringVar(&c.WorkloadAPIAddr, "workload-api-addr", c.WorkloadAPIAddr, "For a ServiceAccount with token-source spiffe: the SPIRE agent's Workload API (unix:///path) doctor fetches a JWT-SVID from, as a workload with a registration entry. Default: $SPIFFE_ENDPOINT_SOCKET.")
}

// Validate reports every bad flag at once, each by its name.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.Namespace == "" {
		bad("namespace", "is required: the namespace of the ServiceAccount to check")
	} else if err := identity.ValidateNamespaceName(c.Namespace); err != nil {
		bad("namespace", "%v", err)
	}
	if c.ServiceAccount == "" {
		bad("service-account", "is required: the name of the ServiceAccount to check")
	} else if err := identity.ValidateServiceAccountName(c.ServiceAccount); err != nil {
		bad("service-account", "%v", err)
	}
	if c.Issuer != "" {
		if err := issuer.Validate(c.Issuer); err != nil {
			bad("issuer", "%v", err)
		}
	}
	if msgs := validation.IsDNS1123Subdomain(c.AnnotationPrefix); len(msgs) > 0 {
		bad("annotation-prefix", "%q is not a DNS subdomain: %s", c.AnnotationPrefix, msgs[0])
	}
	if err := identity.ValidateAudience(c.TokenAudience); err != nil {
		bad("token-audience", "%v", err)
	}
	if c.TokenExpiration < identity.MinTokenExpiration || c.TokenExpiration > identity.MaxTokenExpiration {
		bad("token-expiration", "%d is outside [%d, %d] seconds", c.TokenExpiration, identity.MinTokenExpiration, identity.MaxTokenExpiration)
	}
	if c.RoleSessionName != "" && c.RoleSessionName != identity.SessionNamePod {
		bad("role-session-name", "%q is not %q or empty", c.RoleSessionName, identity.SessionNamePod)
	}
	if c.RolePolicyAction != identity.RolePolicyDeny && c.RolePolicyAction != identity.RolePolicyWarn {
		bad("role-policy-action", "%q is not %q or %q", c.RolePolicyAction, identity.RolePolicyDeny, identity.RolePolicyWarn)
	}
	if c.Timeout <= 0 {
		bad("timeout", "%s must be positive", c.Timeout)
	}
	if c.WorkloadAPIAddr != "" {
		if err := workloadapi.ValidateAddress(c.WorkloadAPIAddr); err != nil {
			bad("workload-api-addr", "%q: %v (want unix:///path/to/socket)", c.WorkloadAPIAddr, err)
		}
	}
	if c.Bucket != "" {
		if err := discovery.ValidateBucketName(c.Bucket); err != nil {
			bad("bucket", "%v", err)
		}
		if err := discovery.ValidatePrefix(c.BucketPrefix); err != nil {
			bad("bucket-prefix", "%v", err)
		}
		if err := discovery.ValidateEndpointURL(c.S3.EndpointURL); err != nil {
			bad("endpoint-url", "%v", err)
		}
	} else {
		for flag, set := range map[string]bool{"bucket-prefix": c.BucketPrefix != "", "region": c.S3.Region != "", "endpoint-url": c.S3.EndpointURL != "", "path-style": c.S3.PathStyle} {
			if set {
				bad(flag, "needs --bucket")
			}
		}
	}
	if c.Output != OutputText && c.Output != OutputJSON {
		bad("output", "%q is not text or json", c.Output)
	}
	return errors.Join(errs...)
}
