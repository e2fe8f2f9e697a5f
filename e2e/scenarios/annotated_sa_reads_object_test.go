package scenarios

import (
	"testing"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// Scenario 1: an annotated ServiceAccount, a Pod created through the API
// server, the stored Pod carries the volume, mount and env, the unmodified
// SDK gets credentials from the STS and reads the object.
func TestScenario1AnnotatedServiceAccountReadsObject(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns, sa = "team-a", "reader"
	annotatedServiceAccount(t, ctx, s, ns, sa, true)

	stored := createPod(t, ctx, s, ns, harness.SimplePod("reader", sa))
	checkInjected(t, stored, "app")

	token, err := harness.RequestToken(ctx, s.APIServer.Client, stored)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := verifyLikeAWS(ctx, s, token, harness.DefaultAudience)
	if err != nil {
		t.Fatalf("token fails AWS's checks: %v", err)
	}
	if want := harness.PolicyName(ns, sa); idt.Subject != want {
		t.Errorf("token sub = %q, want %q", idt.Subject, want)
	}
	if idt.Issuer != s.Discovery.Issuer {
		t.Errorf("token iss = %q, want the discovery server's %q", idt.Issuer, s.Discovery.Issuer)
	}

	wantObject(t, runClientWithToken(t, ctx, s, stored, "app", token))
}
