package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
)

// ErrIssuerMismatch means the API server names a different issuer than the
// one this server was told to serve: tokens carry the API server's iss, so
// AWS would reject every one of them.
var ErrIssuerMismatch = errors.New("issuer mismatch")

// APIServerSource reads the keys from the API server's own discovery
// endpoints with the process's credentials (RBAC: the built-in
// system:service-account-issuer-discovery ClusterRole), so anonymous access
// to them never has to be enabled.
type APIServerSource struct {
	// Client is a REST client for the API server (for example the
	// discovery client's RESTClient()); only AbsPath requests are made.
	Client rest.Interface
	// Interval between refreshes.
	Interval  time.Duration
	Publisher *Publisher
}

// Fetch reads the API server's provider configuration and JWKS. It returns
// an error wrapping ErrIssuerMismatch when the API server's issuer is not
// the Publisher's.
func (s *APIServerSource) Fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	raw, err := s.Client.Get().AbsPath(ConfigPath).Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("get %s from the API server: %w", ConfigPath, err)
	}
	issuer, err := ParseProviderConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("API server %s: %w", ConfigPath, err)
	}
	if want := s.Publisher.Issuer(); issuer != want {
		return nil, fmt.Errorf("%w: the API server's issuer is %q but --issuer is %q; set --issuer to the API server's --service-account-issuer", ErrIssuerMismatch, issuer, want)
	}
	raw, err = s.Client.Get().AbsPath(JWKSPath).Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("get %s from the API server: %w", JWKSPath, err)
	}
	keys, err := ParseJWKS(raw)
	if err != nil {
		return nil, fmt.Errorf("API server %s: %w", JWKSPath, err)
	}
	return keys, nil
}

// Refresh fetches the keys and publishes them. On failure the last good
// documents stay served.
func (s *APIServerSource) Refresh(ctx context.Context) error {
	keys, err := s.Fetch(ctx)
	return s.Publisher.Refresh(ctx, "apiserver", "the API server", keys, err)
}

// Run refreshes every Interval until ctx ends. Until the first success it
// retries sooner (1s, doubling, at most Interval or 30s). An issuer
// mismatch before the first success ends Run with the error: this server
// refuses to start for the wrong issuer. Any failure after that keeps the
// last good documents served and is reported by FreshCheck and the metrics.
func (s *APIServerSource) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	next := newRefreshSchedule(s.Interval)
	for {
		err := s.Refresh(ctx)
		switch {
		case err == nil:
			next.loaded = true
		case errors.Is(err, ErrIssuerMismatch) && !next.loaded:
			return err
		case ctx.Err() != nil:
			return nil
		default:
			log.Error(err, "refresh keys from the API server failed; serving the last good keys", "loaded", next.loaded)
		}
		t := time.NewTimer(next.wait())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// ParseProviderConfig returns the issuer of an OpenID provider
// configuration document.
func ParseProviderConfig(data []byte) (string, error) {
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("decode provider configuration: %w", err)
	}
	if doc.Issuer == "" {
		return "", errors.New("provider configuration has no issuer")
	}
	return doc.Issuer, nil
}

// ParseJWKS returns the public signing keys of a JWKS as kube-apiserver
// serves it, keeping each key's kid (the one in the tokens). A key that is
// not a supported public signing key (wrong type or curve, no kid, use other
// than sig, alg other than the key's, or private material) is an error
// naming its kid; the whole set is then rejected rather than served partly.
func ParseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWKS has no keys")
	}
	if len(set.Keys) > maxKeys {
		return nil, fmt.Errorf("JWKS has %d keys, more than the %d allowed", len(set.Keys), maxKeys)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for i, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i+1, err)
		}
		name := fmt.Sprintf("%d", i+1)
		if k.KeyID != "" {
			name = fmt.Sprintf("%d (kid %q)", i+1, k.KeyID)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWKS key %s is not a public key", name)
		}
		if k.KeyID == "" {
			return nil, fmt.Errorf("JWKS key %s has no kid", name)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("JWKS key %s has use %q, not sig", name, k.Use)
		}
		pub, err := jwkWithID(k.Key, k.KeyID)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %s: %w", name, err)
		}
		if k.Algorithm != "" && k.Algorithm != pub.Algorithm {
			return nil, fmt.Errorf("JWKS key %s has alg %q but its key signs with %s", name, k.Algorithm, pub.Algorithm)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}
