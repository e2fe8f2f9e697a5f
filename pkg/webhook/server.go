package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/irsa-webhook/irsa-webhook/internal/admissionjson"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
)

// MutatePath is where the webhook answers AdmissionReviews.
const MutatePath = "/mutate"

// Limits bound what clients can hold of the webhook server; see
// serving.Limits.
type Limits = serving.Limits

// DefaultLimits are the limits NewServer uses.
func DefaultLimits() Limits { return serving.DefaultLimits() }

// Server is the webhook's HTTPS server: a serving.Server (limits,
// connection policy, body budget, drain) behind controller-runtime's
// webhook.Server interface, whose default implementation offers no read
// timeout, no connection bound and a 1 MiB header limit.
type Server struct {
	// Limits may be changed until Start.
	Limits Limits
	// Budget bounds the AdmissionReview bodies in flight; it may be
	// changed until Start.
	Budget *serving.Budget
	// Listener, when set before Start, is served instead of --port.
	Listener net.Listener
	// Metrics, when set before Start, count what the serving limits did
	// (budget refusals, evictions), as server "webhook".
	Metrics *serving.Metrics

	addr    string
	certDir string
	tls     serving.TLSOptions
	tlsOpts []func(*tls.Config)
	mux     *http.ServeMux

	current serving.Current
}

var _ ctrlwebhook.Server = (*Server)(nil)

// NewServer returns the HTTPS server that answers AdmissionReviews at
// MutatePath with handler (a *Handler). It reads tls.crt and tls.key from
// cfg.CertDir and reloads them when they change, unless one of tlsOpts
// sets GetCertificate. tlsOpts run after cfg's TLS settings. cfg must have
// passed Validate. The returned server is a *Server with DefaultLimits and
// a body budget of cfg.RequestBodyBudgetFraction of GOMEMLIMIT.
func NewServer(cfg *Config, handler http.Handler, tlsOpts ...func(*tls.Config)) ctrlwebhook.Server {
	s := &Server{
		Limits:  DefaultLimits(),
		Budget:  serving.NewBudget(serving.MemoryBudget(cfg.RequestBodyBudgetFraction), admissionjson.MaxRequestBytes, serving.DefaultBudgetWait),
		addr:    net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.Port)),
		certDir: cfg.CertDir,
		tls:     serving.TLSOptions{MinVersion: cfg.TLSMinVersion, CipherSuites: cfg.TLSCipherSuites},
		tlsOpts: tlsOpts,
		mux:     http.NewServeMux(),
	}
	s.Register(MutatePath, handler)
	return s
}

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// Register serves hook at path.
func (s *Server) Register(path string, hook http.Handler) { s.mux.Handle(path, hook) }

// WebhookMux returns the server's request multiplexer.
func (s *Server) WebhookMux() *http.ServeMux { return s.mux }

// Start serves until ctx ends, then stops accepting and lets the accepted
// connections finish, within Limits.ShutdownTimeout.
func (s *Server) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("webhook-server")
	cfg, err := serving.TLSConfig(s.tls, s.tlsOpts...)
	if err != nil {
		return fmt.Errorf("webhook server: %w", err)
	}
	if cfg.GetCertificate == nil {
		w, err := certwatcher.New(filepath.Join(s.certDir, "tls.crt"), filepath.Join(s.certDir, "tls.key"))
		if err != nil {
			return fmt.Errorf("webhook server: load serving certificate from %s: %w", s.certDir, err)
		}
		cfg.GetCertificate = w.GetCertificate
		go func() {
			if err := w.Start(ctx); err != nil {
				logger.Error(err, "certificate watcher stopped")
			}
		}()
	}
	srv := &serving.Server{
		Name:     "webhook",
		Addr:     s.addr,
		Listener: s.Listener,
		Handler:  s.mux,
		TLS:      cfg,
		Limits:   s.Limits,
		Budget:   s.Budget,
		Metrics:  s.Metrics,
	}
	s.current.Set(srv)
	return srv.Start(log.IntoContext(ctx, logger))
}

// StartedChecker is healthy once the server serves with a certificate. It
// does not dial the public port: clients may hold every slot of it.
func (s *Server) StartedChecker() healthz.Checker {
	return func(r *http.Request) error { return s.current.Ready("webhook", r) }
}

// ListenAddr is the address served, once started.
func (s *Server) ListenAddr() string { return s.current.ListenAddr() }
