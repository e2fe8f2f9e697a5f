package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// rotations is how many times the certificate is replaced; the second
// proves the file watch survives the first swap.
const rotations = 2

// TestCertificateRotationUnderLoad replaces the webhook's serving
// certificate and key on disk the way kubelet updates a mounted Secret that
// cert-manager renewed (a new directory, then one rename of the ..data
// symlink) while AdmissionReviews flow both straight to the webhook, a new
// TLS connection each, and through the API server. 0 requests fail, 0 TLS
// handshakes fail, and each new certificate is served within a bounded wait.
func TestCertificateRotationUnderLoad(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	c := s.APIServer.Client
	certs, err := harness.AtomicCertDir(s.WebhookCertDir)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "team-rotation"
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	for i := range cachedSAs {
		if err := harness.CreateServiceAccount(ctx, c, ns, fmt.Sprintf("cached-%d", i), map[string]string{roleKey: harness.ExampleRoleARN}); err != nil {
			t.Fatal(err)
		}
	}

	rc := s.ReviewClient(false)
	counts := newTally()
	stopLoad := runLoad(ctx, 4, func(ctx context.Context, w, seq int) {
		sa := fmt.Sprintf("cached-%d", seq%cachedSAs)
		if w == 0 {
			// Through the API server, as a dry run: its webhook client
			// keeps connections open and makes new ones as it needs.
			pod, err := c.CoreV1().Pods(ns).Create(ctx, appPod(fmt.Sprintf("api-%d", seq), sa), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			switch {
			case ctx.Err() != nil:
			case err != nil:
				counts.add("apiserver/error", err.Error())
			case !harness.HasTokenVolume(pod):
				counts.add("apiserver/not-injected", pod.Name)
			default:
				counts.add("apiserver/injected", "")
			}
			return
		}
		pod := appPod(fmt.Sprintf("p-%d-%d", w, seq), sa)
		res := rc.Send(ctx, ns, pod)
		if ctx.Err() != nil {
			return
		}
		if res.HandshakeErr != nil {
			counts.add("direct/handshake-error", res.HandshakeErr.Error())
		}
		v, why := harness.Judge(pod, ns, res, harness.ExampleRoleARN)
		counts.add("direct/"+string(v), why)
	})
	waitCounts(t, ctx, counts, 30, "direct/*", "apiserver/*")

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Webhook.Port))
	for round := 1; round <= rotations; round++ {
		files, cert, err := s.NewWebhookCert()
		if err != nil {
			t.Fatal(err)
		}
		direct, api := counts.sum("direct/*"), counts.sum("apiserver/*")
		if err := certs.Update(files); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := harness.WaitFor(ctx, 30*time.Second, "the webhook to serve the new certificate", func(ctx context.Context) error {
			got, err := s.ServedCertificate(ctx, addr)
			if err != nil {
				return err
			}
			if !bytes.Equal(got.Raw, cert.Raw) {
				return errors.New("still serving serial " + got.SerialNumber.Text(16))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("rotation %d: new certificate (serial %s) served after %s", round, cert.SerialNumber.Text(16), time.Since(start).Round(10*time.Millisecond))
		waitCounts(t, ctx, counts, direct+30, "direct/*")
		waitCounts(t, ctx, counts, api+30, "apiserver/*")
	}
	stopLoad()

	counts.log(t, "admission requests (path/verdict)")
	for _, k := range []string{"direct/handshake-error", "direct/" + string(harness.Broken), "direct/" + string(harness.AllowedBare), "direct/" + string(harness.DeniedLookup), "apiserver/error", "apiserver/not-injected"} {
		if n := counts.get(k); n > 0 {
			t.Errorf("%s: %d, want 0 across the certificate rotations", k, n)
		}
	}
	checkNoPanic(t, s.Webhook.Process)
}
