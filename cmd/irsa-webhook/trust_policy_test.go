package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// execute runs the root command with args and returns its output.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestTrustPolicyCommand(t *testing.T) {
	tests := map[string]struct {
		args   []string
		golden string
	}{
		// The policy document is exactly what the package's golden test pins.
		"json": {args: []string{"--service-account", "app"}, golden: "../../pkg/awsiam/testdata/trust-policy-service-account.golden"},
		"text": {args: []string{"--service-account", "*", "-o", "text"}, golden: "testdata/trust-policy-text.golden"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := newRootCommand()
			var stdout bytes.Buffer
			root.SetOut(&stdout)
			root.SetErr(io.Discard) // the wildcard's warning
			root.SetArgs(append([]string{"trust-policy", "--account-id", "111122223333", "--issuer", "https://oidc.example.com/cluster-1",
				"--namespace", "team-a"}, tc.args...))
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if *updateReference && strings.HasPrefix(tc.golden, "testdata/") {
				if err := os.WriteFile(tc.golden, stdout.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(tc.golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), stdout.String()); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.golden, diff)
			}
		})
	}
}

func TestTrustPolicyCommandErrors(t *testing.T) {
	out, err := execute(t, "trust-policy", "--account-id", "42", "--namespace", "team-a", "-o", "yaml")
	if err == nil {
		t.Fatalf("accepted bad flags; printed:\n%s", out)
	}
	for _, want := range []string{"--account-id:", "--issuer: is required", "--service-account: is required", `--output: "yaml" is not json or text`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(out, "Statement") {
		t.Errorf("printed a policy despite the error:\n%s", out)
	}
}

func TestAdminCommandsHelp(t *testing.T) {
	for _, cmd := range []string{"trust-policy", "thumbprint", "doctor"} {
		t.Run(cmd, func(t *testing.T) {
			out, err := execute(t, cmd, "--help")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Examples:", "irsa-webhook " + cmd, "--output"} {
				if !strings.Contains(out, want) {
					t.Errorf("--help lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// The wildcard warning goes to stderr; stdout, redirected into the file
// given to aws iam create-role, is still exactly the policy.
func TestTrustPolicyCommandWarnsOnStderr(t *testing.T) {
	for sa, wantWarning := range map[string]bool{"*": true, "app": false} {
		t.Run(sa, func(t *testing.T) {
			root := newRootCommand()
			var stdout, stderr bytes.Buffer
			root.SetOut(&stdout)
			root.SetErr(&stderr)
			root.SetArgs([]string{"trust-policy", "--account-id", "111122223333", "--issuer", "https://oidc.example.com",
				"--namespace", "team-a", "--service-account", sa})
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(stderr.String(), "warning:") && strings.Contains(stderr.String(), "system:serviceaccount:team-a:*"); got != wantWarning {
				t.Errorf("--service-account %q: warned=%v, want %v; stderr:\n%s", sa, got, wantWarning, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "{") || strings.Contains(stdout.String(), "warning") {
				t.Errorf("stdout is not just the policy:\n%s", stdout.String())
			}
		})
	}
}
