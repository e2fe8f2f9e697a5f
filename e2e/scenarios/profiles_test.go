package scenarios

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// One Pod, two roles: a ServiceAccount whose role-arn reads the test bucket
// grants a writer profile for an uploads bucket. The unmodified SDK in the
// Pod's default container reads with the default role and is refused a
// write; the container that asked for the writer profile
// (irsa-webhook.io/container-profiles) writes the uploads bucket through the
// shared config file the kubelet projects from the Pod's annotation, and is
// refused the read; the default container picks the profile in code and
// writes too.
//
// MinIO decides access by the token's sub claim, not by role, so an IAM
// stand-in in front of its STS plays the part of each role's permissions:
// it refuses roles it does not know and hands MinIO each known role's
// permissions as the session policy of the AssumeRoleWithWebIdentity call,
// which MinIO intersects with the ServiceAccount's policy.
func TestProfilesGiveOnePodTwoRoles(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const (
		ns, sa     = "team-a", "reports"
		uploads    = "irsa-e2e-uploads"
		readerRole = "arn:aws:iam::111122223333:role/e2e-reports-reader"
		writerRole = "arn:aws:iam::111122223333:role/e2e-uploads-writer"
	)
	c := s.APIServer.Client
	if err := harness.EnsureNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateServiceAccount(ctx, c, ns, sa, map[string]string{
		keys.Key(identity.RoleARN): readerRole,
		identity.Profiles:          "writer=" + writerRole,
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.MinIO.PutObject(ctx, uploads, "README", "uploads land here"); err != nil {
		t.Fatal(err)
	}
	readBucket := statement("s3:GetObject", harness.Bucket)
	writeUploads := statement("s3:PutObject", uploads)
	if err := s.MinIO.SetPolicy(ctx, harness.PolicyName(ns, sa), policy(t, readBucket, writeUploads)); err != nil {
		t.Fatal(err)
	}
	iam := newIAMStandIn(t, s, map[string][]byte{readerRole: policy(t, readBucket), writerRole: policy(t, writeUploads)})

	pod := harness.SimplePod("", sa)
	pod.GenerateName = "reports-"
	pod.Annotations = map[string]string{identity.ContainerProfiles: "uploader=writer"}
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "uploader", Image: "registry.example/uploader:1"})
	stored := createPod(t, ctx, s, ns, pod)
	config := stored.Annotations[identity.AWSConfig]
	if !strings.Contains(config, "[default]\nrole_arn = "+readerRole) || !strings.Contains(config, "[profile writer]\nrole_arn = "+writerRole) {
		t.Fatalf("stored pod's %s annotation does not hold both roles:\n%s", identity.AWSConfig, config)
	}
	if profile := envValue(stored.Spec.Containers[1], mutate.EnvProfile); profile != "writer" {
		t.Fatalf("uploader's %s = %q, want writer", mutate.EnvProfile, profile)
	}

	token, err := harness.RequestToken(ctx, c, stored)
	if err != nil {
		t.Fatal(err)
	}
	env := func(container string, extra ...string) []string {
		t.Helper()
		e, err := s.ContainerEnv(stored, container, token, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range e {
			if strings.HasPrefix(v, "AWS_ENDPOINT_URL_STS=") {
				e[i] = "AWS_ENDPOINT_URL_STS=" + iam.url
			}
		}
		return append(e, extra...)
	}

	// The default container: the default role reads, and may not write.
	app := env("app")
	if res := s.RunS3Get(ctx, app, harness.Bucket, harness.ObjectKey); res.Err != nil || res.Stdout != harness.ObjectContent {
		t.Fatalf("default role read: %v, stdout %q, stderr:\n%s", res.Err, res.Stdout, res.Stderr)
	}
	if res := s.RunS3Put(ctx, app, uploads, "from-default.txt", "x"); res.Err == nil || !strings.Contains(res.Stderr, "AccessDenied") {
		t.Errorf("default role write: %v, want AccessDenied; stderr:\n%s", res.Err, res.Stderr)
	}
	// The uploader container: the writer profile writes, and may not read.
	uploader := env("uploader")
	if res := s.RunS3Put(ctx, uploader, uploads, "report.csv", "day,total\n"); res.Err != nil {
		t.Fatalf("writer profile write: %v, stderr:\n%s", res.Err, res.Stderr)
	}
	if res := s.RunS3Get(ctx, uploader, harness.Bucket, harness.ObjectKey); res.Err == nil || !strings.Contains(res.Stderr, "AccessDenied") {
		t.Errorf("writer profile read: %v, want AccessDenied; stdout %q, stderr:\n%s", res.Err, res.Stdout, res.Stderr)
	}
	// The default container picks the profile in code.
	if res := s.RunS3PutWithProfile(ctx, app, "writer", uploads, "picked.txt", "y"); res.Err != nil {
		t.Errorf("writer profile picked in code by the app: %v, stderr:\n%s", res.Err, res.Stderr)
	}
	// AWS_PROFILE in the environment does not switch roles while
	// AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are set: the SDK prefers
	// them, which is why container-profiles leaves them out.
	if res := s.RunS3Put(ctx, env("app", mutate.EnvProfile+"=writer"), uploads, "env.txt", "z"); res.Err == nil || !strings.Contains(res.Stderr, "AccessDenied") {
		t.Errorf("AWS_PROFILE beside AWS_ROLE_ARN: %v, want the default role's AccessDenied; stderr:\n%s", res.Err, res.Stderr)
	}

	// Each profile assumed its own role.
	roles := iam.roles()
	for _, want := range []string{readerRole, writerRole} {
		if !strings.Contains(strings.Join(roles, " "), want) {
			t.Errorf("roles assumed %q, want %s among them", roles, want)
		}
	}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func statement(action, bucket string) map[string]any {
	return map[string]any{"Effect": "Allow", "Action": []string{action}, "Resource": []string{"arn:aws:s3:::" + bucket + "/*"}}
}

func policy(t *testing.T, statements ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// iamStandIn is an HTTPS reverse proxy to MinIO's STS that plays IAM for
// the roles it knows: AssumeRoleWithWebIdentity for another role is refused
// as AWS refuses it, and for a known one goes to MinIO with the role's
// permissions as its session policy.
type iamStandIn struct {
	url      string
	mu       sync.Mutex
	assumed  []string
	policies map[string][]byte
}

func newIAMStandIn(t *testing.T, s *harness.Stack, policies map[string][]byte) *iamStandIn {
	t.Helper()
	dir, err := s.PKI.ServingCert("iam-stand-in")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(s.MinIO.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	r := &iamStandIn{policies: policies}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.PKI.CertPool()}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "AssumeRoleWithWebIdentity" {
				role := form.Get("RoleArn")
				doc, ok := r.policies[role]
				if !ok {
					w.Header().Set("Content-Type", "text/xml")
					w.WriteHeader(http.StatusForbidden)
					_, _ = io.WriteString(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error><RequestId>e2e</RequestId></ErrorResponse>`)
					return
				}
				r.mu.Lock()
				r.assumed = append(r.assumed, role)
				r.mu.Unlock()
				form.Set("Policy", string(doc))
				body = []byte(form.Encode())
				req.ContentLength = int64(len(body))
				req.Header.Set("Content-Length", strconv.Itoa(len(body)))
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			rp.ServeHTTP(w, req)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	r.url = "https://" + ln.Addr().String()
	return r
}

func (r *iamStandIn) roles() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.assumed...)
}
