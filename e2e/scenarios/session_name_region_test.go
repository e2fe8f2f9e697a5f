package scenarios

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// A ServiceAccount that asks for per-Pod session names and its own region:
// a Pod created from generateName gets AWS_ROLE_SESSION_NAME from the
// downward API and the ServiceAccount's region; the unmodified SDK sends
// the Pod's generated name as the RoleSessionName of its
// AssumeRoleWithWebIdentity call (seen by a recording proxy in front of
// MinIO's STS, which accepts it) and resolves the ServiceAccount's region.
func TestSessionNameIsThePodsNameAndRegionComesFromTheServiceAccount(t *testing.T) {
	s := harness.StartForTest(t, bins, harness.Options{})
	ctx := testContext(t)
	const ns, sa, region = "team-a", "reader", "eu-central-1"
	annotatedServiceAccount(t, ctx, s, ns, sa, true)
	saClient := s.APIServer.Client.CoreV1().ServiceAccounts(ns)
	got, err := saClient.Get(ctx, sa, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Annotations[identity.RoleSessionName] = identity.SessionNamePod
	got.Annotations[identity.Region] = region
	if _, err := saClient.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	pod := harness.SimplePod("", sa)
	pod.GenerateName = "reader-"
	stored := createPod(t, ctx, s, ns, pod)
	if !harness.HasTokenVolume(stored) {
		t.Fatal("stored pod has no token volume")
	}
	if !strings.HasPrefix(stored.Name, "reader-") {
		t.Fatalf("stored pod is named %q, want a name generated from reader-", stored.Name)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range stored.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	if e := env[mutate.EnvRoleSessionName]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("%s = %+v, want valueFrom fieldRef metadata.name", mutate.EnvRoleSessionName, e)
	}
	for _, name := range []string{mutate.EnvRegion, mutate.EnvDefaultRegion} {
		if env[name].Value != region {
			t.Errorf("%s = %q, want the ServiceAccount's %q", name, env[name].Value, region)
		}
	}

	proxy := newSTSRecorder(t, s)
	token, err := harness.RequestToken(ctx, s.APIServer.Client, stored)
	if err != nil {
		t.Fatal(err)
	}
	procEnv, err := s.ContainerEnv(stored, "app", token, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range procEnv {
		if strings.HasPrefix(e, "AWS_ENDPOINT_URL_STS=") {
			procEnv[i] = "AWS_ENDPOINT_URL_STS=" + proxy.url
		}
	}
	// MinIO's one region is not the ServiceAccount's, so S3 refuses the
	// read; the STS exchange and the SDK's region are what this proves.
	res := s.RunS3Get(ctx, procEnv, harness.Bucket, harness.ObjectKey)
	if !strings.Contains(res.Stderr, "source=WebIdentityCredentials region="+region) {
		t.Errorf("the SDK did not get web identity credentials in region %s; stderr:\n%s", region, res.Stderr)
	}
	if names := proxy.sessionNames(); len(names) == 0 || names[0] != stored.Name {
		t.Errorf("RoleSessionName sent to STS = %q, want the Pod's generated name %q", names, stored.Name)
	}
}

// stsRecorder is an HTTPS reverse proxy to MinIO that records the
// RoleSessionName of each STS call passing through.
type stsRecorder struct {
	url   string
	mu    sync.Mutex
	names []string
}

func newSTSRecorder(t *testing.T, s *harness.Stack) *stsRecorder {
	t.Helper()
	dir, err := s.PKI.ServingCert("sts-recorder")
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
	r := &stsRecorder{}
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
				r.mu.Lock()
				r.names = append(r.names, form.Get("RoleSessionName"))
				r.mu.Unlock()
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

func (r *stsRecorder) sessionNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}
