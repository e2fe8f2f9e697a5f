package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	k8sdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
)

const (
	testBucket = "oidc-bucket"
	testPrefix = "clusters/one"
)

// s3Peer is an S3-compatible store as the SDK meets one: path-style GETs
// answered from objects, S3's XML errors otherwise. Every request is
// recorded, to prove doctor only reads.
type s3Peer struct {
	srv     *httptest.Server
	objects map[string][]byte // "<bucket>/<key>"
	denied  bool

	mu      sync.Mutex
	methods []string
}

func newS3Peer(t *testing.T) *s3Peer {
	t.Helper()
	p := &s3Peer{objects: map[string][]byte{}}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	// What a user of an S3-compatible store with a private CA sets, for
	// discovery publish and doctor alike; and static credentials, so that
	// nothing of this machine's AWS configuration is read.
	dir := t.TempDir()
	t.Setenv("AWS_CA_BUNDLE", writeTemp(t, certPEM(p.srv.Certificate())))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDDOCTORTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "doctor-test-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return p
}

func (p *s3Peer) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.methods = append(p.methods, r.Method)
	p.mu.Unlock()
	s3Error := func(status int, code string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s from the test peer</Message></Error>`, code, code)
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case r.Method != http.MethodGet:
		s3Error(http.StatusMethodNotAllowed, "MethodNotAllowed")
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		s3Error(http.StatusForbidden, "AccessDenied")
	case p.denied:
		s3Error(http.StatusForbidden, "AccessDenied")
	case name != testBucket:
		s3Error(http.StatusNotFound, "NoSuchBucket")
	default:
		body, ok := p.objects[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			s3Error(http.StatusNotFound, "NoSuchKey")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

// publish puts docs where `discovery publish --prefix prefix` would.
func (p *s3Peer) publish(prefix string, docs *discovery.Documents) {
	p.objects[testBucket+"/"+discovery.Key(prefix, discovery.ConfigPath)] = docs.Config
	p.objects[testBucket+"/"+discovery.Key(prefix, discovery.JWKSPath)] = docs.JWKS
	p.objects[testBucket+"/"+discovery.Key(prefix, discovery.LegacyJWKSPath)] = docs.JWKS
}

// apiServerJWKS serves the API server's /openid/v1/jwks.
type apiServerJWKS struct {
	srv    *httptest.Server
	keys   []jose.JSONWebKey
	denied bool
}

func (a *apiServerJWKS) serve(w http.ResponseWriter, r *http.Request) {
	if a.denied {
		http.Error(w, `{"kind":"Status","code":403}`, http.StatusForbidden)
		return
	}
	if r.URL.Path != discovery.JWKSPath {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: a.keys})
}

// withAPIServer is the fake clientset whose discovery REST client reaches
// a real HTTP server, as doctor's does.
type withAPIServer struct {
	*fake.Clientset
	rest rest.Interface
}

func (c withAPIServer) Discovery() k8sdiscovery.DiscoveryInterfaces {
	return restDiscovery{c.Clientset.Discovery(), c.rest}
}

type restDiscovery struct {
	k8sdiscovery.DiscoveryInterfaces
	rc rest.Interface
}

func (d restDiscovery) RESTClient() rest.Interface { return d.rc }

func (a *apiServerJWKS) client(t *testing.T, c *fake.Clientset) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: a.srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: certPEM(a.srv.Certificate())}})
	if err != nil {
		t.Fatal(err)
	}
	return withAPIServer{Clientset: c, rest: cs.Discovery().RESTClient()}
}

// render is what discovery serve would serve for issuer with keys.
func render(t *testing.T, issuer, jwksURI string, keys ...jose.JSONWebKey) *discovery.Documents {
	t.Helper()
	docs, err := discovery.Render(issuer, jwksURI, keys)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func TestRunBucket(t *testing.T) {
	bucketIDs := []string{CheckBucketDocument, CheckBucketJWKS, CheckBucketSignature}
	current := func(w *world) jose.JSONWebKey { return w.served[0] }
	next := func(w *world) jose.JSONWebKey {
		return jose.JSONWebKey{Key: rsaKey(w.t, 1).Public(), KeyID: "kid-next", Algorithm: "RS256", Use: "sig"}
	}
	tests := map[string]struct {
		// setup shapes the bucket after the API server's keys were
		// published to it with the prefix.
		setup    func(w *world, s3 *s3Peer, api *apiServerJWKS)
		want     map[string]Status
		wantText string
	}{
		"published": {
			wantText: "byte for byte the API server's keys",
		},
		"published at the bucket's root": {
			setup: func(w *world, s3 *s3Peer, api *apiServerJWKS) {
				s3.objects = map[string][]byte{}
				s3.publish("", render(w.t, w.issuer, w.issuer+discovery.JWKSPath, api.keys...))
				w.cfg.BucketPrefix = ""
			},
		},
		"--bucket-prefix is not publish's --prefix": {
			setup:    func(w *world, _ *s3Peer, _ *apiServerJWKS) { w.cfg.BucketPrefix = "clusters/two" },
			want:     map[string]Status{CheckBucketDocument: StatusFail, CheckBucketJWKS: StatusSkip, CheckBucketSignature: StatusSkip},
			wantText: "check --bucket-prefix: it must be discovery publish's --prefix",
		},
		"nothing published": {
			setup: func(_ *world, s3 *s3Peer, _ *apiServerJWKS) { s3.objects = map[string][]byte{} },
			want:  map[string]Status{CheckBucketDocument: StatusFail, CheckBucketJWKS: StatusSkip, CheckBucketSignature: StatusSkip},
			// The fix is the command to run, with this bucket and prefix.
			wantText: "irsa-webhook discovery publish --issuer https://127.0.0.1",
		},
		"doctor's credentials may not read the bucket": {
			setup:    func(_ *world, s3 *s3Peer, _ *apiServerJWKS) { s3.denied = true },
			want:     map[string]Status{CheckBucketDocument: StatusFail, CheckBucketJWKS: StatusSkip, CheckBucketSignature: StatusSkip},
			wantText: "s3:GetObject on arn:aws:s3:::oidc-bucket/clusters/one/*",
		},
		"no such bucket": {
			setup:    func(w *world, _ *s3Peer, _ *apiServerJWKS) { w.cfg.Bucket = "another-bucket" },
			want:     map[string]Status{CheckBucketDocument: StatusFail, CheckBucketJWKS: StatusSkip, CheckBucketSignature: StatusSkip},
			wantText: "check --bucket, --region and --endpoint-url",
		},
		"another issuer's documents": {
			setup: func(w *world, s3 *s3Peer, api *apiServerJWKS) {
				s3.publish(testPrefix, render(w.t, "https://oidc.example.com/other", "https://oidc.example.com/other"+discovery.JWKSPath, api.keys...))
			},
			want:     map[string]Status{CheckBucketDocument: StatusFail, CheckBucketJWKS: StatusSkip, CheckBucketSignature: StatusSkip},
			wantText: `says issuer "https://oidc.example.com/other"`,
		},
		"jwks_uri outside the issuer": {
			setup: func(w *world, s3 *s3Peer, api *apiServerJWKS) {
				s3.publish(testPrefix, render(w.t, w.issuer, "https://keys.example.com/jwks", api.keys...))
			},
			want:     map[string]Status{CheckBucketDocument: StatusFail, CheckBucketJWKS: StatusSkip, CheckBucketSignature: StatusSkip},
			wantText: "is not under the issuer",
		},
		"document uploaded by hand, reformatted": {
			setup: func(w *world, s3 *s3Peer, _ *apiServerJWKS) {
				key := testBucket + "/" + discovery.Key(testPrefix, discovery.ConfigPath)
				var indented bytes.Buffer
				if err := json.Indent(&indented, s3.objects[key], "", "  "); err != nil {
					w.t.Fatal(err)
				}
				s3.objects[key] = indented.Bytes()
			},
			want:     map[string]Status{CheckBucketDocument: StatusWarn},
			wantText: "differs from what discovery serve would serve",
		},
		"stale JWKS: the key rotated without publishing": {
			setup: func(w *world, s3 *s3Peer, _ *apiServerJWKS) {
				s3.publish(testPrefix, render(w.t, w.issuer, w.issuer+discovery.JWKSPath, next(w)))
			},
			want:     map[string]Status{CheckBucketJWKS: StatusFail, CheckBucketSignature: StatusSkip},
			wantText: `has no key with the token's kid "kid-current" (it has: kid-next)`,
		},
		"the API server has a key the bucket lacks": {
			setup: func(w *world, _ *s3Peer, api *apiServerJWKS) { api.keys = append(api.keys, next(w)) },
			want:  map[string]Status{CheckBucketJWKS: StatusWarn},
			// The document stays byte-identical: the same algorithms.
			wantText: "not the API server's key(s) kid-next",
		},
		"the bucket keeps an old key too": {
			setup: func(w *world, s3 *s3Peer, api *apiServerJWKS) {
				s3.publish(testPrefix, render(w.t, w.issuer, w.issuer+discovery.JWKSPath, current(w), next(w)))
			},
			want:     map[string]Status{CheckBucketJWKS: StatusWarn},
			wantText: "differs from what discovery serve would serve (it has: kid-current, kid-next)",
		},
		"another key under the token's kid": {
			setup: func(w *world, s3 *s3Peer, _ *apiServerJWKS) {
				other := next(w)
				other.KeyID = testKID
				s3.publish(testPrefix, render(w.t, w.issuer, w.issuer+discovery.JWKSPath, other))
			},
			want:     map[string]Status{CheckBucketJWKS: StatusWarn, CheckBucketSignature: StatusFail},
			wantText: `does not verify with the bucket's key "kid-current"`,
		},
		"private key uploaded": {
			setup: func(w *world, s3 *s3Peer, _ *apiServerJWKS) {
				b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: w.signKey, KeyID: testKID, Algorithm: "RS256", Use: "sig"}}})
				if err != nil {
					w.t.Fatal(err)
				}
				s3.objects[testBucket+"/"+discovery.Key(testPrefix, discovery.JWKSPath)] = b
			},
			want:     map[string]Status{CheckBucketJWKS: StatusFail, CheckBucketSignature: StatusSkip},
			wantText: "is not a public key",
		},
		"the API server's keys not readable from here": {
			setup:    func(_ *world, _ *s3Peer, api *apiServerJWKS) { api.denied = true },
			wantText: "", // PASS, on issuer and jwks_uri alone; see below
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			s3 := newS3Peer(t)
			api := &apiServerJWKS{keys: []jose.JSONWebKey{w.served[0]}}
			api.srv = httptest.NewTLSServer(http.HandlerFunc(api.serve))
			t.Cleanup(api.srv.Close)
			w.cfg.Bucket, w.cfg.BucketPrefix = testBucket, testPrefix
			w.cfg.S3 = discovery.S3Options{Region: "us-east-1", EndpointURL: s3.srv.URL, PathStyle: true}
			s3.publish(testPrefix, render(t, w.issuer, w.issuer+discovery.JWKSPath, api.keys...))
			if tc.setup != nil {
				tc.setup(w, s3, api)
			}
			if err := w.cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			fakeClient := w.client()
			var out bytes.Buffer
			report, err := Run(context.Background(), w.cfg, api.client(t, fakeClient), &out)

			wantFailed := false
			for _, s := range tc.want {
				wantFailed = wantFailed || s == StatusFail
			}
			if wantFailed != errors.Is(err, ErrChecksFailed) || (err != nil && !errors.Is(err, ErrChecksFailed)) {
				t.Errorf("Run error = %v, want failure %t", err, wantFailed)
			}
			want, got := map[string]Status{}, map[string]Status{}
			for _, id := range bucketIDs {
				want[id] = StatusPass
			}
			for id, s := range tc.want {
				want[id] = s
			}
			var text []string
			for _, c := range report.Checks {
				if c.Status == StatusFail || c.Status == StatusWarn {
					if c.Fix == "" {
						t.Errorf("%s %s has no fix: %s", c.Status, c.ID, c.Message)
					}
				}
				if strings.HasPrefix(c.ID, "bucket-") {
					got[c.ID] = c.Status
					text = append(text, c.Message+" "+c.Fix)
				} else if c.Status != StatusPass {
					t.Errorf("check %s = %s: only the bucket's checks may differ: %s", c.ID, c.Status, c.Message)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bucket check statuses (-want +got):\n%s\noutput:\n%s", diff, out.String())
			}
			if tc.wantText != "" && !strings.Contains(strings.Join(text, "\n"), tc.wantText) {
				t.Errorf("no bucket check says %q; output:\n%s", tc.wantText, out.String())
			}
			if api.denied {
				if c, _ := report.Get(CheckBucketDocument); !strings.Contains(c.Message, "not compared byte for byte") {
					t.Errorf("without the API server's keys the document check should say it did not compare bytes: %s", c.Message)
				}
			}
			if strings.Contains(out.String(), `"d"`) {
				t.Errorf("output holds private key material:\n%s", out.String())
			}
			for _, m := range s3.methods {
				if m != http.MethodGet {
					t.Errorf("doctor sent %s to the bucket; it only reads", m)
				}
			}
			w.checkNoTokenPrinted(out.String())
			checkReadOnly(t, fakeClient)
		})
	}
}

func TestConfigValidateBucket(t *testing.T) {
	c := NewConfig()
	c.Namespace, c.ServiceAccount = "team-a", "app"
	c.BucketPrefix, c.S3 = "clusters/one", discovery.S3Options{Region: "us-east-1", EndpointURL: "https://s3.example.com", PathStyle: true}
	err := c.Validate()
	for _, flag := range []string{"--bucket-prefix", "--region", "--endpoint-url", "--path-style"} {
		if err == nil || !strings.Contains(err.Error(), flag+": needs --bucket") {
			t.Errorf("%s without --bucket: %v", flag, err)
		}
	}
	c.Bucket, c.BucketPrefix, c.S3.EndpointURL = "Bad_Bucket", "a//b", "http://s3.example.com"
	err = c.Validate()
	for _, flag := range []string{"--bucket", "--bucket-prefix", "--endpoint-url"} {
		if err == nil || !strings.Contains(err.Error(), flag+":") {
			t.Errorf("bad %s accepted: %v", flag, err)
		}
	}
	c.Bucket, c.BucketPrefix, c.S3.EndpointURL = "oidc-bucket", "clusters/one", "https://s3.example.com"
	if err := c.Validate(); err != nil {
		t.Errorf("good bucket flags: %v", err)
	}
}
