package faults

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// TestLogsHoldNoSecrets runs the webhook and the discovery server at
// verbosity 5, the discovery server reading the signing key's private PEM
// (it uses only the public half), and pushes tokens through every path
// that could echo them: a token in a Pod's env and annotations through the
// API server, a token as bad annotation values in a review sent straight to
// the webhook, a token in an undecodable review, and the full STS exchange.
// Then neither process's log, nor any document the discovery server
// serves, holds the bytes of any token, of the signing key (PEM, base64
// body, DER, the private exponent as a JWK would carry it) or of a
// serving or client key.
func TestLogsHoldNoSecrets(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{WebhookArgs: []string{"--v=5"}, DiscoveryArgs: []string{"--v=5"}})
	ctx := testContext(t)
	s.Discovery.Configure(harness.DiscoverySource{KeyFiles: []string{s.SigningKey.PrivateFile}, ExtraArgs: []string{"--v=5"}})
	if err := s.Discovery.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.APIServer.Client
	const ns, sa = "team-secrets", "app"
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateServiceAccount(ctx, c, ns, sa, map[string]string{roleKey: harness.ExampleRoleARN}); err != nil {
		t.Fatal(err)
	}
	if err := s.MinIO.AllowServiceAccount(ctx, ns, sa, harness.Bucket); err != nil {
		t.Fatal(err)
	}

	var tokens []string
	first, err := c.CoreV1().Pods(ns).Create(ctx, appPod("first", sa), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token, err := harness.RequestToken(ctx, c, first)
	if err != nil {
		t.Fatal(err)
	}
	tokens = append(tokens, token)
	env, err := s.ContainerEnv(first, "app", token, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if res := s.RunS3Get(ctx, env, harness.Bucket, harness.ObjectKey); res.Err != nil || res.Stdout != harness.ObjectContent {
		t.Fatalf("s3get with the pod's token: err=%v stdout=%q stderr:\n%s", res.Err, res.Stdout, res.Stderr)
	}

	// The token inside Pod bodies the webhook decodes and answers.
	carrier := appPod("carrier", sa)
	carrier.Annotations = map[string]string{"example.com/token": token}
	carrier.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LEAKED_TOKEN", Value: token}}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, carrier, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc := s.ReviewClient(true)
	bad := appPod("bad-values", sa)
	bad.Annotations = map[string]string{
		keys.Key(identity.TokenExpiration): token,
		keys.Key(identity.SkipContainers):  token,
	}
	if res := rc.Send(ctx, ns, bad); res.Err != nil {
		t.Fatal(res.Err)
	}
	other, err := harness.RequestTokenFor(ctx, c, ns, sa, "not-"+s.Audience, 600)
	if err != nil {
		t.Fatal(err)
	}
	tokens = append(tokens, other)
	postRaw(t, ctx, rc, fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":{"metadata":{"name":%q`, other))

	secrets := map[string][]byte{}
	for i, tok := range tokens {
		secrets[fmt.Sprintf("token %d", i+1)] = []byte(tok)
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			secrets[fmt.Sprintf("token %d signature", i+1)] = []byte(parts[2])
		}
	}
	addKeyFile(t, secrets, "signing key", s.SigningKey.PrivateFile)
	secrets["signing key private exponent (JWK d)"] = []byte(base64.RawURLEncoding.EncodeToString(s.SigningKey.Key.D.Bytes()))
	addKeyFile(t, secrets, "webhook serving key", filepath.Join(s.WebhookCertDir, "tls.key"))
	addKeyFile(t, secrets, "discovery serving key", filepath.Join(s.PKI.Dir, "discovery", "tls.key"))
	addKeyFile(t, secrets, "webhook client key", filepath.Join(s.PKI.Dir, "clients", "irsa-webhook.key"))
	addKeyFile(t, secrets, "discovery client key", filepath.Join(s.PKI.Dir, "clients", "irsa-webhook-discovery.key"))

	// The webhook writes its log at least once a second, off the requests'
	// path: wait for the decisions of this traffic to be written.
	if err := harness.WaitFor(ctx, 30*time.Second, "the webhook's decisions in its log", func(context.Context) error {
		data, err := os.ReadFile(s.Webhook.Process.LogPath)
		if err != nil {
			return err
		}
		for _, pod := range []string{"carrier", "bad-values"} {
			if !bytes.Contains(data, []byte(`"pod":"`+pod+`"`)) {
				return fmt.Errorf("no decision for pod %s yet", pod)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("%v; is the webhook logging at all?", err)
	}

	outputs := map[string][]byte{}
	for _, p := range []*harness.Process{s.Webhook.Process, s.Discovery.Process} {
		data, err := os.ReadFile(p.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		outputs[p.Name+" log"] = data
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/openid/v1/jwks", "/keys.json"} {
		body, err := s.Discovery.Get(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		outputs["discovery "+path] = body
	}
	for out, data := range outputs {
		for name, secret := range secrets {
			if bytes.Contains(data, secret) {
				t.Errorf("%s contains the %s", out, name)
			}
		}
	}
	t.Logf("checked %d outputs (%d bytes) for %d secrets", len(outputs), total(outputs), len(secrets))
}

// addKeyFile adds a private key file's PEM, each line of its base64 body,
// the whole body unwrapped, and its DER.
func addKeyFile(t *testing.T, secrets map[string][]byte, name, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s (%s) is not PEM", name, path)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Fatalf("%s (%s) is not a PKCS#8 private key: %v", name, path, err)
	}
	secrets[name+" PEM"] = data
	secrets[name+" DER"] = block.Bytes
	secrets[name+" base64 body"] = []byte(base64.StdEncoding.EncodeToString(block.Bytes))
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, "-----") {
			continue
		}
		secrets[fmt.Sprintf("%s base64 line %d", name, i)] = []byte(line)
	}
}

// postRaw sends a body that is not a valid AdmissionReview; only the
// webhook's handling of it (and its log) matters here.
func postRaw(t *testing.T, ctx context.Context, rc *harness.ReviewClient, body string) {
	t.Helper()
	req, err := newJSONRequest(ctx, rc.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Client.Do(req)
	if err != nil {
		t.Fatalf("post undecodable review: %v", err)
	}
	resp.Body.Close()
}

func total(m map[string][]byte) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
