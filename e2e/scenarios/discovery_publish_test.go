package scenarios

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
)

// A private cluster's issuer published to S3: `discovery publish --once`
// writes the documents `discovery export` renders, with their content
// types, into MinIO's S3 with the unmodified SDK; the long-running
// publisher follows a key rotation within its refresh interval, and a
// token signed with the new key verifies (go-oidc, by AWS's rules) against
// the documents as the bucket serves them, while one signed with a key
// never published does not.
func TestDiscoveryPublishToS3FollowsRotation(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const bucket, prefix = "oidc-publish", "clusters/prod"
	issuer := s.MinIO.Endpoint + "/" + bucket + "/" + prefix
	root := s.MinIO.RootS3()
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	// What S3 serving an issuer needs: anonymous read of the documents.
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/%s/*"]}]}`, bucket, prefix)
	if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	keyA, keyB, unpublished := newRSAKey(t), newRSAKey(t), newRSAKey(t)
	keyFile := filepath.Join(dir, "sa.pub")
	writePublicKeys(t, keyFile, keyA)
	args := []string{"discovery", "publish", "--issuer", issuer, "--key-file", keyFile, "--bucket", bucket, "--prefix", prefix,
		"--endpoint-url", s.MinIO.Endpoint, "--path-style", "--refresh-interval", "1s",
		"--health-probe-bind-address", "0", "--metrics-bind-address", "0"}
	env := append(s.MinIO.RootEnv(s.PKI.CAFile), "HOME="+dir)

	once := runBinary(ctx, s, env, append(args, "--once")...)
	if once.Err != nil {
		t.Fatalf("publish --once: %v\n%s", once.Err, once.Stderr)
	}
	exported := filepath.Join(dir, "export")
	if res := runBinary(ctx, s, nil, "discovery", "export", "--issuer", issuer, "--key-file", keyFile, "--out", exported); res.Err != nil {
		t.Fatalf("export: %v\n%s", res.Err, res.Stderr)
	}
	for path, ctype := range map[string]string{".well-known/openid-configuration": "application/json", "openid/v1/jwks": "application/jwk-set+json", "keys.json": "application/jwk-set+json"} {
		want, err := os.ReadFile(filepath.Join(exported, filepath.FromSlash(path)))
		if err != nil {
			t.Fatal(err)
		}
		got, gotType, cache := getObject(t, ctx, root, bucket, prefix+"/"+path)
		if got != string(want) || gotType != ctype || cache == "" {
			t.Errorf("%s: bucket holds %q (%s, cache %q), want export's bytes (%s)", path, got, gotType, cache, ctype)
		}
	}

	p := &harness.Process{Name: "discovery-publish", Path: s.Binaries.IrsaWebhook, Args: args, Env: env,
		LogPath: filepath.Join(s.LogDir, "discovery-publish.log")}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("publisher log:\n%s", p.LogTail(40))
		}
	})

	writePublicKeys(t, keyFile, keyA, keyB)
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, _, _ := getObject(t, ctx, root, bucket, prefix+"/openid/v1/jwks")
		var set jose.JSONWebKeySet
		if json.Unmarshal([]byte(body), &set) == nil && len(set.Keys) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bucket's JWKS did not gain the new key within 30s: %s", body)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}

	octx := oidc.ClientContext(ctx, s.MinIO.HTTPClient())
	provider, err := oidc.NewProvider(octx, issuer)
	if err != nil {
		t.Fatalf("discover %s from the bucket: %v", issuer, err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: harness.DefaultAudience, SupportedSigningAlgs: []string{oidc.RS256}})
	if _, err := verifier.Verify(octx, signToken(t, keyB, issuer)); err != nil {
		t.Errorf("a token signed with the rotated-in key does not verify against the bucket: %v", err)
	}
	if _, err := verifier.Verify(octx, signToken(t, unpublished, issuer)); err == nil {
		t.Error("a token signed with a key never published verifies against the bucket")
	}
}

func runBinary(ctx context.Context, s *harness.Stack, env []string, args ...string) harness.ClientResult {
	return s.RunCLIWithEnv(ctx, env, args...)
}

func getObject(t *testing.T, ctx context.Context, c *s3.Client, bucket, key string) (body, contentType, cacheControl string) {
	t.Helper()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", "", ""
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), aws.ToString(out.ContentType), aws.ToString(out.CacheControl)
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writePublicKeys replaces path with the PEM public keys, atomically, as a
// key rotation would.
func writePublicKeys(t *testing.T, path string, keys ...*rsa.PrivateKey) {
	t.Helper()
	var out []byte
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// signToken signs a service-account-shaped token for issuer with key, its
// kid derived the way the API server's (and so the JWKS's) is.
func signToken(t *testing.T, key *rsa.PrivateKey, issuer string) string {
	t.Helper()
	kid, err := discovery.KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: issuer, Subject: "system:serviceaccount:team-a:app", Audience: jwt.Audience{harness.DefaultAudience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
