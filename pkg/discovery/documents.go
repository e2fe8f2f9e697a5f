package discovery

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// URL paths of the documents, relative to the issuer. kube-apiserver serves
// the same two; /keys.json is where older self-hosting guides put the JWKS.
const (
	ConfigPath     = "/.well-known/openid-configuration"
	JWKSPath       = "/openid/v1/jwks"
	LegacyJWKSPath = "/keys.json"
)

// claimsSupported are the claims kube-apiserver puts into every service
// account token it signs (iss, sub, aud, iat, nbf, exp, jti and the private
// kubernetes.io claim), sorted. kube-apiserver's own discovery document
// omits claims_supported; listing the claims is allowed by OpenID Connect
// Discovery and what the AWS guides for self-hosted issuers show.
var claimsSupported = []string{"aud", "exp", "iat", "iss", "jti", "kubernetes.io", "nbf", "sub"}

// providerConfig is the OpenID provider configuration, in the field order
// kube-apiserver writes, plus claims_supported.
type providerConfig struct {
	Issuer          string   `json:"issuer"`
	JWKSURI         string   `json:"jwks_uri"`
	ResponseTypes   []string `json:"response_types_supported"`
	SubjectTypes    []string `json:"subject_types_supported"`
	SigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported []string `json:"claims_supported"`
}

// Documents are the rendered discovery documents, immutable once made.
type Documents struct {
	Config     []byte
	ConfigETag string
	JWKS       []byte
	JWKSETag   string
	// KeyIDs are the kids served, in order.
	KeyIDs []string
	// Algorithms are the signing algorithms of the keys served, sorted.
	Algorithms []string
}

// Render builds the documents for issuer and jwksURI from keys. Keys that
// appear more than once (same kid, same key) are served once; two different
// keys with one kid, an empty key set, or any key that is not a supported
// public key are errors. Only the public half of a key is ever rendered.
func Render(issuer, jwksURI string, keys []jose.JSONWebKey) (*Documents, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys to publish")
	}
	if len(keys) > maxKeys {
		return nil, fmt.Errorf("%d keys are more than the %d allowed", len(keys), maxKeys)
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	var kids, algs []string
	seen := map[string]jose.JSONWebKey{}
	for i, k := range keys {
		if k.KeyID == "" {
			return nil, fmt.Errorf("key %d has no kid", i+1)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("key %s is not a public key", k.KeyID)
		}
		pub, err := jwkWithID(k.Key, k.KeyID)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.KeyID, err)
		}
		if prev, ok := seen[k.KeyID]; ok {
			if !samePublicKey(prev, pub) {
				return nil, fmt.Errorf("two different keys have kid %s", k.KeyID)
			}
			continue
		}
		seen[k.KeyID] = pub
		set.Keys = append(set.Keys, pub)
		kids = append(kids, pub.KeyID)
		if !slices.Contains(algs, pub.Algorithm) {
			algs = append(algs, pub.Algorithm)
		}
	}
	slices.Sort(algs)
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("render JWKS: %w", err)
	}
	config, err := json.Marshal(providerConfig{
		Issuer:          issuer,
		JWKSURI:         jwksURI,
		ResponseTypes:   []string{"id_token"},
		SubjectTypes:    []string{"public"},
		SigningAlgs:     algs,
		ClaimsSupported: claimsSupported,
	})
	if err != nil {
		return nil, fmt.Errorf("render provider configuration: %w", err)
	}
	return &Documents{
		Config:     config,
		ConfigETag: etag(config),
		JWKS:       jwks,
		JWKSETag:   etag(jwks),
		KeyIDs:     kids,
		Algorithms: algs,
	}, nil
}

// equal reports whether d and o hold the same bytes.
func (d *Documents) equal(o *Documents) bool {
	return d != nil && o != nil && string(d.Config) == string(o.Config) && string(d.JWKS) == string(o.JWKS)
}

func samePublicKey(a, b jose.JSONWebKey) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// etag is a strong entity tag derived from the body.
func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}
