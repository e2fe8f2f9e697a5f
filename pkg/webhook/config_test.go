package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

func parse(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	cfg := NewConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func TestConfigParsesFlags(t *testing.T) {
	cases := map[string]struct {
		args []string
		want func(*Config)
	}{
		"defaults": {nil, func(*Config) {}},
		"every flag": {[]string{
			"--kubeconfig=/k", "--bind-address=127.0.0.1", "--port=10250", "--cert-dir=/certs",
			"--metrics-bind-address=:9090", "--health-probe-bind-address=:9091", "--tls-min-version=1.3",
			"--annotation-prefix=irsa.example.com", "--token-audience=minio", "--token-mount-path=/var/run/aws",
			"--token-expiration=3600", "--aws-default-region=eu-central-1", "--sts-regional-endpoints=true",
			"--service-account-lookup-timeout=500ms", "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
			"--role-policy-action=warn", "--live-lookup-rate=2.5", "--live-lookup-burst=7",
		}, func(c *Config) {
			c.Kubeconfig, c.BindAddress, c.Port, c.CertDir = "/k", "127.0.0.1", 10250, "/certs"
			c.MetricsBindAddress, c.HealthProbeBindAddress, c.TLSMinVersion = ":9090", ":9091", "1.3"
			c.AnnotationPrefix, c.TokenAudience, c.TokenMountPath = "irsa.example.com", "minio", "/var/run/aws"
			c.TokenExpiration, c.AWSDefaultRegion, c.STSRegionalEndpoints = 3600, "eu-central-1", true
			c.ServiceAccountLookupTimeout = 500 * time.Millisecond
			c.TLSCipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
			c.RolePolicyAction = identity.RolePolicyWarn
			c.LiveLookupRate, c.LiveLookupBurst = 2.5, 7
		}},
		"boolean false form": {[]string{"--sts-regional-endpoints=false"}, func(*Config) {}},
		"bare boolean":       {[]string{"--sts-regional-endpoints"}, func(c *Config) { c.STSRegionalEndpoints = true }},
		"ipv6 bind address":  {[]string{"--bind-address=::1"}, func(c *Config) { c.BindAddress = "::1" }},
		"spiffe flags": {[]string{
			"--spiffe-helper-image=registry.example/irsa-webhook:1.0", "--spiffe-socket-host-path=/run/spire/agent-sockets",
			"--spiffe-socket-name=api.sock",
		}, func(c *Config) {
			c.SPIFFEHelperImage, c.SPIFFESocketHostPath, c.SPIFFESocketName = "registry.example/irsa-webhook:1.0", "/run/spire/agent-sockets", "api.sock"
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parse(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := NewConfig()
			tc.want(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Validate names every bad flag at once.
func TestConfigValidateNamesEveryBadFlag(t *testing.T) {
	_, err := parse(t,
		"--bind-address=not-an-ip", "--port=70000", "--cert-dir=", "--tls-min-version=1.1",
		"--annotation-prefix=Not_A_Domain", "--token-audience=", "--token-mount-path=relative",
		"--token-expiration=60", "--aws-default-region=Mars", "--service-account-lookup-timeout=0s",
		"--tls-cipher-suites=TLS_RSA_WITH_RC4_128_SHA", "--role-policy-action=allow", "--spiffe-helper-image=a b",
		"--spiffe-socket-host-path=relative", "--spiffe-socket-name=dir/api.sock",
		"--live-lookup-rate=0", "--live-lookup-burst=0", "--role-session-name=pod-name")
	if err == nil {
		t.Fatal("no error")
	}
	for _, flag := range []string{"--bind-address", "--port", "--cert-dir", "--tls-min-version", "--annotation-prefix",
		"--token-audience", "--token-mount-path", "--token-expiration", "--aws-default-region",
		"--service-account-lookup-timeout", "--tls-cipher-suites", "--role-policy-action", "--spiffe-helper-image",
		"--spiffe-socket-host-path", "--spiffe-socket-name", "--live-lookup-rate", "--live-lookup-burst", "--role-session-name"} {
		if !strings.Contains(err.Error(), flag+":") {
			t.Errorf("error does not name %s:\n%v", flag, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parse(t, "--token-mount-path=/var/run/aws/", "--aws-default-region=us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	want := identity.Defaults{
		Prefix: "eks.amazonaws.com", Audience: "sts.amazonaws.com", MountPath: "/var/run/aws",
		ExpirationSeconds: 86400, Region: "us-west-2",
		SPIFFE: identity.SPIFFE{SocketName: "spire-agent.sock"},
	}
	if diff := cmp.Diff(want, cfg.Defaults()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The lookups of one admission must end before the API server's 10s
// timeoutSeconds of the install; a NaN rate is refused too.
func TestConfigLookupBounds(t *testing.T) {
	for args, want := range map[string]string{
		"--service-account-lookup-timeout=9s":  "",
		"--service-account-lookup-timeout=10s": "--service-account-lookup-timeout: 10s is outside (0, 9s]",
		"--live-lookup-rate=NaN":               "--live-lookup-rate: NaN is outside (0, 10000] per second",
		"--live-lookup-rate=10001":             "--live-lookup-rate: 10001 is outside (0, 10000] per second",
		"--live-lookup-burst=10001":            "--live-lookup-burst: 10001 is outside [1, 10000]",
	} {
		_, err := parse(t, args)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", args, got, want)
		}
	}
}
