package harness

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// Webhook is `irsa-webhook serve` run with the flags the install manifests
// use, listening on 127.0.0.1.
type Webhook struct {
	*Process
	// URL is where the API server sends AdmissionReviews.
	URL         string
	HealthURL   string // plain HTTP base of /healthz and /readyz
	MetricsURL  string // plain HTTP /metrics
	Port        int
	healthPort  int
	metricsPort int
}

func newWebhook(bin, kubeconfig, certDir, logDir, audience string, extra []string) (*Webhook, error) {
	w := &Webhook{Process: &Process{Name: "irsa-webhook-serve", Path: bin, LogPath: filepath.Join(logDir, "irsa-webhook-serve.log")}}
	w.UsePorts = func(ports []int) error {
		w.Port, w.healthPort, w.metricsPort = ports[0], ports[1], ports[2]
		w.URL = "https://" + hostPort(ports[0]) + "/mutate"
		w.HealthURL = "http://" + hostPort(ports[1])
		w.MetricsURL = "http://" + hostPort(ports[2]) + "/metrics"
		w.Args = append([]string{
			"serve",
			"--kubeconfig=" + kubeconfig,
			"--cert-dir=" + certDir,
			"--bind-address=127.0.0.1",
			"--port=" + strconv.Itoa(ports[0]),
			"--health-probe-bind-address=" + hostPort(ports[1]),
			"--metrics-bind-address=" + hostPort(ports[2]),
			// The install manifests' flags; the region and regional STS are
			// what an operator sets for the SDK to find its STS endpoint.
			"--annotation-prefix=eks.amazonaws.com",
			"--token-audience=" + audience,
			"--tls-min-version=1.2",
			"--log-format=json",
			"--aws-default-region=" + Region,
			"--sts-regional-endpoints=true",
		}, extra...)
		return nil
	}
	if err := w.listenOn(3); err != nil {
		return nil, err
	}
	return w, nil
}

// Start starts the webhook and waits for its /readyz (cache synced and
// serving certificate loaded).
func (w *Webhook) Start(ctx context.Context) error {
	return w.startAndWait(ctx, w.WaitReady)
}

// WaitReady polls /readyz until it answers 200.
func (w *Webhook) WaitReady(ctx context.Context) error {
	return waitFor(ctx, 60*time.Second, "irsa-webhook /readyz", w.Process, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, w.HealthURL+"/readyz")
	})
}

// Discovery is `irsa-webhook discovery serve`, the issuer's public face: the
// API server's --service-account-issuer and MinIO's OpenID config URL
// point at it.
type Discovery struct {
	*Process
	// Issuer is the https URL the tokens' iss claim carries.
	Issuer     string
	Port       int
	HealthURL  string
	MetricsURL string // plain HTTP /metrics

	bin, certDir, logDir string
	healthPort, metrics  int
	client               *http.Client
}

// DiscoverySource is where the discovery server takes its keys from:
// exactly one of KeyFiles or Kubeconfig (which selects --from-apiserver).
type DiscoverySource struct {
	// KeyFiles are passed as repeated --key-file.
	KeyFiles []string
	// Kubeconfig, when set, runs --from-apiserver with these credentials.
	Kubeconfig string
	// ExtraArgs are appended as they are.
	ExtraArgs []string
}

func newDiscovery(bin string, pki *PKI, logDir string) (*Discovery, error) {
	certDir, err := pki.ServingCert("discovery")
	if err != nil {
		return nil, err
	}
	d := &Discovery{
		Process: &Process{Name: "irsa-webhook-discovery", Path: bin, LogPath: filepath.Join(logDir, "irsa-webhook-discovery.log")},
		bin:     bin,
		certDir: certDir,
		logDir:  logDir,
		client:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CertPool()}}},
	}
	// No UsePorts: the issuer URL goes to the API server before this
	// server starts, so its ports cannot move. They stay held until then.
	if err := d.listenOn(3); err != nil {
		return nil, err
	}
	d.Port, d.healthPort, d.metrics = d.Ports[0], d.Ports[1], d.Ports[2]
	d.Issuer = "https://" + hostPort(d.Port)
	d.HealthURL = "http://" + hostPort(d.healthPort)
	d.MetricsURL = "http://" + hostPort(d.metrics) + "/metrics"
	return d, nil
}

// Configure sets the key source used by the next Start or Restart.
func (d *Discovery) Configure(src DiscoverySource) {
	args := []string{
		"discovery", "serve",
		"--issuer=" + d.Issuer,
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(d.Port),
		"--cert-dir=" + d.certDir,
		"--health-probe-bind-address=" + hostPort(d.healthPort),
		"--metrics-bind-address=" + hostPort(d.metrics),
	}
	for _, f := range src.KeyFiles {
		args = append(args, "--key-file="+f)
	}
	if src.Kubeconfig != "" {
		args = append(args, "--from-apiserver", "--kubeconfig="+src.Kubeconfig)
	}
	d.Process.Args = append(args, src.ExtraArgs...)
}

// Start starts the discovery server and waits until it serves a discovery
// document with the right issuer and a non-empty JWKS.
func (d *Discovery) Start(ctx context.Context) error {
	return d.startAndWait(ctx, d.WaitReady)
}

// Restart stops and starts the server with its current configuration.
func (d *Discovery) Restart(ctx context.Context) error {
	if err := d.Process.Stop(); err != nil {
		return err
	}
	return d.Start(ctx)
}

// WaitReady polls the public documents until they are served.
func (d *Discovery) WaitReady(ctx context.Context) error {
	return waitFor(ctx, 60*time.Second, "discovery documents", d.Process, func(ctx context.Context) error {
		doc, err := d.OpenIDConfiguration(ctx)
		if err != nil {
			return err
		}
		if doc.Issuer != d.Issuer {
			return fmt.Errorf("issuer %q, want %q", doc.Issuer, d.Issuer)
		}
		keys, err := d.JWKS(ctx)
		if err != nil {
			return err
		}
		if len(keys.Keys) == 0 {
			return fmt.Errorf("JWKS at %s has no keys", doc.JWKSURI)
		}
		return nil
	})
}

// OpenIDConfiguration is the part of the discovery document the tests read.
type OpenIDConfiguration struct {
	Issuer  string   `json:"issuer"`
	JWKSURI string   `json:"jwks_uri"`
	Algs    []string `json:"id_token_signing_alg_values_supported"`
}

// JWKS is a JSON Web Key Set as served; only the public fields are decoded.
type JWKS struct {
	Keys []struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	} `json:"keys"`
}

// OpenIDConfiguration fetches and decodes /.well-known/openid-configuration.
func (d *Discovery) OpenIDConfiguration(ctx context.Context) (*OpenIDConfiguration, error) {
	var doc OpenIDConfiguration
	return &doc, getJSON(ctx, d.client, d.Issuer+"/.well-known/openid-configuration", &doc)
}

// JWKS fetches the key set the discovery document points at.
func (d *Discovery) JWKS(ctx context.Context) (*JWKS, error) {
	doc, err := d.OpenIDConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	var keys JWKS
	return &keys, getJSON(ctx, d.client, doc.JWKSURI, &keys)
}

// Get fetches a path below the issuer and returns the body.
func (d *Discovery) Get(ctx context.Context, path string) ([]byte, error) {
	return getBody(ctx, d.client, d.Issuer+path)
}

// HTTPClient trusts the Stack's CA; use it for the discovery server.
func (d *Discovery) HTTPClient() *http.Client { return d.client }

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	body, err := getBody(ctx, c, url)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

// Metric reads one unlabelled sample from the discovery server's /metrics.
func (d *Discovery) Metric(ctx context.Context, name string) (float64, error) {
	return metric(ctx, d.MetricsURL, name)
}

// Metric reads one unlabelled sample from the webhook's /metrics.
func (w *Webhook) Metric(ctx context.Context, name string) (float64, error) {
	return metric(ctx, w.MetricsURL, name)
}

// Restart stops the webhook (SIGTERM: a graceful shutdown) and starts it
// again, waiting for /readyz.
func (w *Webhook) Restart(ctx context.Context) error {
	if err := w.Process.Stop(); err != nil {
		return err
	}
	return w.Start(ctx)
}
