package webhook

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
)

// Config is everything `irsa-webhook serve` is told by flags.
type Config struct {
	Kubeconfig             string
	BindAddress            string
	Port                   int
	CertDir                string
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// PprofBindAddress serves net/http/pprof (plain HTTP) when not "0".
	PprofBindAddress string
	TLSMinVersion    string
	TLSCipherSuites  []string
	// RequestBodyBudgetFraction is the share of GOMEMLIMIT that the
	// AdmissionReview bodies in flight may hold together.
	RequestBodyBudgetFraction float64
	// DiscoveryPort, when not 0, also serves the OIDC discovery documents
	// on this port (HTTPS, same certificate); see package discovery.
	DiscoveryPort int

	AnnotationPrefix     string
	TokenAudience        string
	TokenMountPath       string
	TokenExpiration      int64
	AWSDefaultRegion     string
	STSRegionalEndpoints bool
	// RoleSessionName is identity.SessionNamePod or empty (no session name).
	RoleSessionName string

	// SPIFFE token source (<prefix>/token-source: spiffe).
	SPIFFEHelperImage    string
	SPIFFESocketHostPath string
	SPIFFESocketName     string

	// ServiceAccountLookupTimeout bounds the lookups of one admission
	// together: the ServiceAccount and the namespace policy.
	ServiceAccountLookupTimeout time.Duration
	// LiveLookupRate and LiveLookupBurst bound the live GETs of each cache
	// (see metacache.Options.LookupRate).
	LiveLookupRate  float64
	LiveLookupBurst int

	// RolePolicyAction is what happens to a Pod whose ServiceAccount asks
	// for a role its namespace's identity.AllowedRoleARNs annotation does
	// not allow: identity.RolePolicyDeny or identity.RolePolicyWarn. Either way the role is
	// not injected.
	RolePolicyAction string
}

// NewConfig returns the defaults, which AddFlags shows in --help.
func NewConfig() *Config {
	return &Config{
		Port:                        9443,
		CertDir:                     "/etc/irsa-webhook/tls",
		MetricsBindAddress:          ":8080",
		HealthProbeBindAddress:      ":8081",
		PprofBindAddress:            "0",
		TLSMinVersion:               "1.2",
		TLSCipherSuites:             serving.DefaultCipherSuites,
		RequestBodyBudgetFraction:   serving.DefaultBudgetFraction,
		AnnotationPrefix:            identity.DefaultPrefix,
		TokenAudience:               identity.DefaultAudience,
		TokenMountPath:              "/var/run/secrets/eks.amazonaws.com/serviceaccount",
		TokenExpiration:             identity.DefaultTokenExpiration,
		SPIFFESocketName:            "spire-agent.sock",
		ServiceAccountLookupTimeout: 2 * time.Second,
		LiveLookupRate:              50,
		LiveLookupBurst:             100,
		RolePolicyAction:            identity.RolePolicyDeny,
	}
}

// AddFlags binds each flag to its field, with the field's value as default.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "Path to a kubeconfig. Default: in-cluster credentials, then $KUBECONFIG.")
	fs.StringVar(&c.BindAddress, "bind-address", c.BindAddress, "Address the webhook listens on. Empty means all interfaces.")
	fs.IntVar(&c.Port, "port", c.Port, "Port the webhook serves HTTPS on.")
	fs.StringVar(&c.CertDir, "cert-dir", c.CertDir, "Directory holding the serving certificate and key as tls.crt and tls.key (RSA or ECDSA); reloaded when they change.")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "Address of the Prometheus metrics endpoint (plain HTTP). \"0\" disables it.")
	fs.StringVar(&c.HealthProbeBindAddress, "health-probe-bind-address", c.HealthProbeBindAddress, "Address of /healthz and /readyz (plain HTTP).")
	fs.StringVar(&c.PprofBindAddress, "pprof-bind-address", c.PprofBindAddress, "Address of the Go profiler's /debug/pprof endpoints (plain HTTP), for diagnosing CPU and memory use. \"0\" disables them; bind to localhost when enabled.")
	fs.IntVar(&c.DiscoveryPort, "discovery-port", c.DiscoveryPort, "When not 0, also serve the OIDC discovery documents on this port over HTTPS with the same certificate (needs --issuer and a key source). The recommended install runs 'discovery serve' separately instead.")
	fs.StringVar(&c.TLSMinVersion, "tls-min-version", c.TLSMinVersion, "Lowest TLS version accepted: 1.2 or 1.3.")
	fs.StringSliceVar(&c.TLSCipherSuites, "tls-cipher-suites", c.TLSCipherSuites, "TLS 1.2 cipher suites offered, by IANA name (TLS 1.3 suites are fixed); CBC and SHA-1 suites are refused. Also applies to --discovery-port.")
	fs.Float64Var(&c.RequestBodyBudgetFraction, "request-body-budget", c.RequestBodyBudgetFraction, "Share of the memory limit (GOMEMLIMIT; 64 MiB without one) that the requests in flight may take for their bodies together, in (0, 1]: each body byte counts 4 (what reading and decoding it costs) from its arrival until its request is answered, and a quarter is kept for bodies up to 256 KiB. A request that finds no room within a second is answered 503 with Retry-After, its body unread.")
	fs.StringVar(&c.AnnotationPrefix, "annotation-prefix", c.AnnotationPrefix, "Prefix of the ServiceAccount and Pod annotations read.")
	fs.StringVar(&c.TokenAudience, "token-audience", c.TokenAudience, "Audience of the projected token, unless the ServiceAccount's <prefix>/audience says otherwise.")
	fs.StringVar(&c.TokenMountPath, "token-mount-path", c.TokenMountPath, "Where the token volume is mounted in each container.")
	fs.Int64Var(&c.TokenExpiration, "token-expiration", c.TokenExpiration, fmt.Sprintf("Token lifetime in seconds, [%d, %d], unless an annotation says otherwise.", identity.MinTokenExpiration, identity.MaxTokenExpiration))
	fs.StringVar(&c.AWSDefaultRegion, "aws-default-region", c.AWSDefaultRegion, "When set, containers that set neither get AWS_REGION and AWS_DEFAULT_REGION.")
	fs.StringVar(&c.RoleSessionName, "role-session-name", c.RoleSessionName, "pod: each container gets AWS_ROLE_SESSION_NAME = the Pod's name (downward API), so CloudTrail names the Pod; empty: the SDK's default. The ServiceAccount's "+identity.RoleSessionName+" (pod or none) overrides it.")
	fs.BoolVar(&c.STSRegionalEndpoints, "sts-regional-endpoints", c.STSRegionalEndpoints, "Set AWS_STS_REGIONAL_ENDPOINTS=regional, unless the ServiceAccount's <prefix>/sts-regional-endpoints says otherwise.")
	fs.StringVar(&c.RolePolicyAction, "role-policy-action", c.RolePolicyAction, "When a namespace's "+identity.AllowedRoleARNs+" annotation does not allow the role a ServiceAccount asks for: deny refuses the pod, warn admits it without AWS credentials and with a warning. The role is never injected.")
	fs.StringVar(&c.SPIFFEHelperImage, "spiffe-helper-image", c.SPIFFEHelperImage, "Image of the SVID helper sidecar for <prefix>/token-source: spiffe; set it to this webhook's own image. Empty: such pods get nothing and a warning.")
	fs.StringVar(&c.SPIFFESocketHostPath, "spiffe-socket-host-path", c.SPIFFESocketHostPath, "Node directory holding the SPIRE agent's Workload API socket, mounted into the SVID helper with hostPath. Empty: the SPIFFE CSI driver (csi.spiffe.io) provides it.")
	fs.StringVar(&c.SPIFFESocketName, "spiffe-socket-name", c.SPIFFESocketName, "File name of the Workload API socket inside that directory.")
	fs.DurationVar(&c.ServiceAccountLookupTimeout, "service-account-lookup-timeout", c.ServiceAccountLookupTimeout, "Bound on the lookups of one admission together (its ServiceAccount, then its namespace's role policy) when the caches cannot answer; the pod is denied when it runs out. Keep it below the webhook configuration's timeoutSeconds.")
	fs.Float64Var(&c.LiveLookupRate, "live-lookup-rate", c.LiveLookupRate, "Live GETs per second each cache (ServiceAccounts, Namespaces) may send to the API server when the watch cannot answer; lookups beyond it wait, and are answered by the watch if it shows the object meanwhile.")
	fs.IntVar(&c.LiveLookupBurst, "live-lookup-burst", c.LiveLookupBurst, "Live GETs each cache may send at once after a quiet spell, above --live-lookup-rate.")
}

// maxLookupTimeout is the longest --service-account-lookup-timeout: a
// second below the 10s timeoutSeconds of the install, for the answer.
const maxLookupTimeout = 9 * time.Second

// Validate reports every bad flag at once, each by its name.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.BindAddress != "" && net.ParseIP(c.BindAddress) == nil {
		bad("bind-address", "%q is not an IP address", c.BindAddress)
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("port", "%d is not a port number (1-65535)", c.Port)
	}
	if c.DiscoveryPort < 0 || c.DiscoveryPort > 65535 || (c.DiscoveryPort != 0 && c.DiscoveryPort == c.Port) {
		bad("discovery-port", "%d is not 0 (off) or a port number (1-65535) other than --port", c.DiscoveryPort)
	}
	if c.CertDir == "" {
		bad("cert-dir", "must not be empty")
	}
	if c.RequestBodyBudgetFraction <= 0 || c.RequestBodyBudgetFraction > 1 {
		bad("request-body-budget", "%g is not in (0, 1]", c.RequestBodyBudgetFraction)
	}
	if _, err := serving.TLSVersion(c.TLSMinVersion); err != nil {
		bad("tls-min-version", "%v", err)
	}
	if _, err := serving.CipherSuites(c.TLSCipherSuites); err != nil {
		bad("tls-cipher-suites", "%v", err)
	}
	if msgs := validation.IsDNS1123Subdomain(c.AnnotationPrefix); len(msgs) > 0 {
		bad("annotation-prefix", "%q is not a DNS subdomain: %s", c.AnnotationPrefix, msgs[0])
	}
	if err := identity.ValidateAudience(c.TokenAudience); err != nil {
		bad("token-audience", "%v", err)
	}
	if !path.IsAbs(c.TokenMountPath) || path.Clean(c.TokenMountPath) == "/" {
		bad("token-mount-path", "%q must be an absolute path below /", c.TokenMountPath)
	}
	if c.TokenExpiration < identity.MinTokenExpiration || c.TokenExpiration > identity.MaxTokenExpiration {
		bad("token-expiration", "%d is outside [%d, %d] seconds", c.TokenExpiration, identity.MinTokenExpiration, identity.MaxTokenExpiration)
	}
	if c.AWSDefaultRegion != "" {
		if err := identity.ValidateRegion(c.AWSDefaultRegion); err != nil {
			bad("aws-default-region", "%v", err)
		}
	}
	if c.RoleSessionName != "" && c.RoleSessionName != identity.SessionNamePod {
		bad("role-session-name", "%q is not %q or empty", c.RoleSessionName, identity.SessionNamePod)
	}
	if c.SPIFFEHelperImage != "" && strings.ContainsAny(c.SPIFFEHelperImage, " \t\n") {
		bad("spiffe-helper-image", "%q contains white space", c.SPIFFEHelperImage)
	}
	if c.SPIFFESocketHostPath != "" && (!path.IsAbs(c.SPIFFESocketHostPath) || path.Clean(c.SPIFFESocketHostPath) == "/") {
		bad("spiffe-socket-host-path", "%q must be an absolute path below /", c.SPIFFESocketHostPath)
	}
	if c.SPIFFESocketName == "" || strings.Contains(c.SPIFFESocketName, "/") || c.SPIFFESocketName == "." || c.SPIFFESocketName == ".." {
		bad("spiffe-socket-name", "%q must be a file name without /", c.SPIFFESocketName)
	}
	// The lookups must leave time to answer within the webhook
	// configuration's timeoutSeconds (10s in deploy/).
	if c.ServiceAccountLookupTimeout <= 0 || c.ServiceAccountLookupTimeout > maxLookupTimeout {
		bad("service-account-lookup-timeout", "%s is outside (0, %s]", c.ServiceAccountLookupTimeout, maxLookupTimeout)
	}
	if !(c.LiveLookupRate > 0 && c.LiveLookupRate <= 10000) {
		bad("live-lookup-rate", "%v is outside (0, 10000] per second", c.LiveLookupRate)
	}
	if c.LiveLookupBurst < 1 || c.LiveLookupBurst > 10000 {
		bad("live-lookup-burst", "%d is outside [1, 10000]", c.LiveLookupBurst)
	}
	if c.RolePolicyAction != identity.RolePolicyDeny && c.RolePolicyAction != identity.RolePolicyWarn {
		bad("role-policy-action", "%q is not deny or warn", c.RolePolicyAction)
	}
	return errors.Join(errs...)
}

// Defaults are the flag values the identity decision falls back to.
func (c *Config) Defaults() identity.Defaults {
	return identity.Defaults{
		Prefix:            c.AnnotationPrefix,
		Audience:          c.TokenAudience,
		MountPath:         path.Clean(c.TokenMountPath),
		ExpirationSeconds: c.TokenExpiration,
		Region:            c.AWSDefaultRegion,
		RegionalSTS:       c.STSRegionalEndpoints,
		SessionName:       c.RoleSessionName,
		SPIFFE: identity.SPIFFE{
			HelperImage:    c.SPIFFEHelperImage,
			SocketHostPath: cleanPath(c.SPIFFESocketHostPath),
			SocketName:     c.SPIFFESocketName,
		},
	}
}

// cleanPath is path.Clean that keeps "" empty.
func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	return path.Clean(p)
}
