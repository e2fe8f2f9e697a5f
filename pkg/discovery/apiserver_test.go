package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	k8sdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// fakeAPIServer serves the two discovery endpoints the way kube-apiserver
// does, from state a test changes as it goes.
type fakeAPIServer struct {
	mu     sync.Mutex
	issuer string
	jwks   string
	status int // when not 0 and not 200, every request gets this status
	paths  []string
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paths = append(f.paths, r.URL.Path)
	if f.status != 0 && f.status != http.StatusOK {
		http.Error(w, `{"kind":"Status","message":"unavailable"}`, f.status)
		return
	}
	switch r.URL.Path {
	case ConfigPath:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":` + quote(f.issuer) + `,"jwks_uri":"https://10.0.0.1:6443/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"]}`))
	case JWKSPath:
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write([]byte(f.jwks))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAPIServer) set(fn func(*fakeAPIServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// apiserverJWKS renders keys as kube-apiserver does (public keys, kid, alg,
// use sig), with the kid each key has.
func apiserverJWKS(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type apiserverFixture struct {
	api     *fakeAPIServer
	server  *httptest.Server
	source  *APIServerSource
	pub     *Publisher
	clock   *fakeClock
	metrics *Metrics
}

func newAPIServerFixture(t *testing.T, issuer, jwks string) *apiserverFixture {
	t.Helper()
	api := &fakeAPIServer{issuer: issuer, jwks: jwks}
	server := httptest.NewServer(api)
	t.Cleanup(server.Close)
	dc, err := k8sdiscovery.NewDiscoveryClientForConfig(&rest.Config{Host: server.URL})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	metrics := NewMetrics(prometheus.NewRegistry())
	pub := NewPublisher(testIssuer, testIssuer+JWKSPath, PublisherOptions{MaxStaleness: 3 * time.Minute, Metrics: metrics, Now: clock.Now})
	return &apiserverFixture{
		api: api, server: server, pub: pub, clock: clock, metrics: metrics,
		source: &APIServerSource{Client: dc.RESTClient(), Interval: time.Minute, Publisher: pub},
	}
}

func TestAPIServerSourceServesTheAPIServersKeys(t *testing.T) {
	rsa := jwksFromFiles(t, "rsa.pub")[0]
	ec := jwksFromFiles(t, "ec256.pub")[0]
	ec.KeyID = "an-external-signer-kid" // whatever the API server says is what tokens carry
	f := newAPIServerFixture(t, testIssuer, apiserverJWKS(t, rsa))
	ctx := context.Background()

	if err := f.source.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{kidRSA}, f.pub.Documents().KeyIDs); diff != "" {
		t.Errorf("kids after first refresh (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{ConfigPath, JWKSPath}, f.api.paths); diff != "" {
		t.Errorf("API server paths read (-want +got):\n%s", diff)
	}

	// The API server adds a key (rotation): both are served.
	f.api.set(func(a *fakeAPIServer) { a.jwks = apiserverJWKS(t, rsa, ec) })
	if err := f.source.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	docs := f.pub.Documents()
	if diff := cmp.Diff([]string{kidRSA, "an-external-signer-kid"}, docs.KeyIDs); diff != "" {
		t.Errorf("kids after rotation (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ES256", "RS256"}, docs.Algorithms); diff != "" {
		t.Errorf("algorithms (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(docs.Config), `"issuer":"`+testIssuer+`"`) {
		t.Errorf("configuration does not name --issuer: %s", docs.Config)
	}
}

func TestAPIServerSourceOutageKeepsLastGood(t *testing.T) {
	f := newAPIServerFixture(t, testIssuer, apiserverJWKS(t, jwksFromFiles(t, "rsa.pub")...))
	ctx := context.Background()
	handler := httptest.NewServer(NewHandler(f.pub, f.metrics))
	defer handler.Close()
	if err := f.source.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	good := f.pub.Documents()
	if got := testutil.ToFloat64(f.metrics.stale); got != 0 {
		t.Errorf("stale = %v after a good refresh, want 0", got)
	}
	wantLast := float64(f.clock.Now().Unix())

	outages := map[string]func(){
		"503 from the API server": func() { f.api.set(func(a *fakeAPIServer) { a.status = http.StatusServiceUnavailable }) },
		"empty JWKS":              func() { f.api.set(func(a *fakeAPIServer) { a.status = 0; a.jwks = `{"keys":[]}` }) },
		"JWKS that is not JSON":   func() { f.api.set(func(a *fakeAPIServer) { a.jwks = `<html>` }) },
		"API server gone":         func() { f.server.Close() },
	}
	for _, name := range []string{"503 from the API server", "empty JWKS", "JWKS that is not JSON", "API server gone"} {
		outages[name]()
		f.clock.Advance(time.Minute)
		if err := f.source.Refresh(ctx); err == nil {
			t.Fatalf("%s: refresh succeeded", name)
		}
		if f.pub.Documents() != good {
			t.Fatalf("%s: served documents changed", name)
		}
		if err := f.pub.ReadyCheck(nil); err != nil {
			t.Errorf("%s: ReadyCheck = %v, want ready with the last good keys", name, err)
		}
		resp, err := handler.Client().Get(handler.URL + "/cluster-1" + JWKSPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != good.JWKSETag {
			t.Errorf("%s: JWKS answered %d with ETag %s, want 200 with the last good one", name, resp.StatusCode, resp.Header.Get("ETag"))
		}
	}
	// Four failed minutes: more than the 3-minute bound.
	if err := f.pub.FreshCheck(nil); err == nil || !strings.Contains(err.Error(), "keys last refreshed 4m0s ago, more than the 3m0s allowed") {
		t.Errorf("FreshCheck = %v, want staleness reported", err)
	}
	if got := testutil.ToFloat64(f.metrics.stale); got != 1 {
		t.Errorf("stale = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.metrics.refreshFailures); got != 4 {
		t.Errorf("refresh failures = %v, want 4", got)
	}
	if got := testutil.ToFloat64(f.metrics.lastSuccess); got != wantLast {
		t.Errorf("last success = %v, want %v", got, wantLast)
	}
	if got := testutil.ToFloat64(f.metrics.keys); got != 1 {
		t.Errorf("keys = %v, want 1", got)
	}
}

func TestAPIServerSourceRecovers(t *testing.T) {
	f := newAPIServerFixture(t, testIssuer, apiserverJWKS(t, jwksFromFiles(t, "rsa.pub")...))
	ctx := context.Background()
	if err := f.source.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f.api.set(func(a *fakeAPIServer) { a.status = http.StatusInternalServerError })
	f.clock.Advance(10 * time.Minute)
	if err := f.source.Refresh(ctx); err == nil {
		t.Fatal("refresh succeeded during the outage")
	}
	if f.pub.FreshCheck(nil) == nil {
		t.Fatal("not stale after 10 minutes without a refresh")
	}
	f.api.set(func(a *fakeAPIServer) {
		a.status = 0
		a.jwks = apiserverJWKS(t, jwksFromFiles(t, "rsa.pub", "rsa-rotated.pub")...)
	})
	if err := f.source.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.pub.FreshCheck(nil); err != nil {
		t.Errorf("FreshCheck after recovery = %v", err)
	}
	if diff := cmp.Diff([]string{kidRSA, kidRotated}, f.pub.Documents().KeyIDs); diff != "" {
		t.Errorf("kids after recovery (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(f.metrics.stale); got != 0 {
		t.Errorf("stale = %v after recovery, want 0", got)
	}
}

func TestAPIServerSourceIssuerMismatchRefusesToStart(t *testing.T) {
	f := newAPIServerFixture(t, "https://kubernetes.default.svc.cluster.local", apiserverJWKS(t, jwksFromFiles(t, "rsa.pub")...))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := f.source.Run(ctx)
	if !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("Run = %v, want an issuer mismatch", err)
	}
	want := `issuer mismatch: the API server's issuer is "https://kubernetes.default.svc.cluster.local" but --issuer is "https://oidc.example.com/cluster-1"; set --issuer to the API server's --service-account-issuer`
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if f.pub.Documents() != nil || f.pub.ReadyCheck(nil) == nil {
		t.Error("documents published for the wrong issuer")
	}
	for _, p := range f.api.paths {
		if p == JWKSPath {
			t.Error("JWKS read although the issuer did not match")
		}
	}
}

func TestAPIServerSourceIssuerChangeKeepsLastGood(t *testing.T) {
	f := newAPIServerFixture(t, testIssuer, apiserverJWKS(t, jwksFromFiles(t, "rsa.pub")...))
	ctx := context.Background()
	if err := f.source.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	good := f.pub.Documents()
	f.api.set(func(a *fakeAPIServer) { a.issuer = "https://elsewhere.example.com" })
	if err := f.source.Refresh(ctx); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("Refresh = %v, want an issuer mismatch", err)
	}
	if f.pub.Documents() != good {
		t.Error("documents changed after the API server's issuer changed")
	}
}

func TestAPIServerSourceWaitsForTheAPIServer(t *testing.T) {
	f := newAPIServerFixture(t, testIssuer, apiserverJWKS(t, jwksFromFiles(t, "ec384.pub")...))
	f.api.set(func(a *fakeAPIServer) { a.status = http.StatusServiceUnavailable })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.source.Run(ctx) }()
	waitFor(t, 10*time.Second, "a failed first attempt", func() bool { return testutil.ToFloat64(f.metrics.refreshFailures) >= 1 })
	if f.pub.ReadyCheck(nil) == nil {
		t.Error("ready before any key set was loaded")
	}
	f.api.set(func(a *fakeAPIServer) { a.status = 0 })
	waitFor(t, 10*time.Second, "keys from the API server", func() bool { return f.pub.Documents() != nil })
	if diff := cmp.Diff([]string{kidEC384}, f.pub.Documents().KeyIDs); diff != "" {
		t.Errorf("kids (-want +got):\n%s", diff)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParseJWKS(t *testing.T) {
	rsa := jwksFromFiles(t, "rsa.pub")[0]
	rsaJSON, err := json.Marshal(rsa)
	if err != nil {
		t.Fatal(err)
	}
	private, err := parsePrivateForTest(readKeyFile(t, "rsa-pkcs1.key"))
	if err != nil {
		t.Fatal(err)
	}
	privateJSON, err := json.Marshal(jose.JSONWebKey{Key: private, KeyID: "k1", Algorithm: "RS256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	withField := func(field, value string) string {
		var m map[string]any
		_ = json.Unmarshal(rsaJSON, &m)
		if value == "" {
			delete(m, field)
		} else {
			m[field] = value
		}
		b, _ := json.Marshal(m)
		return `{"keys":[` + string(b) + `]}`
	}
	tests := map[string]struct {
		in      string
		wantKID []string
		wantErr string
	}{
		"kube-apiserver's shape":    {in: `{"keys":[` + string(rsaJSON) + `]}`, wantKID: []string{kidRSA}},
		"no alg and no use is fine": {in: withField("alg", ""), wantKID: []string{kidRSA}},
		"not JSON":                  {in: `{"keys":`, wantErr: "decode JWKS: unexpected end of JSON input"},
		"no keys member":            {in: `{}`, wantErr: "JWKS has no keys"},
		"empty key set":             {in: `{"keys":[]}`, wantErr: "JWKS has no keys"},
		"private key":               {in: `{"keys":[` + string(privateJSON) + `]}`, wantErr: `JWKS key 1 (kid "k1") is not a public key`},
		"no kid":                    {in: withField("kid", ""), wantErr: "JWKS key 1 has no kid"},
		"encryption key":            {in: withField("use", "enc"), wantErr: `JWKS key 1 (kid "` + kidRSA + `") has use "enc", not sig`},
		"alg not the key's":         {in: withField("alg", "PS256"), wantErr: `JWKS key 1 (kid "` + kidRSA + `") has alg "PS256" but its key signs with RS256`},
		"symmetric key":             {in: `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`, wantErr: `JWKS key 1 (kid "s") is not a public key`},
		"unknown key type":          {in: `{"keys":[{"kty":"XYZ","kid":"s"}]}`, wantErr: "JWKS key 1: go-jose/go-jose: unsupported key type/format"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			keys, err := ParseJWKS([]byte(tc.in))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tc.wantErr)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.KeyID)
			}
			if diff := cmp.Diff(tc.wantKID, kids); diff != "" {
				t.Errorf("kids (-want +got):\n%s", diff)
			}
		})
	}
}
