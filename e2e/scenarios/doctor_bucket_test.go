package scenarios

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// doctor --bucket against MinIO's S3 after `discovery publish --once
// --from-apiserver`: the bucket's checks pass; the API server's signing key
// is then rotated without publishing, and doctor names the bucket's JWKS
// as the broken link (the token's kid is missing); publishing again fixes
// it. Doctor reads with the SDK's default credentials and writes nothing.
func TestDoctorChecksThePublishedBucket(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns, sa = "team-db", "app"
	const bucket, prefix = "oidc-doctor", "clusters/prod"
	annotatedServiceAccount(t, ctx, s, ns, sa, true)
	root := s.MinIO.RootS3()
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	issuer := s.Discovery.Issuer // the API server's --service-account-issuer
	env := append(s.MinIO.RootEnv(s.PKI.CAFile), "HOME="+t.TempDir())
	s3Flags := []string{"--endpoint-url", s.MinIO.Endpoint, "--path-style"}

	publish := func(t *testing.T) {
		t.Helper()
		args := append([]string{"discovery", "publish", "--once", "--from-apiserver", "--issuer", issuer,
			"--bucket", bucket, "--prefix", prefix, "--health-probe-bind-address", "0", "--metrics-bind-address", "0"}, s3Flags...)
		if res := s.RunCLIWithEnv(ctx, env, args...); res.Err != nil {
			t.Fatalf("discovery publish --once: %v\n%s", res.Err, res.Stderr)
		}
	}
	doctor := func(t *testing.T) (doctorReport, harness.ClientResult) {
		t.Helper()
		args := append([]string{"doctor", "-n", ns, "--service-account", sa, "--ca-file", s.PKI.CAFile, "-o", "json",
			"--issuer", issuer, "--bucket", bucket, "--bucket-prefix", prefix}, s3Flags...)
		res := s.RunCLIWithEnv(ctx, env, args...)
		var r doctorReport
		if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
			t.Fatalf("decode doctor report: %v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
		}
		return r, res
	}
	objects := func(t *testing.T) map[string]string {
		t.Helper()
		out, err := root.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, o := range out.Contents {
			m[aws.ToString(o.Key)] = aws.ToString(o.ETag)
		}
		return m
	}

	t.Run("published", func(t *testing.T) {
		publish(t)
		before := objects(t)
		r, res := doctor(t)
		if res.Err != nil || r.Failed != 0 {
			t.Fatalf("doctor after publishing: exit %v, failing %v\n%s", res.Err, r.failing(), res.Stdout)
		}
		for _, id := range []string{"bucket-document", "bucket-jwks", "bucket-token-signature", "jwks", "token-signature"} {
			if got := r.status(id); got != "PASS" {
				t.Errorf("check %s = %s, want PASS", id, got)
			}
		}
		for _, c := range r.Checks {
			if c.ID == "bucket-document" && !strings.Contains(c.Message, "byte for byte") {
				t.Errorf("bucket-document did not compare the published bytes with what discovery serve serves: %s", c.Message)
			}
		}
		if diff := objects(t); len(diff) != len(before) || len(before) != 3 {
			t.Errorf("bucket objects before doctor %v, after %v: doctor must write nothing", before, diff)
		} else {
			for k, etag := range before {
				if diff[k] != etag {
					t.Errorf("doctor changed s3://%s/%s", bucket, k)
				}
			}
		}
	})

	t.Run("key rotated without publishing", func(t *testing.T) {
		newKey, err := harness.NewSigningKey(filepath.Join(s.Dir, "pki"), "sa-signing-2")
		if err != nil {
			t.Fatal(err)
		}
		s.APIServer.SigningKey = newKey
		s.APIServer.VerifyKeys = []*harness.SigningKey{s.SigningKey, newKey}
		if err := s.APIServer.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		r, res := doctor(t)
		if res.Err == nil {
			t.Error("doctor exited 0 with the bucket's JWKS missing the signing key")
		}
		want := map[string]string{"bucket-document": "PASS", "bucket-jwks": "FAIL", "bucket-token-signature": "SKIP", "token-issuer": "PASS"}
		for id, status := range want {
			if got := r.status(id); got != status {
				t.Errorf("check %s = %s, want %s; failing %v\n%s", id, got, status, r.failing(), res.Stdout)
			}
		}
		for _, c := range r.Checks {
			if c.ID == "bucket-jwks" && (!strings.Contains(c.Message, "no key with the token's kid") || !strings.Contains(c.Fix, "discovery publish")) {
				t.Errorf("bucket-jwks should name the missing kid and say to publish: %s / %s", c.Message, c.Fix)
			}
		}

		publish(t)
		r, _ = doctor(t)
		for _, id := range []string{"bucket-document", "bucket-jwks", "bucket-token-signature"} {
			if got := r.status(id); got != "PASS" {
				t.Errorf("after publishing again, check %s = %s, want PASS; failing %v", id, got, r.failing())
			}
		}
	})
}
