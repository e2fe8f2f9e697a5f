package selfsigned

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestConfigFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		want    func(*Config)
		wantErr []string // every flag named in the error
	}{
		"defaults": {
			args: nil,
			want: func(*Config) {},
		},
		"all set": {
			args: []string{"--self-signed-ca", "--self-signed-secret-name=tls", "--self-signed-secret-namespace=hooks",
				"--self-signed-service-name=hook", "--self-signed-webhook-configuration-name=mine",
				"--self-signed-validity=24h", "--self-signed-resync-interval=30s",
				"--self-signed-extra-san=127.0.0.1", "--self-signed-extra-san=hook.example.com"},
			want: func(c *Config) {
				c.Enabled = true
				c.SecretName, c.SecretNamespace, c.ServiceName, c.WebhookConfigurationName = "tls", "hooks", "hook", "mine"
				c.Validity, c.ResyncInterval = 24*time.Hour, 30*time.Second
				c.ExtraSANs = []string{"127.0.0.1", "hook.example.com"}
			},
		},
		"every bad flag named at once": {
			args: []string{"--self-signed-secret-name=Bad_Name", "--self-signed-secret-namespace=a.b",
				"--self-signed-service-name=1svc", "--self-signed-webhook-configuration-name=", "--self-signed-validity=1m",
				"--self-signed-resync-interval=0s", "--self-signed-extra-san=not a name"},
			wantErr: []string{"--self-signed-secret-name", "--self-signed-secret-namespace", "--self-signed-service-name",
				"--self-signed-webhook-configuration-name", "--self-signed-validity", "--self-signed-resync-interval",
				"--self-signed-extra-san"},
		},
		"resync longer than a tenth of the validity": {
			args:    []string{"--self-signed-validity=1h", "--self-signed-resync-interval=7m"},
			wantErr: []string{"--self-signed-resync-interval"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := NewConfig()
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			cfg.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatalf("parse %v: %v", tc.args, err)
			}
			err := cfg.Validate()
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Validate() = nil, want an error naming %v", tc.wantErr)
				}
				for _, flag := range tc.wantErr {
					if !strings.Contains(err.Error(), flag+":") {
						t.Errorf("Validate() error does not name %s:\n%v", flag, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			want := NewConfig()
			tc.want(want)
			if diff := cmp.Diff(want, cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigNames(t *testing.T) {
	cfg := NewConfig()
	cfg.ExtraSANs = []string{"::1", "hook.example.com", "127.0.0.1"}
	if diff := cmp.Diff([]string{"irsa-webhook.irsa-system.svc", "irsa-webhook.irsa-system.svc.cluster.local", "hook.example.com"}, cfg.DNSNames()); diff != "" {
		t.Errorf("DNSNames() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]net.IP{net.ParseIP("::1"), net.ParseIP("127.0.0.1")}, cfg.IPAddresses()); diff != "" {
		t.Errorf("IPAddresses() (-want +got):\n%s", diff)
	}
}
