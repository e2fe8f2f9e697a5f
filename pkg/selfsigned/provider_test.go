package selfsigned

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
)

const validity = 30 * 24 * time.Hour

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func testConfig() Config {
	cfg := *NewConfig()
	cfg.Enabled = true
	cfg.Validity = validity
	return cfg
}

func webhookConfiguration() *admissionregistrationv1.MutatingWebhookConfiguration {
	hook := func(name string) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name: name,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "irsa-system", Name: "irsa-webhook",
			}},
		}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "irsa-webhook", ResourceVersion: "1"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{hook("a.irsa-webhook.io"), hook("b.irsa-webhook.io")},
	}
}

func emptySecret() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "irsa-webhook-self-signed-tls", Namespace: "irsa-system", ResourceVersion: "1"},
		Type:       corev1.SecretTypeOpaque,
	}
}

// newClient is a fake API server that, like the real one, stamps a
// resourceVersion on every write and refuses an update carrying a stale one.
func newClient(objs ...runtime.Object) *fake.Clientset {
	c := fake.NewClientset(objs...)
	rv := 100
	c.PrependReactor("*", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		a, ok := action.(k8stesting.UpdateAction) // CreateAction has the same methods
		if !ok {
			return false, nil, nil
		}
		obj, err := meta.Accessor(a.GetObject())
		if err != nil {
			return true, nil, err
		}
		switch a.GetVerb() {
		case "create":
			rv++
			obj.SetResourceVersion(strconv.Itoa(rv))
		case "update":
			stored, err := c.Tracker().Get(a.GetResource(), a.GetNamespace(), obj.GetName())
			if err != nil {
				return false, nil, nil // the tracker answers NotFound
			}
			storedMeta, _ := meta.Accessor(stored)
			if obj.GetResourceVersion() != storedMeta.GetResourceVersion() {
				return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), obj.GetName(),
					errors.New("the object has been modified"))
			}
			rv++
			obj.SetResourceVersion(strconv.Itoa(rv))
		}
		return false, nil, nil
	})
	return c
}

func forbid(c *fake.Clientset, verb, resource string) {
	c.PrependReactor(verb, resource, func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(action.GetResource().GroupResource(), "", errors.New("RBAC: not allowed"))
	})
}

func getSecret(t *testing.T, c kubernetes.Interface) *corev1.Secret {
	t.Helper()
	s, err := c.CoreV1().Secrets("irsa-system").Get(context.Background(), "irsa-webhook-self-signed-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get secret: %v", err)
	}
	return s
}

func caBundles(t *testing.T, c kubernetes.Interface) [][]byte {
	t.Helper()
	conf, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), "irsa-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get webhook configuration: %v", err)
	}
	var out [][]byte
	for _, w := range conf.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

// served is the certificate p serves, as PEM.
func served(t *testing.T, p *Provider) []byte {
	t.Helper()
	c, err := p.GetCertificate(nil)
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
}

// verify checks that certPEM is trusted by caBundle for every Service name at now.
func verify(t *testing.T, certPEM, caBundle []byte, now time.Time) error {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("certificate is not PEM")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return errors.New("caBundle holds no certificate")
	}
	for _, name := range []string{"irsa-webhook.irsa-system.svc", "irsa-webhook.irsa-system.svc.cluster.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: now}); err != nil {
			return err
		}
	}
	return nil
}

func countCerts(bundle []byte) int {
	n := 0
	for {
		var block *pem.Block
		if block, bundle = pem.Decode(bundle); block == nil {
			return n
		}
		n++
	}
}

func TestSyncCreatesSecretAndServesTrustedCertificate(t *testing.T) {
	client := newClient(webhookConfiguration())
	p := New(client, testConfig(), logr.Discard(), nil)
	if _, err := p.GetCertificate(nil); err == nil {
		t.Fatal("GetCertificate before the first Sync: got a certificate, want an error")
	}
	if p.Ready(nil) == nil {
		t.Fatal("Ready before the first Sync = nil, want an error")
	}

	if err := p.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	secret := getSecret(t, client)
	for _, key := range []string{CAKey, CertKey, KeyKey} {
		if len(secret.Data[key]) == 0 {
			t.Errorf("secret has no %s", key)
		}
	}
	if got := countCerts(secret.Data[CAKey]); got != 1 {
		t.Errorf("ca.crt holds %d certificates, want 1", got)
	}
	if diff := cmp.Diff([][]byte{secret.Data[CAKey], secret.Data[CAKey]}, caBundles(t, client)); diff != "" {
		t.Errorf("caBundle of every webhook (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(secret.Data[CertKey], served(t, p)); diff != "" {
		t.Errorf("served certificate is not the Secret's (-want +got):\n%s", diff)
	}
	if err := p.Ready(nil); err != nil {
		t.Errorf("Ready after Sync: %v", err)
	}

	// A real TLS client that trusts only the caBundle accepts the server
	// under the Service's name, as the API server would.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: p.GetCertificate})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caBundles(t, client)[0])
	for _, name := range []string{"irsa-webhook.irsa-system.svc", "irsa-webhook.irsa-system.svc.cluster.local"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: name})
		if err != nil {
			t.Errorf("TLS handshake as %s: %v", name, err)
			continue
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "other.irsa-system.svc"}); err == nil {
		conn.Close()
		t.Error("TLS handshake as other.irsa-system.svc succeeded, want a name mismatch")
	}
}

func TestSyncFillsShippedEmptySecretWithoutCreate(t *testing.T) {
	client := newClient(webhookConfiguration(), emptySecret())
	forbid(client, "create", "secrets") // as in deploy/overlays/self-signed
	p := New(client, testConfig(), logr.Discard(), nil)
	if err := p.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	secret := getSecret(t, client)
	if err := verify(t, secret.Data[CertKey], caBundles(t, client)[0], time.Now()); err != nil {
		t.Errorf("certificate in the filled Secret is not trusted by the caBundle: %v", err)
	}
	if diff := cmp.Diff(secret.Data[CertKey], served(t, p)); diff != "" {
		t.Errorf("served certificate is not the Secret's (-want +got):\n%s", diff)
	}
}

func TestSyncWithoutSecretOrCreateRightSaysWhatToDo(t *testing.T) {
	client := newClient(webhookConfiguration())
	forbid(client, "create", "secrets")
	p := New(client, testConfig(), logr.Discard(), nil)
	err := p.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "create it empty first") || !strings.Contains(err.Error(), "irsa-system/irsa-webhook-self-signed-tls") {
		t.Fatalf("Sync error = %v, want one naming the Secret and saying to create it empty", err)
	}
	if diff := cmp.Diff([][]byte{nil, nil}, caBundles(t, client)); diff != "" {
		t.Errorf("caBundle changed although nothing was served (-want +got):\n%s", diff)
	}
	if _, err := p.GetCertificate(nil); err == nil {
		t.Error("GetCertificate after a failed Sync returned a certificate")
	}
}

func TestSyncReusesValidSecret(t *testing.T) {
	client := newClient(webhookConfiguration())
	first := New(client, testConfig(), logr.Discard(), nil)
	if err := first.Sync(context.Background()); err != nil {
		t.Fatalf("first replica Sync: %v", err)
	}
	before := getSecret(t, client)
	client.ClearActions()

	second := New(client, testConfig(), logr.Discard(), nil)
	if err := second.Sync(context.Background()); err != nil {
		t.Fatalf("second replica Sync: %v", err)
	}
	if err := first.Sync(context.Background()); err != nil {
		t.Fatalf("first replica Sync again: %v", err)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("unexpected %s %s: a valid Secret and caBundle need no write", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if diff := cmp.Diff(before.ResourceVersion, getSecret(t, client).ResourceVersion); diff != "" {
		t.Errorf("Secret was rewritten (-want +got resourceVersion):\n%s", diff)
	}
	if diff := cmp.Diff(served(t, first), served(t, second)); diff != "" {
		t.Errorf("replicas serve different certificates (-first +second):\n%s", diff)
	}
}

// racingClient makes the first Secret GET of each replica wait until both
// have read, so both decide from the same (empty) Secret and both write.
type racingClient struct {
	kubernetes.Interface
	race *race
}

type race struct {
	once    sync.Map // replica name → struct{}
	arrived sync.WaitGroup
	timeout time.Duration
}

func (c racingClient) CoreV1() corev1client.CoreV1Interface {
	return racingCore{CoreV1Interface: c.Interface.CoreV1(), race: c.race}
}

type racingCore struct {
	corev1client.CoreV1Interface
	race *race
}

func (c racingCore) Secrets(ns string) corev1client.SecretInterface {
	return racingSecrets{SecretInterface: c.CoreV1Interface.Secrets(ns), race: c.race}
}

type racingSecrets struct {
	corev1client.SecretInterface
	race *race
}

func (s racingSecrets) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error) {
	secret, err := s.SecretInterface.Get(ctx, name, opts)
	replica, _ := ctx.Value(replicaKey{}).(string)
	if _, done := s.race.once.LoadOrStore(replica, struct{}{}); !done {
		s.race.arrived.Done()
		waited := make(chan struct{})
		go func() { s.race.arrived.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(s.race.timeout):
			return nil, errors.New("the other replica never read the Secret")
		}
	}
	return secret, err
}

type replicaKey struct{}

func TestTwoReplicasRaceToFillTheSecret(t *testing.T) {
	for name, objs := range map[string][]runtime.Object{
		"secret shipped empty (update race)": {webhookConfiguration(), emptySecret()},
		"no secret (create race)":            {webhookConfiguration()},
	} {
		t.Run(name, func(t *testing.T) {
			client := newClient(objs...)
			r := &race{timeout: 10 * time.Second}
			r.arrived.Add(2)
			a := New(racingClient{client, r}, testConfig(), logr.Discard(), nil)
			b := New(racingClient{client, r}, testConfig(), logr.Discard(), nil)

			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, p := range []*Provider{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = p.Sync(context.WithValue(context.Background(), replicaKey{}, strconv.Itoa(i)))
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("Sync: %v", err)
			}

			writes := 0
			for _, act := range client.Actions() {
				if act.GetResource().Resource == "secrets" && (act.GetVerb() == "update" || act.GetVerb() == "create") {
					writes++
				}
			}
			if writes != 2 {
				t.Errorf("replicas wrote the Secret %d times, want 2 (both tried; one lost the race)", writes)
			}
			secret := getSecret(t, client)
			if diff := cmp.Diff(secret.Data[CertKey], served(t, a)); diff != "" {
				t.Errorf("replica a does not serve the Secret's certificate (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(secret.Data[CertKey], served(t, b)); diff != "" {
				t.Errorf("replica b does not serve the Secret's certificate (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([][]byte{secret.Data[CAKey], secret.Data[CAKey]}, caBundles(t, client)); diff != "" {
				t.Errorf("caBundle (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenewalAtTwoThirdsKeepsOldCertificateTrusted(t *testing.T) {
	start := time.Now()
	clk := &clock{t: start}
	client := newClient(webhookConfiguration(), emptySecret())
	p := New(client, testConfig(), logr.Discard(), clk.now)
	other := New(client, testConfig(), logr.Discard(), clk.now) // a replica that re-reads later
	ctx := context.Background()
	if err := errors.Join(p.Sync(ctx), other.Sync(ctx)); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	oldCert := served(t, p)

	// renewAt is 2/3 of the lifetime, counted from the backdated NotBefore.
	renewAt := start.Add(-backdate).Add((validity + backdate) * 2 / 3)
	clk.set(renewAt.Add(-time.Minute))
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("Sync before renewal: %v", err)
	}
	if diff := cmp.Diff(oldCert, served(t, p)); diff != "" {
		t.Errorf("certificate changed before 2/3 of its lifetime (-want +got):\n%s", diff)
	}

	clk.set(renewAt.Add(time.Minute))
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("Sync after renewal was due: %v", err)
	}
	newCert := served(t, p)
	if bytes.Equal(oldCert, newCert) {
		t.Fatal("certificate was not renewed at 2/3 of its lifetime")
	}
	secret := getSecret(t, client)
	if diff := cmp.Diff(secret.Data[CertKey], newCert); diff != "" {
		t.Errorf("renewed certificate is not in the Secret (-want +got):\n%s", diff)
	}
	if got := countCerts(secret.Data[CAKey]); got != 2 {
		t.Errorf("ca.crt holds %d certificates after renewal, want 2 (new and previous CA)", got)
	}
	bundle := caBundles(t, client)[0]
	if diff := cmp.Diff(secret.Data[CAKey], bundle); diff != "" {
		t.Errorf("caBundle after renewal (-want +got):\n%s", diff)
	}
	if err := verify(t, newCert, bundle, clk.now()); err != nil {
		t.Errorf("renewed certificate is not trusted by the caBundle: %v", err)
	}
	// The replica that has not re-read yet still serves the old certificate,
	// which the caBundle must still trust.
	if err := verify(t, served(t, other), bundle, clk.now()); err != nil {
		t.Errorf("old certificate, still served by the other replica, is not trusted: %v", err)
	}
	if err := other.Sync(ctx); err != nil {
		t.Fatalf("other replica Sync: %v", err)
	}
	if diff := cmp.Diff(newCert, served(t, other)); diff != "" {
		t.Errorf("other replica did not adopt the renewed certificate (-want +got):\n%s", diff)
	}
}

func TestSyncRestoresOverwrittenCABundle(t *testing.T) {
	client := newClient(webhookConfiguration(), emptySecret())
	p := New(client, testConfig(), logr.Discard(), nil)
	ctx := context.Background()
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	want := caBundles(t, client)

	// Someone re-applies the configuration with an empty caBundle in one
	// webhook and a stale one in the other.
	conf, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "irsa-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conf.Webhooks[0].ClientConfig.CABundle = nil
	conf.Webhooks[1].ClientConfig.CABundle = []byte("stale")
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, conf, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if diff := cmp.Diff(want, caBundles(t, client)); diff != "" {
		t.Errorf("caBundle not restored (-want +got):\n%s", diff)
	}
}

func TestSyncReplacesUnusableSecret(t *testing.T) {
	valid, err := generate([]string{"other.example.com"}, nil, validity, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := generate(NewConfig().DNSNames(), nil, validity, time.Now().Add(-2*validity), nil)
	if err != nil {
		t.Fatal(err)
	}
	mismatched := valid.data()
	mismatched[KeyKey] = expired.keyPEM
	tests := map[string]map[string][]byte{
		"garbage":             {CAKey: []byte("x"), CertKey: []byte("not pem"), KeyKey: []byte("nope")},
		"only a key":          {KeyKey: valid.keyPEM},
		"names another host":  valid.data(),
		"expired":             expired.data(),
		"key of another cert": mismatched,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			secret := emptySecret()
			secret.Data = data
			client := newClient(webhookConfiguration(), secret)
			p := New(client, testConfig(), logr.Discard(), nil)
			if err := p.Sync(context.Background()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			got := getSecret(t, client)
			if err := verify(t, got.Data[CertKey], caBundles(t, client)[0], time.Now()); err != nil {
				t.Errorf("replacement certificate not trusted: %v", err)
			}
			if diff := cmp.Diff(got.Data[CertKey], served(t, p)); diff != "" {
				t.Errorf("served certificate is not the Secret's (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForcedRotationKeepsServedCATrusted(t *testing.T) {
	client := newClient(webhookConfiguration(), emptySecret())
	p := New(client, testConfig(), logr.Discard(), nil)
	ctx := context.Background()
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	oldCert := served(t, p)

	// An admin forces a rotation by removing the Secret's data.
	secret := getSecret(t, client)
	secret.Data = nil
	if _, err := client.CoreV1().Secrets("irsa-system").Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("Sync after the data was removed: %v", err)
	}
	newCert := served(t, p)
	if bytes.Equal(oldCert, newCert) {
		t.Fatal("no new certificate after the Secret's data was removed")
	}
	bundle := caBundles(t, client)[0]
	for name, cert := range map[string][]byte{"new": newCert, "old": oldCert} {
		if err := verify(t, cert, bundle, time.Now()); err != nil {
			t.Errorf("%s certificate not trusted by the caBundle after a forced rotation: %v", name, err)
		}
	}
}

func TestSyncErrorsNameTheMissingWebhookConfiguration(t *testing.T) {
	client := newClient(emptySecret())
	p := New(client, testConfig(), logr.Discard(), nil)
	err := p.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "mutatingwebhookconfiguration irsa-webhook") || !apierrors.IsNotFound(err) {
		t.Fatalf("Sync error = %v, want a NotFound naming mutatingwebhookconfiguration irsa-webhook", err)
	}
	if _, err := p.GetCertificate(nil); err == nil {
		t.Error("a certificate is served although no caBundle trusts it")
	}
}

func TestSecretNeverHoldsTheCAKey(t *testing.T) {
	client := newClient(webhookConfiguration(), emptySecret())
	p := New(client, testConfig(), logr.Discard(), nil)
	if err := p.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	secret := getSecret(t, client)
	keys := 0
	for key, value := range secret.Data {
		for rest := value; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			if strings.Contains(block.Type, "PRIVATE KEY") {
				keys++
				if key != KeyKey {
					t.Errorf("private key in %s", key)
				}
			}
		}
	}
	if keys != 1 {
		t.Errorf("secret holds %d private keys, want 1 (the serving key only)", keys)
	}
}

func TestStartSyncsUntilCancelled(t *testing.T) {
	client := newClient(webhookConfiguration(), emptySecret())
	cfg := testConfig()
	cfg.ResyncInterval = 50 * time.Millisecond
	p := New(client, cfg, logr.Discard(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()

	// The loop restores a caBundle wiped after it started.
	deadline := time.Now().Add(10 * time.Second)
	for p.Ready(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("not ready within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	conf, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "irsa-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conf.Webhooks[0].ClientConfig.CABundle = nil
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, conf, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for len(caBundles(t, client)[0]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("caBundle not restored within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return within 10s of cancel")
	}
}
