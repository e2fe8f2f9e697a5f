package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
