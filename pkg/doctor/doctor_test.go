package doctor

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

const (
	testNS     = "team-a"
	testSA     = "app"
	testRole   = "arn:aws:iam::111122223333:role/team-a-app"
	testWriter = "arn:aws:iam::111122223333:role/team-a-writer"
	testKID    = "kid-current"
)

// world is one cluster and its public endpoints, as a test case shapes it.
type world struct {
	t *testing.T

	sa              *corev1.ServiceAccount // nil: absent
	namespaceLabels map[string]string
	// namespaceAnnotations are the namespace's, for the role policy.
	namespaceAnnotations map[string]string
	webhooks             []admissionregistrationv1.MutatingWebhookConfiguration

	// Token signing, as the API server would.
	signKey    crypto.Signer
	signAlg    jose.SignatureAlgorithm
	tokenKID   string
	tokenIss   string        // empty: the issuer
	lifetime   time.Duration // 0: what was asked for
	served     []jose.JSONWebKey
	docIssuer  string // empty: the issuer
	jwksURI    string // empty: the discovery server's /openid/v1/jwks
	docMoved   string // not empty: the discovery document redirects there
	discovery  *httptest.Server
	webhookSrv *httptest.Server
	issuer     string

	cfg *Config

	mu       sync.Mutex
	tokens   []string // every token handed out, to prove none is printed
	requests []authenticationv1.TokenRequestSpec
}

// rsaKeys are generated once: 2048-bit generation is the slowest part of
// these tests.
var rsaKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

// rsaKey returns the signing key (0) or an unrelated one (1).
func rsaKey(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[i]
}

func newWorld(t *testing.T) *world {
	t.Helper()
	key := rsaKey(t, 0)
	w := &world{t: t, signKey: key, signAlg: jose.RS256, tokenKID: testKID}
	w.served = []jose.JSONWebKey{{Key: key.Public(), KeyID: testKID, Algorithm: string(jose.RS256), Use: "sig"}}

	w.discovery = httptest.NewTLSServer(http.HandlerFunc(w.serveDiscovery))
	t.Cleanup(w.discovery.Close)
	w.issuer = w.discovery.URL + "/cluster-1"

	w.webhookSrv = httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(w.webhookSrv.Close)

	w.sa = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Namespace: testNS, Name: testSA,
		Annotations: map[string]string{"eks.amazonaws.com/role-arn": testRole},
	}}
	url := w.webhookSrv.URL + "/mutate"
	w.webhooks = []admissionregistrationv1.MutatingWebhookConfiguration{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "irsa-webhook"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name:         "pod-identity.irsa-webhook.io",
				ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: certPEM(w.webhookSrv.Certificate())},
				Rules:        podCreate(),
			}},
		},
		// Someone else's webhook, to be ignored.
		{
			ObjectMeta: metav1.ObjectMeta{Name: "other-product"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name:         "other.example.com",
				ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr("https://127.0.0.1:1/other"), CABundle: []byte("junk")},
				Rules:        podCreate(),
			}},
		},
	}

	w.cfg = NewConfig()
	w.cfg.Namespace, w.cfg.ServiceAccount = testNS, testSA
	w.cfg.Issuer = w.issuer
	w.cfg.CAFile = writeTemp(t, certPEM(w.discovery.Certificate()))
	w.cfg.Timeout = 5 * time.Second
	return w
}

func podCreate() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
}

func ptr[T any](v T) *T { return &v }

func (w *world) serveDiscovery(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/cluster-1/.well-known/openid-configuration": // also for the issuer ".../cluster-1/"
		if w.docMoved != "" {
			http.Redirect(rw, r, w.docMoved, http.StatusFound)
			return
		}
		iss, jwks := w.docIssuer, w.jwksURI
		if iss == "" {
			iss = w.issuer
		}
		if jwks == "" {
			jwks = w.discovery.URL + "/openid/v1/jwks"
		}
		_ = json.NewEncoder(rw).Encode(map[string]any{
			"issuer": iss, "jwks_uri": jwks,
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	case "/openid/v1/jwks":
		_ = json.NewEncoder(rw).Encode(jose.JSONWebKeySet{Keys: w.served})
	case "/moved/jwks": // an https URL that sends the client to plain HTTP
		http.Redirect(rw, r, "http://127.0.0.1:1/keys.json", http.StatusMovedPermanently)
	case "/moved/https/jwks": // a redirect that stays on https is followed
		http.Redirect(rw, r, "/openid/v1/jwks", http.StatusFound)
	default:
		http.NotFound(rw, r)
	}
}

// client is a fake clientset holding the world's objects, whose
// TokenRequest reactor signs a real JWT as the API server would.
func (w *world) client() *fake.Clientset {
	objs := []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS, Labels: w.namespaceLabels, Annotations: w.namespaceAnnotations}}}
	if w.sa != nil {
		objs = append(objs, w.sa)
	}
	for i := range w.webhooks {
		objs = append(objs, &w.webhooks[i])
	}
	c := fake.NewClientset(objs...)
	c.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(k8stesting.CreateActionImpl)
		if !ok || a.GetSubresource() != "token" {
			return false, nil, nil
		}
		req := ca.GetObject().(*authenticationv1.TokenRequest)
		w.mu.Lock()
		w.requests = append(w.requests, req.Spec)
		w.mu.Unlock()
		life := w.lifetime
		if life == 0 {
			life = time.Duration(*req.Spec.ExpirationSeconds) * time.Second
		}
		iss := w.tokenIss
		if iss == "" {
			iss = w.issuer
		}
		now := time.Now()
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: w.signAlg, Key: jose.JSONWebKey{Key: w.signKey, KeyID: w.tokenKID}},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return true, nil, err
		}
		raw, err := jwt.Signed(signer).Claims(jwt.Claims{
			Issuer:    iss,
			Subject:   "system:serviceaccount:" + ca.GetNamespace() + ":" + ca.Name,
			Audience:  jwt.Audience(req.Spec.Audiences),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(life)),
		}).Serialize()
		if err != nil {
			return true, nil, err
		}
		w.mu.Lock()
		w.tokens = append(w.tokens, raw)
		w.mu.Unlock()
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{
			Token: raw, ExpirationTimestamp: metav1.NewTime(now.Add(life)),
		}}, nil
	})
	return c
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// otherCA is a self-signed CA that signed nothing the servers present.
func otherCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "unrelated CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRun(t *testing.T) {
	allIDs := []string{CheckServiceAccount, CheckRoleARN, CheckProfiles, CheckSessionName, CheckRolePolicy, CheckWebhookConfiguration, CheckWebhookCABundle,
		CheckTokenRequest, CheckTokenIssuer, CheckTokenLifetime, CheckDiscoveryDocument, CheckDiscoveryIssuer,
		CheckJWKS, CheckTokenSignature}

	tests := map[string]struct {
		setup func(w *world)
		// want maps every check ID whose status is not PASS to its status.
		want map[string]Status
		// wantText must appear in the failing check's message or fix.
		wantText string
	}{
		"healthy": {},
		"healthy with an ES256 key": {
			setup: func(w *world) {
				key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					w.t.Fatal(err)
				}
				w.signKey, w.signAlg = key, jose.ES256
				w.served = append(w.served, jose.JSONWebKey{Key: key.Public(), KeyID: "ec-1", Algorithm: "ES256", Use: "sig"})
				w.tokenKID = "ec-1"
			},
		},
		"service account missing": {
			setup: func(w *world) { w.sa = nil },
			want: map[string]Status{CheckServiceAccount: StatusFail, CheckRoleARN: StatusSkip,
				CheckProfiles: StatusSkip, CheckSessionName: StatusSkip, CheckRolePolicy: StatusSkip,
				CheckTokenRequest: StatusSkip, CheckTokenIssuer: StatusSkip, CheckTokenLifetime: StatusSkip,
				CheckJWKS: StatusPass, CheckTokenSignature: StatusSkip},
			wantText: "kubectl create serviceaccount -n team-a app",
		},
		"role annotation missing": {
			setup:    func(w *world) { delete(w.sa.Annotations, "eks.amazonaws.com/role-arn") },
			want:     map[string]Status{CheckRoleARN: StatusFail, CheckProfiles: StatusSkip, CheckSessionName: StatusSkip, CheckRolePolicy: StatusSkip},
			wantText: "has no eks.amazonaws.com/role-arn annotation",
		},
		"malformed role ARN": {
			setup:    func(w *world) { w.sa.Annotations["eks.amazonaws.com/role-arn"] = "arn:aws:iam::1234:role/x" },
			want:     map[string]Status{CheckRoleARN: StatusFail, CheckProfiles: StatusSkip, CheckSessionName: StatusSkip, CheckRolePolicy: StatusSkip},
			wantText: "is not an IAM role ARN",
		},
		"profiles": {
			setup: func(w *world) { w.sa.Annotations[identity.Profiles] = "writer=" + testWriter },
		},
		"a profile with an invalid role": {
			setup: func(w *world) {
				w.sa.Annotations[identity.Profiles] = "writer=" + testWriter + ", broken=arn:aws:iam::1:role/x"
			},
			want:     map[string]Status{CheckProfiles: StatusWarn},
			wantText: `profile "broken"`,
		},
		"profiles with the reserved name": {
			setup:    func(w *world) { w.sa.Annotations[identity.Profiles] = "default=" + testWriter },
			want:     map[string]Status{CheckProfiles: StatusWarn},
			wantText: "reserved",
		},
		"session name by flag": {
			setup: func(w *world) { w.cfg.RoleSessionName = identity.SessionNamePod },
		},
		"session name annotation invalid": {
			setup:    func(w *world) { w.sa.Annotations[identity.RoleSessionName] = "always" },
			want:     map[string]Status{CheckSessionName: StatusWarn},
			wantText: identity.RoleSessionName,
		},
		"namespace policy allows the role and profiles": {
			setup: func(w *world) {
				w.sa.Annotations[identity.Profiles] = "writer=" + testWriter
				w.namespaceAnnotations = map[string]string{identity.AllowedRoleARNs: "arn:aws:iam::111122223333:role/*"}
			},
		},
		"namespace policy refuses the role": {
			setup: func(w *world) {
				w.namespaceAnnotations = map[string]string{identity.AllowedRoleARNs: testWriter}
			},
			want:     map[string]Status{CheckRolePolicy: StatusFail},
			wantText: "the webhook refuses the pods",
		},
		"namespace policy refuses a profile's role": {
			setup: func(w *world) {
				w.sa.Annotations[identity.Profiles] = "writer=" + testWriter
				w.namespaceAnnotations = map[string]string{identity.AllowedRoleARNs: testRole}
			},
			want:     map[string]Status{CheckRolePolicy: StatusFail},
			wantText: `profile "writer"`,
		},
		"namespace policy under warn leaves a profile out": {
			setup: func(w *world) {
				w.cfg.RolePolicyAction = identity.RolePolicyWarn
				w.sa.Annotations[identity.Profiles] = "writer=" + testWriter
				w.namespaceAnnotations = map[string]string{identity.AllowedRoleARNs: testRole}
			},
			want:     map[string]Status{CheckRolePolicy: StatusWarn},
			wantText: "admitted without that profile",
		},
		"namespace policy under warn leaves the role out": {
			setup: func(w *world) {
				w.cfg.RolePolicyAction = identity.RolePolicyWarn
				w.namespaceAnnotations = map[string]string{identity.AllowedRoleARNs: testWriter}
			},
			want:     map[string]Status{CheckRolePolicy: StatusFail},
			wantText: "admitted without AWS credentials",
		},
		"webhook configuration missing": {
			setup:    func(w *world) { w.webhooks = w.webhooks[1:] },
			want:     map[string]Status{CheckWebhookConfiguration: StatusFail, CheckWebhookCABundle: StatusSkip},
			wantText: "no MutatingWebhookConfiguration",
		},
		"webhook matched by its /mutate path alone": {
			setup: func(w *world) {
				w.webhooks[0].Name = "pod-credentials"
				w.webhooks[0].Webhooks[0].Name = "pods.example.com"
			},
			want:     map[string]Status{CheckWebhookConfiguration: StatusWarn},
			wantText: "by its path alone",
		},
		"namespace excluded by the namespaceSelector": {
			setup: func(w *world) {
				w.namespaceLabels = map[string]string{"irsa-webhook.io/ignore": "true"}
				w.webhooks[0].Webhooks[0].NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "irsa-webhook.io/ignore", Operator: metav1.LabelSelectorOpDoesNotExist},
				}}
			},
			want:     map[string]Status{CheckWebhookConfiguration: StatusFail},
			wantText: "skips namespace team-a",
		},
		"namespace selected by the namespaceSelector": {
			setup: func(w *world) {
				w.webhooks[0].Webhooks[0].NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "irsa-webhook.io/ignore", Operator: metav1.LabelSelectorOpDoesNotExist},
				}}
			},
		},
		"webhook not called for pods": {
			setup: func(w *world) {
				w.webhooks[0].Webhooks[0].Rules[0].Resources = []string{"deployments"}
			},
			want:     map[string]Status{CheckWebhookConfiguration: StatusFail},
			wantText: "is not called for pod CREATE",
		},
		"caBundle mismatch": {
			setup:    func(w *world) { w.webhooks[0].Webhooks[0].ClientConfig.CABundle = certPEM(otherCA(w.t)) },
			want:     map[string]Status{CheckWebhookCABundle: StatusFail},
			wantText: "caBundle does not verify the serving certificate",
		},
		"caBundle empty": {
			setup:    func(w *world) { w.webhooks[0].Webhooks[0].ClientConfig.CABundle = nil },
			want:     map[string]Status{CheckWebhookCABundle: StatusFail},
			wantText: "empty caBundle",
		},
		"service webhook not reachable from here": {
			setup: func(w *world) {
				w.webhooks[0].Webhooks[0].ClientConfig.URL = nil
				w.webhooks[0].Webhooks[0].ClientConfig.Service = &admissionregistrationv1.ServiceReference{
					Namespace: "irsa-system", Name: "irsa-webhook", Path: ptr("/mutate"), Port: ptr(int32(443)),
				}
			},
			want:     map[string]Status{CheckWebhookCABundle: StatusWarn},
			wantText: "could not connect to irsa-webhook.irsa-system.svc:443",
		},
		"token issuer is not the public issuer": {
			setup:    func(w *world) { w.tokenIss = "https://kubernetes.default.svc" },
			want:     map[string]Status{CheckTokenIssuer: StatusFail},
			wantText: "--service-account-issuer=",
		},
		"token lifetime over a day": {
			setup:    func(w *world) { w.lifetime = 48 * time.Hour },
			want:     map[string]Status{CheckTokenLifetime: StatusFail},
			wantText: "longer than the 24h0m0s AWS accepts",
		},
		"discovery unreachable": {
			setup: func(w *world) { w.discovery.Close() },
			want: map[string]Status{CheckDiscoveryDocument: StatusFail, CheckDiscoveryIssuer: StatusSkip,
				CheckJWKS: StatusSkip, CheckTokenSignature: StatusSkip},
			wantText: "not reachable from here",
		},
		"discovery document names another issuer": {
			setup:    func(w *world) { w.docIssuer = "https://oidc.example.com/other" },
			want:     map[string]Status{CheckDiscoveryIssuer: StatusFail},
			wantText: `says issuer "https://oidc.example.com/other"`,
		},
		"jwks_uri over plain http": {
			setup:    func(w *world) { w.jwksURI = "http://127.0.0.1/keys.json" },
			want:     map[string]Status{CheckJWKS: StatusFail, CheckTokenSignature: StatusSkip},
			wantText: "is not an https URL",
		},
		"discovery document redirects to plain http": {
			setup: func(w *world) { w.docMoved = "http://127.0.0.1:1/.well-known/openid-configuration" },
			want: map[string]Status{CheckDiscoveryDocument: StatusFail, CheckDiscoveryIssuer: StatusSkip,
				CheckJWKS: StatusSkip, CheckTokenSignature: StatusSkip},
			wantText: "redirects to http://127.0.0.1:1/.well-known/openid-configuration, which is not https",
		},
		"jwks_uri redirects to plain http": {
			setup:    func(w *world) { w.jwksURI = w.discovery.URL + "/moved/jwks" },
			want:     map[string]Status{CheckJWKS: StatusFail, CheckTokenSignature: StatusSkip},
			wantText: "/moved/jwks redirects to http://127.0.0.1:1/keys.json, which is not https",
		},
		"jwks_uri redirects on https": {
			setup: func(w *world) { w.jwksURI = w.discovery.URL + "/moved/https/jwks" },
			want:  map[string]Status{CheckJWKS: StatusPass, CheckTokenSignature: StatusPass},
		},
		"kid missing from the JWKS": {
			setup:    func(w *world) { w.tokenKID = "kid-rotated-away" },
			want:     map[string]Status{CheckJWKS: StatusFail, CheckTokenSignature: StatusSkip},
			wantText: `no key with the token's kid "kid-rotated-away" (it has: kid-current)`,
		},
		"empty JWKS": {
			setup:    func(w *world) { w.served = nil },
			want:     map[string]Status{CheckJWKS: StatusFail, CheckTokenSignature: StatusSkip},
			wantText: "holds no key",
		},
		"private key served in the JWKS": {
			setup: func(w *world) {
				w.served = []jose.JSONWebKey{{Key: w.signKey, KeyID: testKID, Algorithm: "RS256", Use: "sig"}}
			},
			want:     map[string]Status{CheckJWKS: StatusFail, CheckTokenSignature: StatusSkip},
			wantText: "serves private key material",
		},
		"bad signature: another key under the token's kid": {
			setup: func(w *world) {
				other := rsaKey(w.t, 1)
				w.served = []jose.JSONWebKey{{Key: other.Public(), KeyID: testKID, Algorithm: "RS256", Use: "sig"}}
			},
			want:     map[string]Status{CheckTokenSignature: StatusFail},
			wantText: `does not verify with the published key "kid-current"`,
		},
		"algorithm AWS does not accept": {
			setup: func(w *world) {
				w.signAlg = jose.PS256
				w.served[0].Algorithm = "PS256"
			},
			want:     map[string]Status{CheckTokenSignature: StatusFail},
			wantText: "token alg PS256 is not one AWS accepts",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			if tc.setup != nil {
				tc.setup(w)
			}
			if err := w.cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			client := w.client()
			var out bytes.Buffer
			report, err := Run(context.Background(), w.cfg, client, &out)

			wantFailed := false
			for _, s := range tc.want {
				wantFailed = wantFailed || s == StatusFail
			}
			if wantFailed != errors.Is(err, ErrChecksFailed) || (err != nil && !errors.Is(err, ErrChecksFailed)) {
				t.Errorf("Run error = %v, want failure %t", err, wantFailed)
			}

			want := map[string]Status{}
			for _, id := range allIDs {
				want[id] = StatusPass
			}
			for id, s := range tc.want {
				want[id] = s
			}
			got := map[string]Status{}
			var failText []string
			for _, c := range report.Checks {
				if prev, dup := got[c.ID]; dup && prev != StatusPass {
					continue // keep the worst of repeated checks (one per webhook)
				}
				got[c.ID] = c.Status
				if c.Status == StatusFail || c.Status == StatusWarn {
					failText = append(failText, c.Message+" "+c.Fix)
					if c.Fix == "" {
						t.Errorf("%s %s has no fix: %s", c.Status, c.ID, c.Message)
					}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("check statuses (-want +got):\n%s\noutput:\n%s", diff, out.String())
			}
			if tc.wantText != "" && !strings.Contains(strings.Join(failText, "\n"), tc.wantText) {
				t.Errorf("no failing check says %q; output:\n%s", tc.wantText, out.String())
			}
			w.checkNoTokenPrinted(out.String())
			checkReadOnly(t, client)
		})
	}
}

// checkNoTokenPrinted fails if any part of a handed-out token is in the
// output (its signature or its payload would be enough to replay or read it).
func (w *world) checkNoTokenPrinted(out string) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, tok := range w.tokens {
		for i, part := range strings.Split(tok, ".") {
			if i > 0 && strings.Contains(out, part) {
				w.t.Errorf("output holds part %d of the token", i)
			}
		}
	}
}

// checkReadOnly fails if doctor did anything to the cluster but read and
// request a token.
func checkReadOnly(t *testing.T, c *fake.Clientset) {
	t.Helper()
	for _, a := range c.Actions() {
		switch a.GetVerb() {
		case "get", "list":
		case "create":
			if a.GetResource().Resource != "serviceaccounts" || a.GetSubresource() != "token" {
				t.Errorf("doctor created %s/%s", a.GetResource().Resource, a.GetSubresource())
			}
		default:
			t.Errorf("doctor did %s on %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

// TestRunRequestsTheWebhooksToken checks that doctor asks for the token the
// webhook would project (the ServiceAccount's audience annotation over the
// flag), but only for the 600 seconds the API server's minimum allows,
// whatever lifetime the Pods get: the token is a live credential.
func TestRunRequestsTheWebhooksToken(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		want        authenticationv1.TokenRequestSpec
	}{
		"flag defaults": {
			want: authenticationv1.TokenRequestSpec{Audiences: []string{"sts.amazonaws.com"}, ExpirationSeconds: ptr(int64(600))},
		},
		"service account annotations": {
			annotations: map[string]string{"eks.amazonaws.com/audience": "irsa.example.com", "eks.amazonaws.com/token-expiration": "3600"},
			want:        authenticationv1.TokenRequestSpec{Audiences: []string{"irsa.example.com"}, ExpirationSeconds: ptr(int64(600))},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			for k, v := range tc.annotations {
				w.sa.Annotations[k] = v
			}
			var out bytes.Buffer
			if _, err := Run(context.Background(), w.cfg, w.client(), &out); err != nil {
				t.Fatalf("Run: %v\n%s", err, out.String())
			}
			if diff := cmp.Diff([]authenticationv1.TokenRequestSpec{tc.want}, w.requests); diff != "" {
				t.Errorf("token requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunJSON(t *testing.T) {
	w := newWorld(t)
	w.tokenKID = "gone"
	w.cfg.Output = OutputJSON
	var out bytes.Buffer
	_, err := Run(context.Background(), w.cfg, w.client(), &out)
	if !errors.Is(err, ErrChecksFailed) {
		t.Fatalf("Run error = %v, want ErrChecksFailed", err)
	}
	var got Report
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not a JSON report: %v\n%s", err, out.String())
	}
	c, ok := got.Get(CheckJWKS)
	if !ok || c.Status != StatusFail || c.Fix == "" {
		t.Errorf("jwks check in JSON = %+v", c)
	}
	if diff := cmp.Diff(1, got.Failed); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	w.checkNoTokenPrinted(out.String())
}

func TestRunTextChecklist(t *testing.T) {
	w := newWorld(t)
	w.sa.Annotations["eks.amazonaws.com/role-arn"] = "not-an-arn"
	var out bytes.Buffer
	if _, err := Run(context.Background(), w.cfg, w.client(), &out); !errors.Is(err, ErrChecksFailed) {
		t.Fatalf("Run error = %v, want ErrChecksFailed", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var fail int
	for i, l := range lines {
		if strings.HasPrefix(l, "FAIL") {
			fail++
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "fix: kubectl annotate --overwrite serviceaccount -n team-a app eks.amazonaws.com/role-arn=") {
				t.Errorf("FAIL line not followed by its fix:\n%s", out.String())
			}
		}
	}
	if fail != 1 || !strings.Contains(out.String(), "1 of 14 checks failed") {
		t.Errorf("want one FAIL and the summary; got:\n%s", out.String())
	}
}

func TestConfigValidate(t *testing.T) {
	c := NewConfig()
	c.Namespace, c.ServiceAccount, c.Issuer = "Team_A", "", "https://oidc.example.com/"
	c.TokenExpiration, c.Output, c.Timeout = 100, "yaml", 0
	c.TokenAudience = "a b"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad flags")
	}
	for _, flag := range []string{"--namespace", "--service-account", "--issuer", "--token-expiration", "--output", "--timeout", "--token-audience"} {
		if !strings.Contains(err.Error(), flag+":") {
			t.Errorf("error does not name %s: %v", flag, err)
		}
	}
	ok := NewConfig()
	ok.Namespace, ok.ServiceAccount = "team-a", "app"
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults with a ServiceAccount: %v", err)
	}
}
