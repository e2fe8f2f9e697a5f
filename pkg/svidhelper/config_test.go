package svidhelper

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func parse(args ...string) (*Config, error) {
	cfg := NewConfig()
	fs := pflag.NewFlagSet("svid-helper", pflag.ContinueOnError)
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
		"file only": {[]string{"--file=/var/run/aws/token"}, func(c *Config) { c.File = "/var/run/aws/token" }},
		"every flag": {[]string{
			"--file=/t/token", "--workload-api-addr=unix:///run/spire/api.sock", "--audience=minio",
			"--spiffe-id=spiffe://example.org/app", "--metrics-bind-address=127.0.0.1:9464",
			"--min-backoff=100ms", "--max-backoff=5s",
		}, func(c *Config) {
			c.File, c.WorkloadAPIAddr, c.Audience = "/t/token", "unix:///run/spire/api.sock", "minio"
			c.SPIFFEID, c.MetricsBindAddress = "spiffe://example.org/app", "127.0.0.1:9464"
			c.MinBackoff, c.MaxBackoff = 100*time.Millisecond, 5*time.Second
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parse(tc.args...)
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

func TestConfigValidateNamesEveryBadFlag(t *testing.T) {
	_, err := parse("--workload-api-addr=/no/scheme", "--audience=", "--spiffe-id=https://x", "--metrics-bind-address=nope",
		"--min-backoff=0s", "--max-backoff=-1s")
	if err == nil {
		t.Fatal("no error")
	}
	for _, flag := range []string{"--workload-api-addr", "--audience", "--spiffe-id", "--file", "--metrics-bind-address", "--min-backoff", "--max-backoff"} {
		if !strings.Contains(err.Error(), flag+":") {
			t.Errorf("error does not name %s:\n%v", flag, err)
		}
	}
}
