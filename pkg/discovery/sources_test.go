package discovery

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// NewSource builds the source the flags name, asks only that source's
// client for a connection, and reports a bad trust domain by its flag.
func TestNewSource(t *testing.T) {
	errNoCluster := errors.New("no API server credentials")
	errNoSocket := errors.New("no Workload API socket")
	var asked []string
	clients := SourceClients{
		APIServer: func() (rest.Interface, error) {
			asked = append(asked, "apiserver")
			return nil, errNoCluster
		},
		WorkloadAPI: func(addr string) (JWTBundleClient, error) {
			asked = append(asked, "workload:"+addr)
			return nil, errNoSocket
		},
	}
	pub := NewPublisher("https://oidc.example.com", "", PublisherOptions{})
	tests := map[string]struct {
		src     SourceConfig
		asked   []string
		wantErr error
		errText string
	}{
		"key files ask for no client": {src: SourceConfig{KeyFiles: []string{"a.pub"}}},
		"the API server":              {src: SourceConfig{FromAPIServer: true}, asked: []string{"apiserver"}, wantErr: errNoCluster},
		"SPIFFE at the flag's address": {src: SourceConfig{FromSPIFFE: true, WorkloadAPIAddr: "unix:///agent.sock"},
			asked: []string{"workload:unix:///agent.sock"}, wantErr: errNoSocket},
		"a bad trust domain, before any connection": {src: SourceConfig{FromSPIFFE: true, SPIFFETrustDomain: "Not A Domain"},
			errText: "--spiffe-trust-domain: "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			asked = nil
			s, err := NewSource(tc.src, time.Minute, pub, clients)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
			case tc.errText != "":
				if err == nil || !strings.HasPrefix(err.Error(), tc.errText) {
					t.Fatalf("error = %v, want one starting %q", err, tc.errText)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				fs, ok := s.(*FileSource)
				if !ok || len(fs.Paths) != 1 || fs.Publisher != pub || fs.Interval != time.Minute {
					t.Fatalf("source = %#v, want a FileSource of a.pub into pub", s)
				}
			}
			if len(asked) != len(tc.asked) || (len(asked) > 0 && asked[0] != tc.asked[0]) {
				t.Errorf("clients asked %q, want %q", asked, tc.asked)
			}
		})
	}
}

// Until a key set is loaded the waits double from 1s, capped by the
// interval and by maxRetryDelay; once loaded, every wait is the interval.
func TestRefreshSchedule(t *testing.T) {
	for name, tc := range map[string]struct {
		interval time.Duration
		want     []time.Duration
	}{
		"short interval": {interval: 3 * time.Second, want: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}},
		"long interval": {interval: time.Hour, want: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
			16 * time.Second, maxRetryDelay, maxRetryDelay}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newRefreshSchedule(tc.interval)
			var got []time.Duration
			for range tc.want {
				got = append(got, s.wait())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("waits before a key set = %v, want %v", got, tc.want)
			}
			s.loaded = true
			if got := s.wait(); got != tc.interval {
				t.Errorf("wait once loaded = %s, want the interval %s", got, tc.interval)
			}
		})
	}
}
