package discovery

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestConfigValidate(t *testing.T) {
	base := []string{"--issuer=https://oidc.example.com/c1", "--key-file=sa.pub", "--insecure-http"}
	tests := map[string]struct {
		args []string
		want []string // one line per bad flag
	}{
		"key files":           {args: base},
		"from the API server": {args: []string{"--issuer=https://oidc.example.com", "--from-apiserver", "--cert-dir=certs"}},
		"no issuer, no source": {args: []string{"--insecure-http"}, want: []string{
			"--issuer: required (e.g. https://oidc.example.com/cluster-1)",
			"--key-file, --from-apiserver, --from-spiffe: give exactly one key source (--key-file FILE, repeatable, --from-apiserver or --from-spiffe)",
		}},
		"both sources": {args: append(base, "--from-apiserver"), want: []string{
			"--key-file, --from-apiserver, --from-spiffe: give exactly one key source, not several",
		}},
		"from spiffe": {args: []string{"--issuer=https://oidc.example.com", "--from-spiffe", "--cert-dir=certs",
			"--spiffe-trust-domain=example.org", "--workload-api-addr=unix:///run/spire/agent.sock"}},
		"from spiffe, bad flags": {args: []string{"--issuer=https://oidc.example.com", "--from-spiffe", "--cert-dir=certs",
			"--spiffe-trust-domain=Example Org", "--workload-api-addr=/run/spire/agent.sock"}, want: []string{
			`--spiffe-trust-domain: "Example Org": trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores`,
			`--workload-api-addr: "/run/spire/agent.sock": workload endpoint socket URI must have a "tcp" or "unix" scheme (want unix:///path/to/socket)`,
		}},
		"spiffe flags without --from-spiffe": {args: append(base, "--spiffe-trust-domain=example.org"), want: []string{
			"--spiffe-trust-domain, --workload-api-addr: only used with --from-spiffe",
		}},
		"http issuer": {args: append(base, "--issuer=http://127.0.0.1:8443"), want: []string{
			`--issuer: "http://127.0.0.1:8443" is not an https URL; AWS only fetches https`,
		}},
		"issuer with query, fragment, slash, user": {args: []string{"--issuer=https://a.example.com?x=1", "--jwks-uri=https://a.example.com/k#f", "--key-file=k", "--insecure-http"}, want: []string{
			`--issuer: "https://a.example.com?x=1" must not contain a query`,
			`--jwks-uri: "https://a.example.com/k#f" must not contain a fragment`,
		}},
		"trailing slash": {args: append(base, "--issuer=https://a.example.com/"), want: []string{
			`--issuer: "https://a.example.com/" must not end with /`,
		}},
		"user info": {args: append(base, "--issuer=https://u:p@a.example.com"), want: []string{
			`--issuer: "https://u:p@a.example.com" must not contain user information`,
		}},
		"no host": {args: append(base, "--issuer=https:///path"), want: []string{
			`--issuer: "https:///path" has no host`,
		}},
		"server flags": {args: append(base, "--port=0", "--bind-address=localhost", "--refresh-interval=10ms", "--metrics-bind-address=8080", "--health-probe-bind-address=x", "--key-file= "), want: []string{
			"--key-file: must not be empty",
			"--refresh-interval: 10ms is outside [1s, 24h]",
			`--bind-address: "localhost" is not an IP address`,
			"--port: 0 is not a port number (1-65535)",
			`--metrics-bind-address: "8080" is not host:port or "0": address 8080: missing port in address`,
			`--health-probe-bind-address: "x" is not host:port or "0": address x: missing port in address`,
		}},
		"TLS needs a cert dir": {args: []string{"--issuer=https://oidc.example.com", "--key-file=k", "--cert-dir="}, want: []string{
			"--cert-dir: must not be empty unless --insecure-http is set",
		}},
		"metrics and health off": {args: append(base, "--metrics-bind-address=0", "--health-probe-bind-address=0")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := NewConfig()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			cfg.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := cfg.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := NewConfig()
	cfg.Issuer = "https://oidc.example.com/c1"
	if got, want := cfg.EffectiveJWKSURI(), "https://oidc.example.com/c1/openid/v1/jwks"; got != want {
		t.Errorf("jwks_uri = %q, want %q", got, want)
	}
	cfg.JWKSURI = "https://cdn.example.com/jwks"
	if got := cfg.EffectiveJWKSURI(); got != cfg.JWKSURI {
		t.Errorf("jwks_uri = %q, want --jwks-uri", got)
	}
	if cfg.Port != 8443 || cfg.MaxStaleness() != 3*cfg.RefreshInterval {
		t.Errorf("port %d, staleness %s", cfg.Port, cfg.MaxStaleness())
	}
}

func TestExportConfigValidate(t *testing.T) {
	cfg := NewExportConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	if err := fs.Parse([]string{"--key-file=k", "-o", "yaml"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--issuer: required (e.g. https://oidc.example.com/cluster-1)",
		"--out: required: the directory to write the documents into",
		`--output: "yaml" is not text or json`,
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate passed")
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("Validate (-want +got):\n%s", diff)
	}
}
