package selfsigned

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// Validity bounds: renewal happens at 2/3 of the lifetime, and every replica
// re-reads the Secret each resync interval.
const (
	MinValidity = time.Hour
	MaxValidity = 10 * 365 * 24 * time.Hour
)

// Config is what the --self-signed-* flags of irsa-webhook serve set.
type Config struct {
	// Enabled turns the mode on; --cert-dir is then not read.
	Enabled bool
	// SecretName and SecretNamespace name the Secret holding ca.crt,
	// tls.crt and tls.key. The Service is in the same namespace.
	SecretName      string
	SecretNamespace string
	// ServiceName is the webhook's Service; the serving certificate names
	// <service>.<namespace>.svc and <service>.<namespace>.svc.cluster.local.
	ServiceName string
	// ExtraSANs are more DNS names or IP addresses for the certificate, for
	// a webhook registered by URL rather than by Service.
	ExtraSANs []string
	// WebhookConfigurationName is the MutatingWebhookConfiguration whose
	// caBundle is kept equal to the Secret's CAs (in every webhook of it).
	WebhookConfigurationName string
	// Validity is the lifetime of the CA and serving certificate.
	Validity time.Duration
	// ResyncInterval is how often each replica re-reads the Secret and the
	// webhook configuration.
	ResyncInterval time.Duration
}

// NewConfig returns the defaults, which match deploy/overlays/self-signed.
func NewConfig() *Config {
	return &Config{
		SecretName:               "irsa-webhook-self-signed-tls",
		SecretNamespace:          "irsa-system",
		ServiceName:              "irsa-webhook",
		WebhookConfigurationName: "irsa-webhook",
		Validity:                 365 * 24 * time.Hour,
		ResyncInterval:           time.Minute,
	}
}

// AddFlags binds each flag to its field, with the field's value as default.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.Enabled, "self-signed-ca", c.Enabled, "Make and renew our own CA and serving certificate (kept in a Secret) and keep the webhook configuration's caBundle in sync, instead of reading --cert-dir. For clusters without cert-manager.")
	fs.StringVar(&c.SecretName, "self-signed-secret-name", c.SecretName, "With --self-signed-ca: Secret that holds the CA and serving certificate.")
	fs.StringVar(&c.SecretNamespace, "self-signed-secret-namespace", c.SecretNamespace, "With --self-signed-ca: namespace of that Secret and of the webhook's Service.")
	fs.StringVar(&c.ServiceName, "self-signed-service-name", c.ServiceName, "With --self-signed-ca: the webhook's Service; the certificate names <service>.<namespace>.svc[.cluster.local].")
	fs.StringSliceVar(&c.ExtraSANs, "self-signed-extra-san", c.ExtraSANs, "With --self-signed-ca: more DNS names or IP addresses for the certificate (repeatable), for a webhook registered by URL.")
	fs.StringVar(&c.WebhookConfigurationName, "self-signed-webhook-configuration-name", c.WebhookConfigurationName, "With --self-signed-ca: MutatingWebhookConfiguration whose caBundle is kept in sync.")
	fs.DurationVar(&c.Validity, "self-signed-validity", c.Validity, fmt.Sprintf("With --self-signed-ca: lifetime of the CA and serving certificate, [%s, %s]; renewed at 2/3 of it.", MinValidity, MaxValidity))
	fs.DurationVar(&c.ResyncInterval, "self-signed-resync-interval", c.ResyncInterval, "With --self-signed-ca: how often each replica re-reads the Secret and the caBundle.")
}

// Validate reports every bad flag at once, each by its name. It checks the
// values even when the mode is off, so a typo is caught before it matters.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if msgs := validation.IsDNS1123Subdomain(c.SecretName); len(msgs) > 0 {
		bad("self-signed-secret-name", "%q is not a valid Secret name: %s", c.SecretName, msgs[0])
	}
	if err := identity.ValidateNamespaceName(c.SecretNamespace); err != nil {
		bad("self-signed-secret-namespace", "%v", err)
	}
	if msgs := validation.IsDNS1035Label(c.ServiceName); len(msgs) > 0 {
		bad("self-signed-service-name", "%q is not a valid Service name: %s", c.ServiceName, msgs[0])
	}
	for _, san := range c.ExtraSANs {
		if net.ParseIP(san) != nil {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(san); len(msgs) > 0 {
			bad("self-signed-extra-san", "%q is neither an IP address nor a DNS name: %s", san, msgs[0])
		}
	}
	if msgs := validation.IsDNS1123Subdomain(c.WebhookConfigurationName); len(msgs) > 0 {
		bad("self-signed-webhook-configuration-name", "%q is not a valid object name: %s", c.WebhookConfigurationName, msgs[0])
	}
	if c.Validity < MinValidity || c.Validity > MaxValidity {
		bad("self-signed-validity", "%s is outside [%s, %s]", c.Validity, MinValidity, MaxValidity)
	}
	if c.ResyncInterval < time.Second || c.ResyncInterval > c.Validity/10 {
		bad("self-signed-resync-interval", "%s is outside [1s, --self-signed-validity/10]", c.ResyncInterval)
	}
	return errors.Join(errs...)
}

// DNSNames are the names the serving certificate is for: the Service's,
// then ExtraSANs that are not IP addresses.
func (c *Config) DNSNames() []string {
	names := []string{
		c.ServiceName + "." + c.SecretNamespace + ".svc",
		c.ServiceName + "." + c.SecretNamespace + ".svc.cluster.local",
	}
	for _, san := range c.ExtraSANs {
		if net.ParseIP(san) == nil {
			names = append(names, san)
		}
	}
	return names
}

// IPAddresses are the ExtraSANs that are IP addresses.
func (c *Config) IPAddresses() []net.IP {
	var ips []net.IP
	for _, san := range c.ExtraSANs {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips
}
