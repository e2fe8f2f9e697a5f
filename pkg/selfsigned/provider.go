package selfsigned

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// maxWriteAttempts bounds the read-decide-write rounds of one Sync; each
// lost round means another replica wrote, and the next read adopts that.
const maxWriteAttempts = 5

// retryAfterError is how soon Start tries again after a failed Sync.
const retryAfterError = 5 * time.Second

// Provider keeps the serving certificate, its Secret and the caBundle in
// step. It is a controller-runtime Runnable (Start) and a healthz checker
// (Ready); GetCertificate goes into the webhook server's tls.Config.
type Provider struct {
	client   kubernetes.Interface
	cfg      Config
	dnsNames []string
	ips      []net.IP
	now      func() time.Time
	log      logr.Logger

	// mu serialises Sync; current is read lock-free by GetCertificate.
	mu      sync.Mutex
	current atomic.Pointer[material]
}

// New returns a Provider for cfg. now is the clock (nil: time.Now).
func New(client kubernetes.Interface, cfg Config, log logr.Logger, now func() time.Time) *Provider {
	if now == nil {
		now = time.Now
	}
	return &Provider{client: client, cfg: cfg, dnsNames: cfg.DNSNames(), ips: cfg.IPAddresses(), now: now, log: log}
}

// GetCertificate serves the current certificate; there is none until the
// first Sync has succeeded.
func (p *Provider) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m := p.current.Load()
	if m == nil {
		return nil, errors.New("no self-signed serving certificate yet")
	}
	return m.cert, nil
}

// ConfigureTLS makes a server's TLS configuration serve GetCertificate
// (which a webhook.NewServer then prefers to its --cert-dir).
func (p *Provider) ConfigureTLS(c *tls.Config) { c.GetCertificate = p.GetCertificate }

// Ready reports whether a certificate is being served.
func (p *Provider) Ready(*http.Request) error {
	if p.current.Load() == nil {
		return fmt.Errorf("no serving certificate from secret %s/%s yet", p.cfg.SecretNamespace, p.cfg.SecretName)
	}
	return nil
}

// NeedLeaderElection is false: every replica serves, so every replica syncs.
func (p *Provider) NeedLeaderElection() bool { return false }

// Start syncs now and then every resync interval (sooner when the
// certificate falls due, and after a failure), until ctx ends.
func (p *Provider) Start(ctx context.Context) error {
	for {
		wait := p.cfg.ResyncInterval
		if err := p.Sync(ctx); err != nil {
			p.log.Error(err, "self-signed certificate sync failed", "secret", p.secretRef())
			wait = min(wait, retryAfterError)
		} else if due := p.current.Load().renewAt().Sub(p.now()); due < wait {
			wait = max(due, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Sync makes the Secret hold valid material that is not yet due for
// renewal (adopting another replica's, or writing new), makes the caBundle
// equal to its ca.crt, and then serves its certificate.
func (p *Provider) Sync(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	m, err := p.ensureSecret(ctx)
	if err != nil {
		return err
	}
	if err := p.ensureCABundle(ctx, m.caPEM); err != nil {
		return err
	}
	if old := p.current.Load(); old == nil || !bytes.Equal(old.certPEM, m.certPEM) {
		p.log.Info("serving self-signed certificate", "secret", p.secretRef(),
			"notAfter", m.leaf.NotAfter.UTC(), "renewAt", m.renewAt().UTC())
	}
	p.current.Store(m)
	return nil
}

func (p *Provider) ensureSecret(ctx context.Context) (*material, error) {
	secrets := p.client.CoreV1().Secrets(p.cfg.SecretNamespace)
	for range maxWriteAttempts {
		now := p.now()
		secret, err := secrets.Get(ctx, p.cfg.SecretName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			secret = nil
		case err != nil:
			return nil, fmt.Errorf("get secret %s: %w", p.secretRef(), err)
		}

		var data map[string][]byte
		if secret != nil {
			data = secret.Data
		}
		m, reason := parseMaterial(data, p.dnsNames, p.ips, now)
		if reason == nil && now.Before(m.renewAt()) {
			return m, nil
		}
		if reason == nil {
			reason = fmt.Errorf("renewal was due at %s", m.renewAt().UTC().Format(time.RFC3339))
		}

		// Keep the CAs still valid, from the Secret and from what this
		// replica serves, so servers of the older certificate stay trusted.
		keep := data[CAKey]
		if cur := p.current.Load(); cur != nil {
			keep = append(bytes.Clone(keep), cur.caPEM...)
		}
		fresh, err := generate(p.dnsNames, p.ips, p.cfg.Validity, now, keep)
		if err != nil {
			return nil, err
		}

		creating := secret == nil
		if creating {
			secret = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: p.cfg.SecretName, Namespace: p.cfg.SecretNamespace},
				Type:       corev1.SecretTypeOpaque,
				Data:       fresh.data(),
			}
			_, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
		} else {
			secret = secret.DeepCopy()
			secret.Data = fresh.data()
			_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		}
		switch {
		case err == nil:
			p.log.Info("wrote new self-signed CA and serving certificate", "secret", p.secretRef(), "reason", reason.Error())
			return fresh, nil
		case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
			// Another replica wrote first: read again and adopt its material.
			p.log.V(1).Info("secret changed under us, reading it again", "secret", p.secretRef())
			continue
		case apierrors.IsForbidden(err) && creating:
			return nil, fmt.Errorf("create secret %s: %w (create it empty first, as deploy/overlays/self-signed does, so no create permission is needed)", p.secretRef(), err)
		default:
			return nil, fmt.Errorf("write secret %s: %w", p.secretRef(), err)
		}
	}
	return nil, fmt.Errorf("write secret %s: it changed under us %d times in a row", p.secretRef(), maxWriteAttempts)
}

// ensureCABundle sets caBundle to want in every webhook of the
// configuration, if it is not already.
func (p *Provider) ensureCABundle(ctx context.Context, want []byte) error {
	hooks := p.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	name := p.cfg.WebhookConfigurationName
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		conf, err := hooks.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get mutatingwebhookconfiguration %s: %w", name, err)
		}
		if len(conf.Webhooks) == 0 {
			return fmt.Errorf("mutatingwebhookconfiguration %s has no webhooks to set the caBundle of", name)
		}
		changed := false
		for i := range conf.Webhooks {
			if !bytes.Equal(conf.Webhooks[i].ClientConfig.CABundle, want) {
				conf.Webhooks[i].ClientConfig.CABundle = want
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if _, err := hooks.Update(ctx, conf, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update caBundle of mutatingwebhookconfiguration %s: %w", name, err)
		}
		p.log.Info("updated caBundle", "mutatingWebhookConfiguration", name)
		return nil
	})
}

func (p *Provider) secretRef() string { return p.cfg.SecretNamespace + "/" + p.cfg.SecretName }
