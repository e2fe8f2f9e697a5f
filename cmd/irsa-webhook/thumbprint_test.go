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
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
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

	_, err = execute(t, "thumbprint", srv.URL)
	if err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Errorf("untrusted chain: error %v does not point at --ca-file", err)
	}
}
