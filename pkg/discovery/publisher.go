package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"
)

// Publisher holds the documents being served. Sources hand it key sets;
// it renders them once per change and swaps them in atomically, so a reader
// sees either the old documents or the new ones, never a mix and never an
// empty key set.
type Publisher struct {
	issuer  string
	jwksURI string
	// maxStaleness is how long the documents may go without a successful
	// refresh before the freshness check fails.
	maxStaleness time.Duration
	metrics      *Metrics
	now          func() time.Time

	docs atomic.Pointer[Documents]

	mu          sync.Mutex // serialises Publish and Fail
	lastSuccess time.Time
}

// PublisherOptions tune a Publisher.
type PublisherOptions struct {
	// MaxStaleness bounds the time since the last successful refresh before
	// FreshCheck fails; 0 means never stale.
	MaxStaleness time.Duration
	Metrics      *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewPublisher serves documents for issuer whose jwks_uri is jwksURI.
func NewPublisher(issuer, jwksURI string, opts PublisherOptions) *Publisher {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Publisher{issuer: issuer, jwksURI: jwksURI, maxStaleness: opts.MaxStaleness, metrics: opts.Metrics, now: now}
}

// Issuer is the issuer URL the documents name.
func (p *Publisher) Issuer() string { return p.issuer }

// Documents returns the documents being served, or nil before the first
// successful Publish.
func (p *Publisher) Documents() *Documents { return p.docs.Load() }

// Publish renders keys and serves them. It reports whether the served
// documents changed. On error the documents being served stay as they were.
func (p *Publisher) Publish(keys []jose.JSONWebKey) (changed bool, err error) {
	docs, err := Render(p.issuer, p.jwksURI, keys)
	if err != nil {
		p.Fail()
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.lastSuccess = now
	if !docs.equal(p.docs.Load()) {
		p.docs.Store(docs)
		changed = true
	}
	p.metrics.refreshed(len(docs.KeyIDs), float64(now.UnixNano())/1e9)
	return changed, nil
}

// Refresh is one refresh by a source: the keys it loaded are published, and
// their key IDs logged when the served documents change; an error from
// loading them (returned as it is) or from publishing them is a failed
// refresh, and the documents being served stay. source names the source in
// logs ("key-file"), from in errors ("files").
func (p *Publisher) Refresh(ctx context.Context, source, from string, keys []jose.JSONWebKey, loadErr error) error {
	if loadErr != nil {
		p.Fail()
		return loadErr
	}
	changed, err := p.Publish(keys)
	if err != nil {
		return fmt.Errorf("publish keys from %s: %w", from, err)
	}
	if changed {
		docs := p.Documents()
		logr.FromContextOrDiscard(ctx).Info("serving keys", "source", source, "keyIDs", docs.KeyIDs, "algorithms", docs.Algorithms)
	}
	return nil
}

// Fail records a failed refresh: the documents being served stay.
func (p *Publisher) Fail() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.metrics.failed(p.staleLocked() != nil)
}

// ReadyCheck fails until there are documents to serve. It has the shape of
// controller-runtime's healthz.Checker.
func (p *Publisher) ReadyCheck(*http.Request) error {
	if p.docs.Load() == nil {
		return errors.New("no key set loaded yet")
	}
	return nil
}

// FreshCheck fails when the last successful refresh is older than the
// staleness bound. The last good documents are still served meanwhile.
func (p *Publisher) FreshCheck(*http.Request) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.staleLocked()
}

func (p *Publisher) staleLocked() error {
	if p.lastSuccess.IsZero() {
		return errors.New("no key set loaded yet")
	}
	if p.maxStaleness <= 0 {
		return nil
	}
	if age := p.now().Sub(p.lastSuccess); age > p.maxStaleness {
		return fmt.Errorf("keys last refreshed %s ago, more than the %s allowed", age.Round(time.Second), p.maxStaleness)
	}
	return nil
}
