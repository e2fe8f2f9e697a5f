package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// maxDocumentSize bounds what doctor reads of a discovery document or JWKS.
const maxDocumentSize = 1 << 20

// discovered is what the public discovery endpoints served.
type discovered struct {
	issuer  string
	jwksURI string
	keys    jose.JSONWebKeySet
}

// checkDiscovery fetches the discovery document and the JWKS the way AWS
// STS does (anonymous https GETs), and verifies the token's signature with
// the published key.
func (r *run) checkDiscovery(ctx context.Context) {
	issuer := r.publicIssuer(ctx)
	if issuer == "" {
		for _, id := range []string{CheckDiscoveryDocument, CheckDiscoveryIssuer, CheckJWKS, CheckTokenSignature} {
			r.skip(id, "no issuer known; pass --issuer")
		}
		return
	}
	serveFix := fmt.Sprintf("serve it where AWS can fetch it: irsa-webhook discovery serve --issuer %s (or discovery export to a static site), reachable over public https", issuer)

	docURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	if u, err := url.Parse(issuer); err != nil || u.Scheme != "https" || u.Host == "" {
		r.add(CheckDiscoveryDocument, StatusFail, "use an https issuer: AWS only fetches discovery documents over https",
			"issuer %q is not an https URL", issuer)
		r.skipAfterDocument("no usable issuer")
		return
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := r.getJSON(ctx, docURL, &doc); err != nil {
		r.add(CheckDiscoveryDocument, StatusFail, serveFix, "discovery document %s: %v", docURL, err)
		r.skipAfterDocument("no discovery document")
		return
	}
	r.add(CheckDiscoveryDocument, StatusPass, "", "discovery document %s is reachable", docURL)

	if doc.Issuer != issuer {
		r.add(CheckDiscoveryIssuer, StatusFail,
			fmt.Sprintf("serve the document with issuer exactly %q (discovery serve --issuer %s)", issuer, issuer),
			"discovery document says issuer %q, not %q: AWS rejects a mismatch", doc.Issuer, issuer)
	} else {
		r.add(CheckDiscoveryIssuer, StatusPass, "", "discovery document issuer is %q", issuer)
	}

	r.disc = &discovered{issuer: doc.Issuer, jwksURI: doc.JWKSURI}
	if !r.checkJWKS(ctx, serveFix) {
		because := "no usable key"
		if r.tok == nil {
			because = "no token"
		}
		r.skip(CheckTokenSignature, because)
		return
	}
	r.checkSignature()
}

// publicIssuer is the issuer whose documents AWS fetches: --issuer, else
// the API server's (for a JWT-SVID, the token's own), else the token's.
// Empty when none is known.
func (r *run) publicIssuer(ctx context.Context) string {
	issuer := r.cfg.Issuer
	if issuer == "" && r.spiffe() && r.tok != nil {
		// The API server's issuer has nothing to do with JWT-SVIDs.
		issuer = r.tok.claims.Issuer
	}
	if issuer == "" {
		if want, err := r.expectedIssuer(ctx); err == nil {
			issuer = want
		} else if r.tok != nil {
			issuer = r.tok.claims.Issuer
		}
	}
	return issuer
}

func (r *run) skipAfterDocument(because string) {
	r.skip(CheckDiscoveryIssuer, because)
	r.skip(CheckJWKS, because)
	r.skip(CheckTokenSignature, because)
}

// checkJWKS fetches jwks_uri and looks for the token's kid.
func (r *run) checkJWKS(ctx context.Context, serveFix string) bool {
	uri := r.disc.jwksURI
	if u, err := url.Parse(uri); uri == "" || err != nil || u.Scheme != "https" || u.Host == "" {
		r.add(CheckJWKS, StatusFail, "serve a discovery document whose jwks_uri is an https URL",
			"discovery document's jwks_uri %q is not an https URL", uri)
		return false
	}
	if err := r.getJSON(ctx, uri, &r.disc.keys); err != nil {
		r.add(CheckJWKS, StatusFail, serveFix, "JWKS %s: %v", uri, err)
		return false
	}
	keys := r.disc.keys.Keys
	if len(keys) == 0 {
		r.add(CheckJWKS, StatusFail, serveFix, "JWKS %s holds no key: AWS rejects every token", uri)
		return false
	}
	kids := make([]string, 0, len(keys))
	for _, k := range keys {
		if !k.IsPublic() {
			// Never say more about the key than its kid.
			r.add(CheckJWKS, StatusFail, "stop serving it now and rotate that key: the JWKS must hold public keys only",
				"JWKS %s serves private key material (kid %q)", uri, k.KeyID)
			return false
		}
		kids = append(kids, k.KeyID)
	}
	if r.tok == nil {
		r.add(CheckJWKS, StatusPass, "", "JWKS %s holds %d key(s): %s", uri, len(keys), strings.Join(kids, ", "))
		return false
	}
	if len(r.disc.keys.Key(r.tok.kid)) == 0 {
		r.add(CheckJWKS, StatusFail,
			"serve the API server's current signing keys: discovery serve --from-apiserver, or add the key with --key-file (same kid as the API server's)",
			"JWKS %s has no key with the token's kid %q (it has: %s)", uri, r.tok.kid, strings.Join(kids, ", "))
		return false
	}
	r.add(CheckJWKS, StatusPass, "", "JWKS %s holds the token's kid %q", uri, r.tok.kid)
	return true
}

// checkSignature verifies the token with the published key(s) of its kid.
func (r *run) checkSignature() {
	switch err := r.verifyToken(r.disc.keys.Key(r.tok.kid)); {
	case errors.Is(err, errAlgorithm):
		r.add(CheckTokenSignature, StatusFail, "sign service account tokens with an RSA or ECDSA (P-256/P-384/P-521) key", "%v", err)
	case err != nil:
		r.add(CheckTokenSignature, StatusFail,
			"the JWKS serves a different key under the same kid: serve the API server's current public key (discovery serve --from-apiserver)",
			"token signature does not verify with the published key %q: %v", r.tok.kid, err)
	default:
		r.add(CheckTokenSignature, StatusPass, "", "token signature (%s) verifies with the published key %q", r.tok.alg, r.tok.kid)
	}
}

// errAlgorithm marks a token signed with an algorithm AWS refuses.
var errAlgorithm = errors.New("algorithm AWS does not accept")

// verifyToken checks the token's signature with one of keys (those of its
// kid) and an algorithm AWS accepts.
func (r *run) verifyToken(keys []jose.JSONWebKey) error {
	if !slices.Contains(AWSAlgorithms, jose.SignatureAlgorithm(r.tok.alg)) {
		return fmt.Errorf("%w: token alg %s is not one AWS accepts (%s)", errAlgorithm, r.tok.alg, algorithmNames(AWSAlgorithms))
	}
	jws, err := jose.ParseSignedCompact(r.tok.raw, AWSAlgorithms)
	if err != nil {
		return fmt.Errorf("token does not parse as a JWS: %w", err)
	}
	last := errors.New("no key")
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != r.tok.alg {
			last = fmt.Errorf("key alg %s differs from the token's %s", k.Algorithm, r.tok.alg)
			continue
		}
		if _, err := jws.Verify(k.Key); err != nil {
			last = err
			continue
		}
		return nil
	}
	return last
}

// getJSON GETs url and decodes its JSON body into v.
func (r *run) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("not reachable from here: %s", oneLine(err))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocumentSize)).Decode(v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return nil
}
