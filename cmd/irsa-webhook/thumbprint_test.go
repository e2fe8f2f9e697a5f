package main

import (
	"crypto/sha1" //nolint:gosec // the format under test
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestThumbprintCommand(t *testing.T) {
	// An issuer whose keys are on its own host, so one thumbprint.
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/openid/v1/jwks"})
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	// httptest presents its certificate alone: the thumbprint is that
	// certificate's.
	sum := sha1.Sum(srv.Certificate().Raw) //nolint:gosec
	want := hex.EncodeToString(sum[:])

	out, err := execute(t, "thumbprint", srv.URL, "--ca-file", caFile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want+"\n", out); diff != "" {
		t.Errorf("text output (-want +got):\n%s", diff)
	}

	out, err = execute(t, "thumbprint", srv.URL, "--ca-file", caFile, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Thumbprint string `json:"thumbprint"`
		Chain      []any  `json:"chain"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out)
	}
	if diff := cmp.Diff(want, res.Thumbprint); diff != "" {
		t.Errorf("json thumbprint (-want +got):\n%s", diff)
	}

	// AWS's procedure reads the discovery document by default: an issuer
	// without one is an error, unless --discovery=false asks for the host.
	bare := httptest.NewTLSServer(http.NotFoundHandler())
	defer bare.Close()
	bareCA := filepath.Join(t.TempDir(), "bare-ca.pem")
	if err := os.WriteFile(bareCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bare.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := execute(t, "thumbprint", bare.URL, "--ca-file", bareCA); err == nil || !strings.Contains(err.Error(), "/.well-known/openid-configuration") {
		t.Errorf("issuer without a discovery document: error %v does not name the document", err)
	}
	if _, err := execute(t, "thumbprint", bare.URL, "--ca-file", bareCA, "--discovery=false"); err != nil {
		t.Errorf("--discovery=false: %v", err)
	}

	_, err = execute(t, "thumbprint", srv.URL)
	if err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Errorf("untrusted chain: error %v does not point at --ca-file", err)
	}
}

// Every bad flag and the argument are reported at once, before anything is
// dialled.
func TestThumbprintCommandFlagErrors(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := execute(t, "thumbprint", "http://x", "--ca-file", notPEM, "-o", "yaml", "--timeout", "0s")
	if err == nil {
		t.Fatal("accepted bad flags")
	}
	want := []string{
		`URL argument: "http://x" is not an https URL; AWS only fetches discovery documents over https`,
		"--ca-file: " + notPEM + ": holds no PEM certificate",
		"--timeout: 0s must be positive",
		`--output: "yaml" is not text or json`,
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}
