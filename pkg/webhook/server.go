package webhook

import (
	"crypto/tls"
	"net/http"

	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// MutatePath is where the webhook answers AdmissionReviews.
const MutatePath = "/mutate"

// NewServer returns the HTTPS server that answers AdmissionReviews at
// MutatePath with handler. It reads tls.crt and tls.key from cfg.CertDir and
// reloads them when they change, unless one of tlsOpts sets GetCertificate.
// tlsOpts run after cfg's TLS settings. cfg must have passed Validate.
func NewServer(cfg *Config, handler admission.Handler, tlsOpts ...func(*tls.Config)) ctrlwebhook.Server {
	minVersion, _ := TLSVersion(cfg.TLSMinVersion)
	suites, _ := CipherSuites(cfg.TLSCipherSuites)
	srv := &httpsServer{
		host:    cfg.BindAddress,
		port:    cfg.Port,
		certDir: cfg.CertDir,
		tlsOpts: append([]func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = minVersion
			c.CipherSuites = suites
		}}, tlsOpts...),
		mux: http.NewServeMux(),
	}
	srv.Register(MutatePath, checkReview(&admission.Webhook{Handler: handler}))
	return srv
}
