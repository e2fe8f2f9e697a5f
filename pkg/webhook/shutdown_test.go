package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
)

// blockingServiceAccounts answers a lookup only once released, as a live
// GET to a slow API server would, and reports when one started. Like the
// real cache it fails when its context is cancelled, which is what a
// shutdown must not do to an admission in flight.
type blockingServiceAccounts struct {
	started chan struct{}
	release chan struct{}
}

func (b blockingServiceAccounts) Get(ctx context.Context, _, _ string) (metacache.Entry, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return metacache.Entry{Found: true, Annotations: map[string]string{"eks.amazonaws.com/role-arn": testARN}}, nil
	case <-ctx.Done():
		return metacache.Entry{}, fmt.Errorf("lookup: %w", ctx.Err())
	}
}

// TestServerShutdownFinishesAdmissionsInFlight: when the server's context
// ends (SIGTERM), it stops accepting connections at once, but an admission
// already in flight runs to completion with an uncancelled context and is
// answered with its patch, not denied.
func TestServerShutdownFinishesAdmissionsInFlight(t *testing.T) {
	ca, err := testcerts.NewCA("test-ca")
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
	cfg := NewConfig()
	cfg.BindAddress, cfg.CertDir = "127.0.0.1", dir
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sas := blockingServiceAccounts{started: make(chan struct{}, 1), release: make(chan struct{})}
	srv := NewServer(cfg, &Handler{Defaults: cfg.Defaults(), ServiceAccounts: sas})
	ln := listen(t)
	srv.(*Server).Listener = ln
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Start(ctx) }()
	eventually(t, 10*time.Second, func() error { return srv.StartedChecker()(nil) })

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	type answer struct {
		review *admissionv1.AdmissionReview
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := client.Post("https://"+addr+MutatePath, "application/json", bytes.NewReader(reviewBody(t, "in-flight", []byte(plainPod))))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		review := &admissionv1.AdmissionReview{}
		if err := json.Unmarshal(body, review); err != nil || review.Response == nil {
			answered <- answer{err: fmt.Errorf("not an AdmissionReview (%v): %s", err, body)}
			return
		}
		answered <- answer{review: review}
	}()
	<-sas.started
	cancel()
	eventually(t, 10*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("%s still accepts connections after shutdown began", addr)
		}
		return nil
	})
	close(sas.release)

	a := <-answered
	if a.err != nil {
		t.Fatalf("admission in flight at shutdown failed: %v", a.err)
	}
	if r := a.review.Response; !r.Allowed || len(r.Patch) == 0 {
		t.Errorf("admission in flight at shutdown: allowed=%v patch=%d bytes result=%v, want allowed with a patch", r.Allowed, len(r.Patch), r.Result)
	}
	if err := <-stopped; err != nil {
		t.Errorf("server stopped with %v", err)
	}
}
