package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
	"github.com/irsa-webhook/irsa-webhook/pkg/selfsigned"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
	"github.com/irsa-webhook/irsa-webhook/pkg/webhook"
)

// Bad client authentication flags are reported with the other bad flags,
// before anything starts.
func TestServeClientAuthFlagErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.crt")
	tests := map[string]struct {
		args []string
		want []string
	}{
		"missing CA file, and a bad port": {args: []string{"serve", "--client-ca-file", missing, "--port", "0"}, want: []string{
			"--port: 0 is not a port number (1-65535)",
			"--client-ca-file: open " + missing + ": no such file or directory",
		}},
		"no PEM certificate in the CA file": {args: []string{"serve", "--client-ca-file", notPEM}, want: []string{
			"--client-ca-file: " + notPEM + ": holds no PEM certificate",
		}},
		"allowed names without a CA file": {args: []string{"serve", "--client-allowed-names", "kube-apiserver-webhook-client"}, want: []string{
			"--client-allowed-names: needs --client-ca-file",
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

// TestServeStopsWhenCancelled runs the webhook as `serve` does, against an
// API server that refuses every connection (so its caches never sync and
// it never becomes ready), and cancels its context, as the first SIGTERM
// does: it must return, without an error, promptly. Serving real
// admissions is the e2e tier's (e2e/scenarios).
func TestServeStopsWhenCancelled(t *testing.T) {
	certDir, _ := selfSignedCertDir(t)
	cfg := webhook.NewConfig()
	cfg.Kubeconfig = writeKubeconfig(t, "https://127.0.0.1:1") // nothing listens on port 1
	cfg.CertDir = certDir
	// Port 0 is the kernel's choice of a free port, which the --port flag
	// does not accept; runServe is called past the flags for that.
	cfg.BindAddress, cfg.Port = "127.0.0.1", 0
	cfg.MetricsBindAddress, cfg.HealthProbeBindAddress = "0", "0"
	var logs lockedBuffer
	log, closeLogs := (&logOptions{format: "json", out: &logs}).setup()
	defer closeLogs()

	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), log))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, cfg, serving.NewClientAuthConfig(), selfsigned.NewConfig(), discovery.NewConfig())
	}()
	waitUntil(t, 30*time.Second, "serve to start", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve returned before it was cancelled: %v\n%s", err, logs.String())
		default:
		}
		return strings.Contains(logs.String(), `"starting irsa-webhook"`)
	})
	// The webhook server, once started, counts what its limits do on the
	// registry of /metrics.
	waitUntil(t, 30*time.Second, "the webhook server's counters", func() bool {
		return hasSeries(t, servingMetricNames[0], "server", "webhook")
	})
	for _, name := range servingMetricNames[1:] {
		if !hasSeries(t, name, "server", "webhook") {
			t.Errorf("controller-runtime's registry has no %s{server=\"webhook\"}", name)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after cancel:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve still running 15s after cancel:\n%s", logs.String())
	}
}
