package scenarios

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// doctorReport is the part of `irsa-webhook doctor -o json` the test reads.
type doctorReport struct {
	Checks []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Fix     string `json:"fix"`
	} `json:"checks"`
	Failed int `json:"failed"`
}

// runDoctor runs doctor for namespace/serviceAccount and decodes its report.
func runDoctor(t *testing.T, ctx context.Context, s *harness.Stack, namespace, serviceAccount string, extra ...string) (doctorReport, harness.ClientResult) {
	t.Helper()
	args := append([]string{"doctor", "-n", namespace, "--service-account", serviceAccount, "--ca-file", s.PKI.CAFile, "-o", "json"}, extra...)
	res := s.RunCLI(ctx, args...)
	var r doctorReport
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("decode doctor report: %v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
	}
	return r, res
}

func (r doctorReport) status(id string) string {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return "(missing)"
}

func (r doctorReport) failing() []string {
	var ids []string
	for _, c := range r.Checks {
		if c.Status == "FAIL" {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Scenario 8: doctor passes on the healthy stack, and names the broken link
// when the discovery server is down, when the issuer it is told differs from
// the tokens' iss, and when the ServiceAccount's annotation is malformed.
func TestScenario8Doctor(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns = "team-h"
	annotatedServiceAccount(t, ctx, s, ns, "app", true)
	if err := harness.CreateServiceAccount(ctx, s.APIServer.Client, ns, "broken",
		map[string]string{keys.Key(identity.RoleARN): "arn:aws:iam::12345:user/not-a-role"}); err != nil {
		t.Fatal(err)
	}

	t.Run("healthy", func(t *testing.T) {
		r, res := runDoctor(t, ctx, s, ns, "app", "--issuer", s.Discovery.Issuer)
		if res.Err != nil || r.Failed != 0 {
			t.Fatalf("doctor on a healthy stack: exit %v, failing checks %v\n%s", res.Err, r.failing(), res.Stdout)
		}
		for _, id := range []string{"role-arn", "webhook-configuration", "webhook-ca-bundle", "token-issuer", "discovery-document", "jwks", "token-signature"} {
			if got := r.status(id); got != "PASS" {
				t.Errorf("check %s = %s, want PASS", id, got)
			}
		}
	})

	t.Run("wrong issuer", func(t *testing.T) {
		r, res := runDoctor(t, ctx, s, ns, "app", "--issuer", "https://oidc.example.com/other-cluster")
		if res.Err == nil {
			t.Error("doctor exited 0 with a wrong issuer")
		}
		if got := r.status("token-issuer"); got != "FAIL" {
			t.Errorf("check token-issuer = %s, want FAIL; failing: %v", got, r.failing())
		}
	})

	t.Run("malformed annotation", func(t *testing.T) {
		r, res := runDoctor(t, ctx, s, ns, "broken", "--issuer", s.Discovery.Issuer)
		if res.Err == nil {
			t.Error("doctor exited 0 with a malformed role ARN")
		}
		if got := r.status("role-arn"); got != "FAIL" {
			t.Errorf("check role-arn = %s, want FAIL; failing: %v", got, r.failing())
		}
	})

	t.Run("discovery server stopped", func(t *testing.T) {
		if err := s.Discovery.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Discovery.Start(ctx); err != nil {
				t.Errorf("restart discovery: %v", err)
			}
		})
		r, res := runDoctor(t, ctx, s, ns, "app", "--issuer", s.Discovery.Issuer)
		if res.Err == nil {
			t.Error("doctor exited 0 with the discovery server down")
		}
		if got := r.status("discovery-document"); got != "FAIL" {
			t.Errorf("check discovery-document = %s, want FAIL; failing: %v", got, r.failing())
		}
		for _, id := range []string{"role-arn", "webhook-configuration", "token-issuer"} {
			if got := r.status(id); got != "PASS" {
				t.Errorf("check %s = %s, want PASS (only the discovery link is broken)", id, got)
			}
		}
	})
}
