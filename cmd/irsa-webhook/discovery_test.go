package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
	"github.com/irsa-webhook/irsa-webhook/pkg/webhook"
)

const testIssuer = "https://oidc.example.com/cluster-1"

func testKey(name string) string {
	return filepath.Join("..", "..", "pkg", "discovery", "testdata", "keys", name)
}

// runCommand runs the root command with args and returns what it printed
// and its error.
func runCommand(ctx context.Context, args ...string) (string, error) {
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestDiscoveryCommandFlagErrors(t *testing.T) {
	tests := map[string]struct {
		args []string
		want []string
	}{
		"serve without issuer or source": {args: []string{"discovery", "serve", "--insecure-http"}, want: []string{
			"--issuer: required (e.g. https://oidc.example.com/cluster-1)",
			"--key-file, --from-apiserver, --from-spiffe: give exactly one key source (--key-file FILE, repeatable, --from-apiserver or --from-spiffe)",
		}},
		"serve with http issuer, two sources, bad port, bad log format": {
			args: []string{"discovery", "serve", "--issuer", "http://oidc.example.com", "--key-file", "k", "--from-apiserver", "--port", "70000", "--log-format", "xml"},
			want: []string{
				`--issuer: "http://oidc.example.com" is not an https URL; AWS only fetches https`,
				"--key-file, --from-apiserver, --from-spiffe: give exactly one key source, not several",
				"--port: 70000 is not a port number (1-65535)",
				`--log-format: "xml" is not json or console`,
			},
		},
		"export without out": {args: []string{"discovery", "export", "--issuer", testIssuer, "--key-file", "k"}, want: []string{
			"--out: required: the directory to write the documents into",
		}},
		"export with a key file that is not there": {args: []string{"discovery", "export", "--issuer", testIssuer, "--key-file", "no-such.pem", "--out", "x"}, want: []string{
			"read key file no-such.pem: open no-such.pem: no such file or directory",
		}},
		"serve --discovery-port without issuer": {args: []string{"serve", "--discovery-port", "8443"}, want: []string{
			"--issuer: required (e.g. https://oidc.example.com/cluster-1)",
			"--key-file, --from-apiserver, --from-spiffe: give exactly one key source (--key-file FILE, repeatable, --from-apiserver or --from-spiffe)",
		}},
		"serve --discovery-port equal to --port": {args: []string{"serve", "--discovery-port", "9443", "--issuer", testIssuer, "--key-file", "k"}, want: []string{
			"--discovery-port: 9443 is not 0 (off) or a port number (1-65535) other than --port",
		}},
		"unknown subcommand": {args: []string{"discovery", "bogus"}, want: []string{
			`unknown command "bogus" for "irsa-webhook discovery"`,
		}},
		"unknown flag": {args: []string{"discovery", "serve", "--issuer-url", testIssuer}, want: []string{
			"unknown flag: --issuer-url",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := runCommand(context.Background(), tc.args...)
			if err == nil {
				t.Fatal("command succeeded")
			}
			if diff := cmp.Diff(tc.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiscoveryHelpHasExamples(t *testing.T) {
	for _, sub := range []string{"serve", "export"} {
		out, err := runCommand(context.Background(), "discovery", sub, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Examples:", "--issuer", "--key-file", "--from-apiserver"} {
			if !strings.Contains(out, want) {
				t.Errorf("discovery %s --help lacks %q", sub, want)
			}
		}
	}
}

// listen binds a port of the kernel's choice on loopback, for a command to
// serve (see testListeners).
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// selfSignedCertDir writes tls.crt and tls.key for 127.0.0.1 and returns
// the directory and a pool trusting their CA.
func selfSignedCertDir(t *testing.T) (string, *x509.CertPool) {
	t.Helper()
	ca, err := testcerts.NewCA("discovery test CA")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Serving(testcerts.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pair.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir, ca.Pool()
}

func get(t *testing.T, client *http.Client, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// waitUntil polls cond every 20ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDiscoveryServeAndExport starts `discovery serve` (plain HTTP, then
// HTTPS from --cert-dir), fetches both documents, and checks that
// `discovery export` writes the very same bytes.
func TestDiscoveryServeAndExport(t *testing.T) {
	keys := []string{"--key-file", testKey("rsa-pkcs1.key"), "--key-file", testKey("ec256.pub")}
	outDir := t.TempDir()
	report, err := runCommand(context.Background(), append([]string{"discovery", "export", "--issuer", testIssuer, "--out", outDir, "-o", "json"}, keys...)...)
	if err != nil {
		t.Fatal(err)
	}
	var rep exportReport
	if err := json.Unmarshal([]byte(report), &rep); err != nil {
		t.Fatalf("export -o json printed %q: %v", report, err)
	}
	wantReport := exportReport{
		Issuer:     testIssuer,
		JWKSURI:    testIssuer + "/openid/v1/jwks",
		KeyIDs:     []string{"ekXRQov8X7PByMNT0OhQ0xR_jTOpYWAYshWNwhYxZhI", "qfdJqOicRDEQgV2Jak58gTU10W6dSPbV4kJIb3EX2VU"},
		Algorithms: []string{"ES256", "RS256"},
		Files: []string{
			filepath.Join(outDir, ".well-known", "openid-configuration"),
			filepath.Join(outDir, "openid", "v1", "jwks"),
			filepath.Join(outDir, "keys.json"),
		},
	}
	if diff := cmp.Diff(wantReport, rep); diff != "" {
		t.Errorf("export report (-want +got):\n%s", diff)
	}

	certDir, pool := selfSignedCertDir(t)
	tests := map[string]struct {
		flags  []string
		scheme string
		client *http.Client
	}{
		"insecure HTTP": {flags: []string{"--insecure-http"}, scheme: "http", client: &http.Client{Timeout: 5 * time.Second}},
		"HTTPS from --cert-dir": {flags: []string{"--cert-dir", certDir}, scheme: "https", client: &http.Client{Timeout: 5 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// The listeners replace --port and --health-probe-bind-address;
			// the metrics server binds port 0 and says where.
			served, health, metricsAt := listen(t), listen(t), make(chan string, 1)
			args := append([]string{"discovery", "serve", "--issuer", testIssuer,
				"--metrics-bind-address", "127.0.0.1:0", "--log-format", "console"}, keys...)
			ctx, cancel := context.WithCancel(withTestListeners(context.Background(),
				&testListeners{main: served, health: health, metricsAddr: metricsAt}))
			done := make(chan error, 1)
			go func() {
				_, err := runCommand(ctx, append(args, tc.flags...)...)
				done <- err
			}()
			stopped := false
			defer func() {
				if !stopped {
					cancel()
					<-done
				}
			}()

			base := fmt.Sprintf("%s://%s/cluster-1", tc.scheme, served.Addr())
			healthClient := &http.Client{Timeout: 5 * time.Second}
			waitUntil(t, 20*time.Second, "the server to be ready", func() bool {
				select {
				case err := <-done:
					stopped = true
					t.Fatalf("discovery serve ended early: %v", err)
				default:
				}
				resp, err := healthClient.Get(fmt.Sprintf("http://%s/readyz", health.Addr()))
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
			var metrics string
			select {
			case metrics = <-metricsAt:
			case <-time.After(20 * time.Second):
				t.Fatal("the metrics server did not report its address within 20s")
			}

			for path, file := range map[string]string{
				"/.well-known/openid-configuration": ".well-known/openid-configuration",
				"/openid/v1/jwks":                   "openid/v1/jwks",
				"/keys.json":                        "keys.json",
			} {
				code, hdr, body := get(t, tc.client, base+path)
				if code != http.StatusOK {
					t.Fatalf("GET %s = %d", path, code)
				}
				exported, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(file)))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(body, exported) {
					t.Errorf("GET %s differs from the exported %s:\nserved   %s\nexported %s", path, file, body, exported)
				}
				wantType := "application/jwk-set+json"
				if file == ".well-known/openid-configuration" {
					wantType = "application/json"
				}
				if got := hdr.Get("Content-Type"); got != wantType {
					t.Errorf("GET %s Content-Type = %q, want %q", path, got, wantType)
				}
			}
			if code, _, _ := get(t, healthClient, fmt.Sprintf("http://%s/healthz", health.Addr())); code != http.StatusOK {
				t.Errorf("/healthz = %d", code)
			}
			_, _, exposition := get(t, healthClient, fmt.Sprintf("http://%s/metrics", metrics))
			for _, want := range []string{
				`irsa_webhook_discovery_requests_total{code="200",path="/openid/v1/jwks"}`,
				"irsa_webhook_discovery_keys 2",
				"irsa_webhook_discovery_stale 0",
				"irsa_webhook_discovery_last_refresh_success_timestamp_seconds ",
				// The serving limits' counters, of both servers.
				`irsa_webhook_server_budget_refusals_total{server="discovery"} 0`,
				`irsa_webhook_server_connections_evicted_total{how="goaway",server="discovery"} 0`,
				`irsa_webhook_server_connections_refused_total{server="health"} 0`,
				`irsa_webhook_server_deadline_extensions_total{server="discovery"} `,
			} {
				if !strings.Contains(string(exposition), want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}

			cancel()
			select {
			case err := <-done:
				stopped = true
				if err != nil {
					t.Errorf("discovery serve returned %v after cancel", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("discovery serve did not stop within 10s of cancel")
			}
		})
	}
}

// writeKubeconfig writes a kubeconfig for the API server at url, with a
// token no real API server accepts.
func writeKubeconfig(t *testing.T, url string) string {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+url+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// TestDiscoveryServeRefusesAnotherIssuer runs `discovery serve
// --from-apiserver` against an API server whose issuer is not --issuer.
func TestDiscoveryServeRefusesAnotherIssuer(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_, _ = w.Write([]byte(`{"issuer":"https://kubernetes.default.svc.cluster.local","jwks_uri":"https://10.0.0.1/openid/v1/jwks"}`))
		default:
			t.Errorf("unexpected request for %s", r.URL.Path)
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	kubeconfig := writeKubeconfig(t, api.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// runDiscoveryServe, past the flags, so that its listener can take
	// port 0, the kernel's choice (--port does not accept it).
	cfg := discovery.NewConfig()
	cfg.Issuer, cfg.FromAPIServer, cfg.Kubeconfig = testIssuer, true, kubeconfig
	cfg.InsecureHTTP, cfg.BindAddress, cfg.Port = true, "127.0.0.1", 0
	cfg.HealthProbeBindAddress, cfg.MetricsBindAddress = "0", "0"
	err := runDiscoveryServe(ctx, cfg)
	want := `key source: issuer mismatch: the API server's issuer is "https://kubernetes.default.svc.cluster.local" but --issuer is "https://oidc.example.com/cluster-1"; set --issuer to the API server's --service-account-issuer`
	if err == nil || err.Error() != want {
		t.Fatalf("discovery serve = %v, want %q", err, want)
	}

	_, err = runCommand(ctx, "discovery", "export", "--issuer", testIssuer, "--from-apiserver", "--kubeconfig", kubeconfig, "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "issuer mismatch") {
		t.Fatalf("discovery export = %v, want an issuer mismatch", err)
	}
}

// TestServeDiscoveryListener mounts the discovery handler on a manager the
// way `serve --discovery-port` does and fetches the JWKS over HTTPS with
// the webhook's certificate and its --tls-min-version.
func TestServeDiscoveryListener(t *testing.T) {
	certDir, pool := selfSignedCertDir(t)
	cfg := webhook.NewConfig()
	cfg.CertDir = certDir
	cfg.TLSMinVersion = "1.3"
	cfg.BindAddress = "127.0.0.1"
	cfg.DiscoveryPort = 1 // validated, then replaced by the listener
	dcfg := discovery.NewConfig()
	dcfg.Issuer = testIssuer
	dcfg.KeyFiles = []string{testKey("ec384.pub")}
	if err := validateDiscoveryListener(cfg, dcfg); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	// The manager's health server takes no listener: it stays off, and
	// the test runs the readiness checks the listener added.
	inner, err := ctrl.NewManager(&rest.Config{Host: "https://127.0.0.1:1"}, manager.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		BaseContext: func() context.Context {
			return withTestListeners(context.Background(), &testListeners{discovery: ln})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mgr := &recordingManager{Manager: inner, readyz: map[string]healthz.Checker{}}
	if err := addDiscoveryListener(mgr, logr.Discard(), cfg, dcfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	url := fmt.Sprintf("https://%s/cluster-1/openid/v1/jwks", ln.Addr())
	waitUntil(t, 20*time.Second, "the discovery listener", func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	_, _, body := get(t, client, url)
	if !strings.Contains(string(body), `"kid":"DCuxM2GTm5T4w5ueieC0ugSG3pUKPCsP7j9TU0tNKSY"`) {
		t.Errorf("JWKS lacks the P-384 key: %s", body)
	}
	// --tls-min-version=1.3 holds on the discovery port too.
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Error("a TLS 1.2 handshake succeeded on the discovery port with --tls-min-version=1.3")
	}
	for _, name := range servingMetricNames {
		if !hasSeries(t, name, "server", "discovery") {
			t.Errorf("controller-runtime's registry has no %s{server=\"discovery\"}", name)
		}
	}
	for _, name := range []string{"discovery-keys", "discovery-keys-fresh"} {
		check, ok := mgr.readyz[name]
		if !ok {
			t.Errorf("no readiness check %q added (have %v)", name, mgr.readyz)
			continue
		}
		if err := check(nil); err != nil {
			t.Errorf("readiness check %q: %v", name, err)
		}
	}
}

// servingMetricNames are the counters of pkg/serving.
var servingMetricNames = []string{
	"irsa_webhook_server_budget_refusals_total",
	"irsa_webhook_server_connections_evicted_total",
	"irsa_webhook_server_connections_refused_total",
	"irsa_webhook_server_deadline_extensions_total",
}

// hasSeries says whether controller-runtime's registry holds a series of
// name with label=value.
func hasSeries(t *testing.T, name, label, value string) bool {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return true
				}
			}
		}
	}
	return false
}

// recordingManager keeps the readiness checks added to the manager, for a
// test to run them.
type recordingManager struct {
	manager.Manager
	readyz map[string]healthz.Checker
}

func (m *recordingManager) AddReadyzCheck(name string, check healthz.Checker) error {
	m.readyz[name] = check
	return m.Manager.AddReadyzCheck(name, check)
}
