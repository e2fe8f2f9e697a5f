package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// AWSAlgorithms are the JWS algorithms AWS STS accepts in web identity
// tokens (IAM User Guide, OIDC identity providers).
var AWSAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
}

// parseAlgorithms are what doctor parses, wider than AWSAlgorithms so that
// a token signed with another asymmetric algorithm is reported as such
// rather than as unparseable.
var parseAlgorithms = append(slices.Clone(AWSAlgorithms), jose.PS256, jose.PS384, jose.PS512, jose.EdDSA)

// MaxTokenLifetime is the longest web identity token lifetime AWS accepts:
// one day, the bound the webhook also clamps to.
const MaxTokenLifetime = time.Duration(identity.MaxTokenExpiration) * time.Second

// token is the requested token, parsed but never printed.
type token struct {
	raw    string
	kid    string
	alg    string
	claims jwt.Claims
}

// checkToken requests a token for the ServiceAccount as the kubelet would
// for the webhook's projected volume, and checks its issuer and lifetime.
func (r *run) checkToken(ctx context.Context) {
	if r.spiffe() {
		r.checkSPIFFE(ctx)
		return
	}
	if r.sa == nil {
		r.skip(CheckTokenRequest, "no service account")
		r.skip(CheckTokenIssuer, "no token")
		r.skip(CheckTokenLifetime, "no token")
		return
	}
	// The token is a live credential for the audience (STS would accept it
	// for any role trusting this ServiceAccount), and the checks need only
	// its claims and signature: ask for the shortest lifetime the API server
	// accepts (TokenRequest's expirationSeconds minimum), not the Pod's.
	aud, exp := r.audience(), identity.MinTokenExpiration
	tctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	tr, err := r.kube.CoreV1().ServiceAccounts(r.cfg.Namespace).CreateToken(tctx, r.cfg.ServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}, ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		fix := "check the kubeconfig and the API server's service account token flags"
		if apierrors.IsForbidden(err) {
			fix = "grant create on serviceaccounts/token in namespace " + r.cfg.Namespace + " to the user doctor runs as"
		}
		r.add(CheckTokenRequest, StatusFail, fix, "request a token for %s (audience %s): %s", r.saRef(), aud, oneLine(err))
		r.skip(CheckTokenIssuer, "no token")
		r.skip(CheckTokenLifetime, "no token")
		return
	}
	tok, err := parseToken(tr.Status.Token)
	if err != nil {
		r.add(CheckTokenRequest, StatusFail, "the API server must be able to sign service account tokens (--service-account-signing-key-file)",
			"token for %s: %v", r.saRef(), err)
		r.skip(CheckTokenIssuer, "no usable token")
		r.skip(CheckTokenLifetime, "no usable token")
		return
	}
	wantSub := "system:serviceaccount:" + r.cfg.Namespace + ":" + r.cfg.ServiceAccount
	switch {
	case !tok.claims.Audience.Contains(aud):
		r.add(CheckTokenRequest, StatusFail, "the API server must honour TokenRequest audiences; check --api-audiences",
			"token for %s has audiences %v, not %s", r.saRef(), []string(tok.claims.Audience), aud)
	case tok.claims.Subject != wantSub:
		r.add(CheckTokenRequest, StatusFail, "the trust policy's sub condition will not match this token; check the API server",
			"token for %s has sub %q, want %q", r.saRef(), tok.claims.Subject, wantSub)
	default:
		r.add(CheckTokenRequest, StatusPass, "", "token requested for %s: sub %s, audience %s, kid %q, alg %s", r.saRef(), wantSub, aud, tok.kid, tok.alg)
	}
	r.tok = tok

	r.checkTokenIssuer(ctx)
	r.checkTokenLifetime(exp)
}

// parseToken reads a token's header and claims without verifying it; the
// signature is checked against the published key later.
func parseToken(raw string) (*token, error) {
	if raw == "" {
		return nil, fmt.Errorf("the API server returned an empty token")
	}
	t, err := jwt.ParseSigned(raw, parseAlgorithms)
	if err != nil {
		// go-jose's errors do not quote the input; the token stays secret.
		return nil, fmt.Errorf("not a signed JWT with an asymmetric algorithm: %w", err)
	}
	if len(t.Headers) != 1 {
		return nil, fmt.Errorf("has %d signatures, want 1", len(t.Headers))
	}
	tok := &token{raw: raw, kid: t.Headers[0].KeyID, alg: t.Headers[0].Algorithm}
	if err := t.UnsafeClaimsWithoutVerification(&tok.claims); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	return tok, nil
}

// expectedIssuer is the issuer AWS trusts: --issuer, else the API server's
// own discovery issuer. Empty when neither is known.
func (r *run) expectedIssuer(ctx context.Context) (string, error) {
	if r.cfg.Issuer != "" {
		return r.cfg.Issuer, nil
	}
	if !r.issuerLooked {
		r.issuerLooked = true
		r.apiIssuer, r.apiIssuerErr = r.apiServerIssuer(ctx)
	}
	return r.apiIssuer, r.apiIssuerErr
}

// apiServerIssuer reads the issuer of the API server's own discovery
// document.
func (r *run) apiServerIssuer(ctx context.Context) (string, error) {
	rc := r.kube.Discovery().RESTClient()
	if rc == nil {
		return "", fmt.Errorf("this client cannot read the API server's discovery document")
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	b, err := rc.Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("read the API server's /.well-known/openid-configuration: %w", err)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Issuer == "" {
		return "", fmt.Errorf("the API server's /.well-known/openid-configuration has no issuer")
	}
	return doc.Issuer, nil
}

func (r *run) checkTokenIssuer(ctx context.Context) {
	iss := r.tok.claims.Issuer
	want, err := r.expectedIssuer(ctx)
	if err != nil {
		r.add(CheckTokenIssuer, StatusWarn, "pass --issuer with the URL of the IAM OIDC provider",
			"could not learn the public issuer (%s); checking discovery at the token's own issuer %q", oneLine(err), iss)
		return
	}
	if iss != want {
		r.add(CheckTokenIssuer, StatusFail,
			fmt.Sprintf("start kube-apiserver with --service-account-issuer=%s first (the first value is the one tokens carry), or create the IAM OIDC provider for %s instead", want, iss),
			"token iss is %q, but the public issuer is %q: AWS will reject the token", iss, want)
		return
	}
	r.add(CheckTokenIssuer, StatusPass, "", "token iss %q is the public issuer", iss)
}

func (r *run) checkTokenLifetime(asked int64) {
	c := r.tok.claims
	if c.Expiry == nil || c.IssuedAt == nil {
		r.add(CheckTokenLifetime, StatusFail, "the API server must set exp and iat; check its version and flags",
			"token has no exp or no iat claim")
		return
	}
	life := c.Expiry.Time().Sub(c.IssuedAt.Time())
	switch {
	case life <= 0:
		r.add(CheckTokenLifetime, StatusFail, "check the API server's clock", "token expires (exp) before it was issued (iat)")
	case life > MaxTokenLifetime:
		r.add(CheckTokenLifetime, StatusFail,
			fmt.Sprintf("lower the webhook's --token-expiration or the %s annotation to at most %d seconds; check kube-apiserver --service-account-max-token-expiration",
				identity.Keys{Prefix: r.cfg.AnnotationPrefix}.Key(identity.TokenExpiration), identity.MaxTokenExpiration),
			"token lifetime %s is longer than the %s AWS accepts", life, MaxTokenLifetime)
	default:
		msg := fmt.Sprintf("token lifetime %s is within the %s AWS accepts", life, MaxTokenLifetime)
		if int64(life/time.Second) < asked {
			msg += fmt.Sprintf(" (asked for %ds; the API server capped it)", asked)
		}
		r.add(CheckTokenLifetime, StatusPass, "", "%s", msg)
	}
}

// algorithmNames lists algs for messages.
func algorithmNames(algs []jose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
