package discovery

import (
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/client-go/rest"
)

// SourceClients make the clients a key source needs. Each is called only
// when SourceConfig names its source, so a command serving key files never
// looks for API server credentials or a Workload API socket.
type SourceClients struct {
	// APIServer returns a REST client for the API server's discovery
	// endpoints (--from-apiserver).
	APIServer func() (rest.Interface, error)
	// WorkloadAPI returns a client of the SPIFFE Workload API
	// (--from-spiffe) for src.WorkloadAPIAddr.
	WorkloadAPI func(addr string) (JWTBundleClient, error)
}

// NewSource returns the one key source src names, refreshing every
// interval and publishing into pub. src must have passed Validate.
func NewSource(src SourceConfig, interval time.Duration, pub *Publisher, clients SourceClients) (Source, error) {
	switch {
	case src.FromSPIFFE:
		s := &SPIFFESource{Interval: interval, Publisher: pub}
		if src.SPIFFETrustDomain != "" {
			td, err := spiffeid.TrustDomainFromString(src.SPIFFETrustDomain)
			if err != nil {
				return nil, fmt.Errorf("--spiffe-trust-domain: %w", err)
			}
			s.TrustDomain = td
		}
		client, err := clients.WorkloadAPI(src.WorkloadAPIAddr)
		if err != nil {
			return nil, err
		}
		s.Client = client
		return s, nil
	case src.FromAPIServer:
		client, err := clients.APIServer()
		if err != nil {
			return nil, err
		}
		return &APIServerSource{Client: client, Interval: interval, Publisher: pub}, nil
	default:
		return &FileSource{Paths: src.KeyFiles, Interval: interval, Publisher: pub}, nil
	}
}

// NewServedPublisher is the Publisher that `discovery serve`, `serve
// --discovery-port` and `discovery publish` serve: cfg's issuer, jwks_uri
// and staleness bound, reporting to metrics (may be nil), fed by the key
// source cfg names.
func NewServedPublisher(cfg *Config, metrics *Metrics, clients SourceClients) (*Publisher, Source, error) {
	pub := NewPublisher(cfg.Issuer, cfg.EffectiveJWKSURI(), PublisherOptions{
		MaxStaleness: cfg.MaxStaleness(),
		Metrics:      metrics,
	})
	source, err := NewSource(cfg.SourceConfig, cfg.RefreshInterval, pub, clients)
	return pub, source, err
}

// maxRetryDelay bounds the wait between attempts while no key set has been
// loaded yet.
const maxRetryDelay = 30 * time.Second

// refreshSchedule is when a polling source refreshes next: every interval
// once a key set is loaded; before that sooner, from 1s doubling, at most
// the interval or maxRetryDelay, so that a server started before its key
// source becomes ready soon after it.
type refreshSchedule struct {
	interval, delay time.Duration
	// loaded is set by the source once a key set is published.
	loaded bool
}

func newRefreshSchedule(interval time.Duration) *refreshSchedule {
	return &refreshSchedule{interval: interval, delay: time.Second}
}

// wait is how long to wait before the next refresh.
func (s *refreshSchedule) wait() time.Duration {
	if s.loaded {
		return s.interval
	}
	d := min(s.delay, s.interval, maxRetryDelay)
	s.delay *= 2
	return d
}
