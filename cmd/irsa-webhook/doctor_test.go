package main

import (
	"strings"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/pkg/doctor"
)

func TestDoctorCommandValidates(t *testing.T) {
	// Bad flags are refused before any cluster is contacted.
	_, err := execute(t, "doctor", "--namespace", "Bad_NS", "--issuer", "http://x", "-o", "yaml")
	if err == nil {
		t.Fatal("accepted bad flags")
	}
	for _, want := range []string{"--namespace:", "--service-account: is required", "--issuer:", "--output:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestDoctorHelpListsEveryCheck holds --help to the check IDs a script
// filters on, including the --bucket ones.
func TestDoctorHelpListsEveryCheck(t *testing.T) {
	long := newDoctorCommand().Long
	for _, id := range []string{
		doctor.CheckServiceAccount, doctor.CheckRoleARN, doctor.CheckProfiles, doctor.CheckSessionName, doctor.CheckRolePolicy,
		doctor.CheckWebhookConfiguration, doctor.CheckWebhookCABundle, doctor.CheckTokenRequest, doctor.CheckTokenIssuer,
		doctor.CheckTokenLifetime, doctor.CheckDiscoveryDocument, doctor.CheckDiscoveryIssuer, doctor.CheckJWKS,
		doctor.CheckTokenSignature, doctor.CheckBucketDocument, doctor.CheckBucketJWKS, doctor.CheckBucketSignature,
	} {
		if !strings.Contains(long, "\n  "+id+" ") {
			t.Errorf("doctor --help does not list check %s", id)
		}
	}
}

func TestDoctorBucketFlagsNeedBucket(t *testing.T) {
	_, err := execute(t, "doctor", "-n", "team-a", "--service-account", "app", "--bucket-prefix", "prod", "--endpoint-url", "https://s3.example.com")
	for _, want := range []string{"--bucket-prefix: needs --bucket", "--endpoint-url: needs --bucket"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}
