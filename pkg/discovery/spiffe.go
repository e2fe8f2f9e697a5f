package discovery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// JWTBundleClient is the part of *workloadapi.Client SPIFFESource uses.
type JWTBundleClient interface {
	FetchJWTBundles(ctx context.Context) (*jwtbundle.Set, error)
	WatchJWTBundles(ctx context.Context, watcher workloadapi.JWTBundleWatcher) error
}

// SPIFFESource serves a SPIFFE trust domain's JWT bundle, read from the
// Workload API of the SPIRE agent next to this server, so that AWS can
// verify JWT-SVIDs. The keys keep SPIRE's kid (the one in the JWT-SVIDs).
// The issuer is not in the bundle: the Publisher's must equal the SPIRE
// server's jwt_issuer.
type SPIFFESource struct {
	Client JWTBundleClient
	// TrustDomain picks the bundle; zero means the only one in the set.
	TrustDomain spiffeid.TrustDomain
	// Interval between refreshes; changes pushed by the agent are
	// published at once as well.
	Interval  time.Duration
	Publisher *Publisher
}

// Keys returns the trust domain's JWT signing keys from set.
func (s *SPIFFESource) Keys(set *jwtbundle.Set) ([]jose.JSONWebKey, error) {
	var bundle *jwtbundle.Bundle
	if s.TrustDomain.IsZero() {
		bundles := set.Bundles()
		if len(bundles) != 1 {
			var tds []string
			for _, b := range bundles {
				tds = append(tds, b.TrustDomain().String())
			}
			return nil, fmt.Errorf("the Workload API has JWT bundles for %d trust domains [%s]; pick one with --spiffe-trust-domain", len(bundles), strings.Join(tds, ", "))
		}
		bundle = bundles[0]
	} else {
		b, ok := set.Get(s.TrustDomain)
		if !ok {
			return nil, fmt.Errorf("the Workload API has no JWT bundle for trust domain %q", s.TrustDomain)
		}
		bundle = b
	}
	authorities := bundle.JWTAuthorities()
	kids := make([]string, 0, len(authorities))
	for kid := range authorities {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	keys := make([]jose.JSONWebKey, 0, len(kids))
	for _, kid := range kids {
		k, err := jwkWithID(authorities[kid], kid)
		if err != nil {
			return nil, fmt.Errorf("trust domain %q key %q: %w", bundle.TrustDomain(), kid, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the JWT bundle of trust domain %q has no keys", bundle.TrustDomain())
	}
	return keys, nil
}

// Refresh fetches the bundles once and publishes the trust domain's keys.
func (s *SPIFFESource) Refresh(ctx context.Context) error {
	set, err := s.Client.FetchJWTBundles(ctx)
	if err != nil {
		s.Publisher.Fail()
		return fmt.Errorf("fetch JWT bundles from the Workload API: %w", err)
	}
	return s.publish(ctx, set)
}

func (s *SPIFFESource) publish(ctx context.Context, set *jwtbundle.Set) error {
	keys, err := s.Keys(set)
	return s.Publisher.Refresh(ctx, "spiffe", "the Workload API", keys, err)
}

// Run publishes every bundle update the agent pushes, and refreshes every
// Interval (sooner, with backoff, until the first success) so that /readyz
// tells a live source from a dead one. Failures keep the last good keys
// served; Run returns only when ctx ends.
func (s *SPIFFESource) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	updates := make(chan *jwtbundle.Set, 1)
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = s.Client.WatchJWTBundles(watchCtx, bundleUpdates(updates)) }()

	next := newRefreshSchedule(s.Interval)
	for {
		if err := s.Refresh(ctx); err == nil {
			next.loaded = true
		} else if ctx.Err() == nil {
			log.Error(err, "refresh keys from the Workload API failed; serving the last good keys", "loaded", next.loaded)
		}
		t := time.NewTimer(next.wait())
	waiting:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case set := <-updates:
				if err := s.publish(ctx, set); err != nil {
					log.Error(err, "publish pushed JWT bundle failed; serving the last good keys")
				} else {
					next.loaded = true
				}
			case <-t.C:
				break waiting
			}
		}
	}
}

// bundleUpdates hands each pushed set to the Run loop, replacing one not yet
// taken: only the newest matters.
type bundleUpdates chan *jwtbundle.Set

func (u bundleUpdates) OnJWTBundlesUpdate(set *jwtbundle.Set) {
	for {
		select {
		case u <- set:
			return
		default:
		}
		select {
		case <-u:
		default:
		}
	}
}

func (u bundleUpdates) OnJWTBundlesWatchError(error) {}

var _ Source = (*SPIFFESource)(nil)
