package scenarios

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// Client authentication (serve --client-ca-file, --client-allowed-names):
// the API server presents its webhook client certificate through an
// AdmissionConfiguration and Pods are injected as ever; every other client
// of the webhook's port is refused in the TLS handshake, before any HTTP.
func TestClientAuthOnlyTheAPIServerGetsIn(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{WebhookClientAuth: true})
	ctx := testContext(t)
	const ns, sa = "team-a", "reader"
	annotatedServiceAccount(t, ctx, s, ns, sa, true)

	stored := createPod(t, ctx, s, ns, harness.SimplePod("reader", sa))
	checkInjected(t, stored, "app")

	// Readiness (which dials the webhook's own port) still passes.
	if err := s.Webhook.WaitReady(ctx); err != nil {
		t.Errorf("webhook readiness with client certificates required: %v", err)
	}

	cert := func(pki *harness.PKI, file, cn string) []tls.Certificate {
		t.Helper()
		certFile, keyFile, err := pki.ClientCert(file, cn)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{pair}
	}
	otherCA, err := harness.NewPKI(filepath.Join(t.TempDir(), "other-ca"))
	if err != nil {
		t.Fatal(err)
	}
	review, err := harness.PodReview(ns, harness.SimplePod("direct", sa))
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}

	// The right certificate, presented by hand, gets an answer: the
	// refusals below are the certificates', not the test's.
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		resp, err := postReview(s, v, body, cert(s.PKI, "direct-allowed", harness.WebhookClientName))
		if err != nil {
			t.Fatalf("TLS %x, allowed client certificate: %v", v, err)
		}
		got := &admissionv1.AdmissionReview{}
		if err := json.Unmarshal(resp, got); err != nil || got.Response == nil || !got.Response.Allowed || len(got.Response.Patch) == 0 {
			t.Errorf("TLS %x, allowed client certificate: want an allowing review with a patch, got %v: %.300s", v, err, resp)
		}
	}

	for name, certs := range map[string][]tls.Certificate{
		"no client certificate":               nil,
		"a certificate from another CA":       cert(otherCA, "intruder", harness.WebhookClientName),
		"the right CA, a name not allowed":    cert(s.PKI, "someone-else", "someone-else"),
		"the right CA, the API server's user": cert(s.PKI, "e2e-admin-direct", "e2e-admin"),
	} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			resp, err := postReview(s, v, body, certs)
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "remote error" {
				t.Errorf("%s, TLS %x: got answer %.200q, error %v; want a TLS alert from the webhook", name, v, resp, err)
			}
		}
	}
}

// postReview posts body to the webhook over a fresh connection of TLS
// version v with certs, and returns the answer's body.
func postReview(s *harness.Stack, v uint16, body []byte, certs []tls.Certificate) ([]byte, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.PKI.CertPool(), Certificates: certs, MinVersion: v, MaxVersion: v},
		DisableKeepAlives: true,
	}}
	resp, err := c.Post(s.Webhook.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("status %d", resp.StatusCode)
	}
	return b, nil
}
