package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Bucket stores objects, as S3 does: the way a private cluster's issuer
// documents reach AWS, which fetches them over public HTTPS and cannot be
// handed them any other way.
type Bucket interface {
	// Put writes body at key with the given headers, replacing what was
	// there.
	Put(ctx context.Context, key string, body []byte, contentType, cacheControl string) error
}

// Mirror keeps a bucket's copy of a Publisher's documents current: each
// time the documents change (a key added or removed at the source) it
// writes them again, the same bytes, content types and cache header the
// Handler serves. The JWKS is written before the configuration document
// that names it, and only whole documents are written, so a reader of the
// bucket sees old or new keys, never none. The Source behind the Publisher
// refuses an issuer other than the API server's, so neither does a Mirror
// publish one.
type Mirror struct {
	Publisher *Publisher
	Bucket    Bucket
	// Prefix is the key prefix of the issuer's path in the bucket (for an
	// issuer https://<bucket host>/clusters/prod, "clusters/prod"); empty
	// is the bucket's root.
	Prefix string
	// Poll is how often the Publisher is checked for new documents.
	// Default 1s: the source's refresh interval bounds how current they
	// are, this only how soon they follow.
	Poll time.Duration
	// MaxStaleness bounds the time since the bucket last matched the
	// Publisher before Ready fails; 0 means never stale.
	MaxStaleness time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	written  *Documents // what the bucket holds, as far as we know
	lastSync time.Time
	lastErr  error
}

// MirroredPaths are the objects a Mirror writes, relative to its prefix.
var MirroredPaths = []string{JWKSPath, LegacyJWKSPath, ConfigPath}

// Key is the object key of the document at urlPath (one of the document
// paths) below prefix.
func Key(prefix, urlPath string) string {
	return strings.TrimPrefix(path.Join(strings.Trim(prefix, "/"), urlPath), "/")
}

// Sync writes the Publisher's documents to the bucket if they differ from
// what it last wrote there, and reports whether it wrote. Before the first
// documents it does nothing.
func (m *Mirror) Sync(ctx context.Context) (bool, error) {
	docs := m.Publisher.Documents()
	m.mu.Lock()
	defer m.mu.Unlock()
	if docs == nil {
		return false, errors.New("no documents to publish yet")
	}
	if m.written != nil && docs.equalBytes(m.written) {
		m.lastSync, m.lastErr = m.now(), nil
		return false, nil
	}
	for _, p := range MirroredPaths {
		body, ctype := docs.JWKS, contentTypeJWKS
		if p == ConfigPath {
			body, ctype = docs.Config, contentTypeConfig
		}
		if err := m.Bucket.Put(ctx, Key(m.Prefix, p), body, ctype, cacheControl); err != nil {
			// What was written may now be half old, half new; write all
			// again next time.
			m.written, m.lastErr = nil, err
			return false, fmt.Errorf("publish %s: %w", Key(m.Prefix, p), err)
		}
	}
	m.written, m.lastSync, m.lastErr = docs, m.now(), nil
	return true, nil
}

// Run syncs every Poll until ctx ends, logging each publication and each
// failure (retried at the next poll).
func (m *Mirror) Run(ctx context.Context) error {
	poll := m.Poll
	if poll <= 0 {
		poll = time.Second
	}
	log := logr.FromContextOrDiscard(ctx)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		switch wrote, err := m.Sync(ctx); {
		case err != nil && ctx.Err() == nil:
			log.Error(err, "publishing the discovery documents failed; retrying")
		case wrote:
			log.Info("published the discovery documents", "prefix", m.Prefix, "keys", m.Publisher.Documents().KeyIDs)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Ready fails until the bucket holds the Publisher's documents, when the
// last write failed, and when the bucket has not matched the Publisher for
// MaxStaleness.
func (m *Mirror) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.lastErr != nil:
		return fmt.Errorf("last publication failed: %w", m.lastErr)
	case m.written == nil:
		return errors.New("the discovery documents have not been published yet")
	case m.MaxStaleness > 0 && m.now().Sub(m.lastSync) > m.MaxStaleness:
		return fmt.Errorf("the bucket was last checked against the keys %s ago", m.now().Sub(m.lastSync).Round(time.Second))
	}
	return nil
}

func (m *Mirror) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// equalBytes reports whether d and o are the same documents byte for byte.
func (d *Documents) equalBytes(o *Documents) bool {
	return bytes.Equal(d.Config, o.Config) && bytes.Equal(d.JWKS, o.JWKS)
}
