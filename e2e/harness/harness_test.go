package harness

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestServingCertVerifiesForLoopback(t *testing.T) {
	p, err := NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := p.ServingCert("server")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.CertPool(), DNSName: host}); err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: x509.NewCertPool(), DNSName: "127.0.0.1"}); err == nil {
		t.Error("serving certificate verifies without the CA")
	}
}

func TestProcessStopStartRestart(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	p := &Process{Name: "sleeper", Path: sleep, Args: []string{"600"}, LogPath: filepath.Join(t.TempDir(), "log")}
	t.Cleanup(func() { _ = p.Kill() })
	if p.Running() {
		t.Fatal("running before Start")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Start: err = %v, want already running", err)
	}
	if !p.Running() {
		t.Fatal("not running after Start")
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if !p.Running() {
		t.Fatal("not running after Restart")
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("running after Stop")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := p.exitErr(); err == nil {
		t.Error("exitErr is nil after Stop")
	}
	log, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(log), ": starting "); got != 2 {
		t.Errorf("log has %d start markers, want 2:\n%s", got, log)
	}
}

func TestBinDir(t *testing.T) {
	t.Setenv("IRSA_E2E_BIN_DIR", "/somewhere/bin")
	if got, _ := BinDir(); got != "/somewhere/bin" {
		t.Errorf("BinDir with IRSA_E2E_BIN_DIR = %q", got)
	}
	t.Setenv("IRSA_E2E_BIN_DIR", "")
	t.Setenv("XDG_CACHE_HOME", "/cache")
	if got, _ := BinDir(); got != filepath.Join("/cache", "irsa-webhook", "bin") {
		t.Errorf("BinDir with XDG_CACHE_HOME = %q", got)
	}
}
