package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
	"github.com/irsa-webhook/irsa-webhook/pkg/webhook"
)

func newDiscoveryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "discovery",
		Short: "Serve or export the OIDC discovery documents AWS IAM reads",
		Long: `AWS IAM verifies a service account token by fetching, over public HTTPS,
<issuer>/.well-known/openid-configuration and then its jwks_uri. These
commands serve those two documents (discovery serve) or write them for static
hosting (discovery export), from the cluster's signing keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDiscoveryServeCommand(), newDiscoveryExportCommand(), newDiscoveryPublishCommand())
	return cmd
}

func newDiscoveryServeCommand() *cobra.Command {
	cfg := discovery.NewConfig()
	logs := &logOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the issuer's OIDC discovery documents over HTTPS",
		Long: `Serve <issuer path>/.well-known/openid-configuration, <issuer path>/openid/v1/jwks
and <issuer path>/keys.json for AWS IAM, with the keys from exactly one source:
--key-file (PEM files, watched and reloaded) or --from-apiserver (the API
server's own discovery endpoints, refreshed every --refresh-interval; needs
the system:service-account-issuer-discovery ClusterRole, not anonymous access)
or --from-spiffe (a SPIFFE trust domain's JWT bundle from the SPIRE agent's
Workload API, following its rotations; --issuer must then equal the SPIRE
server's jwt_issuer).
The last good documents are served through a source outage; /readyz fails
until keys are loaded and when they are older than 3 refresh intervals.`,
		Example: `  # Keys read from the API server, HTTPS with a certificate from a Secret:
  irsa-webhook discovery serve --issuer https://oidc.example.com/prod \
    --from-apiserver --cert-dir /etc/irsa-webhook/tls

  # Behind an Ingress that terminates TLS, with the old and new signing key:
  irsa-webhook discovery serve --issuer https://oidc.example.com/prod --insecure-http \
    --key-file /keys/sa-old.pub --key-file /keys/sa-new.pub

  # A SPIRE trust domain's JWT-SVID keys (jwt_issuer = "https://oidc.example.com/spire"):
  irsa-webhook discovery serve --issuer https://oidc.example.com/spire --from-spiffe \
    --workload-api-addr unix:///run/spire/sockets/agent.sock --spiffe-trust-domain example.org`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return logs.run(cmd, cfg.Validate(), "", func(ctx context.Context) error {
				return runDiscoveryServe(ctx, cfg)
			})
		},
	}
	cfg.AddFlags(cmd.Flags())
	logs.addFlags(cmd.Flags())
	return cmd
}

func runDiscoveryServe(ctx context.Context, cfg *discovery.Config) error {
	log := logr.FromContextOrDiscard(ctx)
	if limit := holdMemoryLimit(os.LookupEnv); limit != math.MaxInt64 {
		log.Info("memory limit", "bytes", limit)
	}
	metrics := discovery.NewMetrics(ctrlmetrics.Registry)
	pub, source, err := discovery.NewServedPublisher(cfg, metrics, sourceClients(cfg.Kubeconfig))
	if err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	main := &discovery.Server{
		Name:     "discovery",
		Addr:     net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.Port)),
		Listener: testListenersFrom(ctx).main,
		Handler:  discovery.NewHandler(pub, metrics),
		Metrics:  serving.NewMetrics(ctrlmetrics.Registry),
	}
	if !cfg.InsecureHTTP {
		cw, err := certwatcher.New(filepath.Join(cfg.CertDir, "tls.crt"), filepath.Join(cfg.CertDir, "tls.key"))
		if err != nil {
			return fmt.Errorf("load serving certificate from --cert-dir %s: %w", cfg.CertDir, err)
		}
		if main.TLS, err = discovery.TLSConfig("", nil, cw.GetCertificate); err != nil {
			return err
		}
		g.Go(func() error { return cw.Start(ctx) })
	}
	if err := startProbes(ctx, g, cfg.HealthProbeBindAddress, cfg.MetricsBindAddress, discovery.HealthHandler(pub, nil)); err != nil {
		return err
	}
	g.Go(func() error { return runKeySource(ctx, source) })
	g.Go(func() error { return main.Start(ctx) })

	log.Info("starting discovery server", "issuer", cfg.Issuer, "jwksURI", cfg.EffectiveJWKSURI(),
		"fromAPIServer", cfg.FromAPIServer, "fromSPIFFE", cfg.FromSPIFFE, "keyFiles", cfg.KeyFiles, "insecureHTTP", cfg.InsecureHTTP)
	return g.Wait()
}

// startProbes runs, in g, what every long-running command that is not
// `serve` (whose manager has its own) has beside its work: the health
// server, serving health, unless healthAddr is "0", and the metrics server
// of controller-runtime's registry, the one every command's metrics are
// in, unless metricsAddr is "0".
func startProbes(ctx context.Context, g *errgroup.Group, healthAddr, metricsAddr string, health http.Handler) error {
	ls := testListenersFrom(ctx)
	if healthAddr != "0" {
		srv := &discovery.Server{Name: "health", Addr: healthAddr, Listener: ls.health, Handler: health, Metrics: serving.NewMetrics(ctrlmetrics.Registry)}
		g.Go(func() error { return srv.Start(ctx) })
	}
	ms, err := metricsserver.NewServer(metricsserver.Options{BindAddress: metricsAddr}, nil, nil)
	if err != nil {
		return fmt.Errorf("metrics server: %w", err)
	}
	if ms != nil { // nil when the address is "0"
		g.Go(func() error { return ms.Start(ctx) })
		if ls.metricsAddr != nil {
			g.Go(func() error { reportBindAddr(ctx, ms, ls.metricsAddr); return nil })
		}
	}
	return nil
}

// reportBindAddr sends the address ms bound once it has (for tests, see
// testListeners.metricsAddr).
func reportBindAddr(ctx context.Context, ms metricsserver.Server, to chan<- string) {
	bound, ok := ms.(interface{ GetBindAddr() string })
	if !ok {
		return
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if addr := bound.GetBindAddr(); addr != "" {
			select {
			case to <- addr:
			case <-ctx.Done():
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runKeySource keeps a discovery key source current until ctx ends.
func runKeySource(ctx context.Context, source discovery.Source) error {
	if err := source.Run(ctx); err != nil {
		return fmt.Errorf("key source: %w", err)
	}
	return nil
}

func newDiscoveryExportCommand() *cobra.Command {
	cfg := discovery.NewExportConfig()
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the OIDC discovery documents for static hosting",
		Long: `Write .well-known/openid-configuration, openid/v1/jwks and keys.json under
--out, byte for byte what "discovery serve" would return, for upload to the
web server or bucket that serves the issuer URL. Serve the configuration as
application/json and the JWKS as application/jwk-set+json. Run it again,
and upload again, whenever a signing key is added or removed.`,
		Example: `  # From the cluster's signing keys, for an S3 bucket serving the issuer:
  irsa-webhook discovery export --issuer https://my-bucket.s3.us-west-2.amazonaws.com \
    --key-file sa.pub --out ./oidc
  aws s3 cp ./oidc/.well-known/openid-configuration s3://my-bucket/.well-known/openid-configuration \
    --content-type application/json
  aws s3 cp ./oidc/openid/v1/jwks s3://my-bucket/openid/v1/jwks --content-type application/jwk-set+json

  # From the API server, reporting as JSON:
  irsa-webhook discovery export --issuer https://oidc.example.com/prod --from-apiserver --out ./oidc -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			return runDiscoveryExport(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// exportReport is what export prints with -o json.
type exportReport struct {
	Issuer     string   `json:"issuer"`
	JWKSURI    string   `json:"jwksURI"`
	KeyIDs     []string `json:"keyIDs"`
	Algorithms []string `json:"algorithms"`
	Files      []string `json:"files"`
}

func runDiscoveryExport(ctx context.Context, cfg *discovery.ExportConfig, out io.Writer) error {
	pub := discovery.NewPublisher(cfg.Issuer, cfg.EffectiveJWKSURI(), discovery.PublisherOptions{})
	source, err := discovery.NewSource(cfg.SourceConfig, time.Minute, pub, sourceClients(cfg.Kubeconfig))
	if err != nil {
		return err
	}
	if err := source.Refresh(ctx); err != nil {
		return err
	}
	files, err := discovery.Export(pub.Documents(), cfg.Out)
	if err != nil {
		return err
	}
	docs := pub.Documents()
	if cfg.Output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(exportReport{Issuer: cfg.Issuer, JWKSURI: cfg.EffectiveJWKSURI(),
			KeyIDs: docs.KeyIDs, Algorithms: docs.Algorithms, Files: files})
	}
	for _, f := range files {
		fmt.Fprintf(out, "wrote %s\n", f)
	}
	fmt.Fprintf(out, "keys: %d (%v)\n", len(docs.KeyIDs), docs.KeyIDs)
	return nil
}

// addDiscoveryListenerFlags adds the discovery key source flags to `serve`,
// used only with --discovery-port.
func addDiscoveryListenerFlags(fs *pflag.FlagSet, dcfg *discovery.Config) {
	local := pflag.NewFlagSet("discovery", pflag.ContinueOnError)
	dcfg.SourceConfig.AddFlags(local)
	dcfg.AddRefreshFlag(local)
	local.VisitAll(func(f *pflag.Flag) {
		f.Usage = "(with --discovery-port) " + f.Usage
		fs.AddFlag(f)
	})
}

// validateDiscoveryListener checks the discovery flags of `serve` when
// --discovery-port asks for the listener.
func validateDiscoveryListener(cfg *webhook.Config, dcfg *discovery.Config) error {
	if cfg.DiscoveryPort == 0 {
		return nil
	}
	return errors.Join(dcfg.SourceConfig.Validate(), dcfg.ValidateRefresh())
}

// addDiscoveryListener mounts the discovery handler on a second HTTPS
// listener of the webhook's manager, with the webhook's certificate, and
// adds its readiness checks. Its key source and server log to log.
func addDiscoveryListener(mgr manager.Manager, log logr.Logger, cfg *webhook.Config, dcfg *discovery.Config) error {
	metrics := discovery.NewMetrics(ctrlmetrics.Registry)
	pub, source, err := discovery.NewServedPublisher(dcfg, metrics, sourceClients(cfg.Kubeconfig))
	if err != nil {
		return err
	}
	cw, err := certwatcher.New(filepath.Join(cfg.CertDir, "tls.crt"), filepath.Join(cfg.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("load serving certificate from --cert-dir %s: %w", cfg.CertDir, err)
	}
	// The webhook's --tls-min-version and --tls-cipher-suites apply here too.
	tlsCfg, err := discovery.TLSConfig(cfg.TLSMinVersion, cfg.TLSCipherSuites, cw.GetCertificate)
	if err != nil {
		return err
	}
	server := &discovery.Server{
		Name:    "discovery",
		Addr:    net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.DiscoveryPort)),
		Handler: discovery.NewHandler(pub, metrics),
		TLS:     tlsCfg,
		Metrics: serving.NewMetrics(ctrlmetrics.Registry),
	}
	return errors.Join(
		mgr.Add(cw),
		mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			if err := runKeySource(logr.NewContext(ctx, log), source); err != nil {
				return fmt.Errorf("discovery %w", err)
			}
			return nil
		})),
		mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			server.Listener = testListenersFrom(ctx).discovery
			return server.Start(logr.NewContext(ctx, log))
		})),
		mgr.AddReadyzCheck("discovery-keys", pub.ReadyCheck),
		mgr.AddReadyzCheck("discovery-keys-fresh", pub.FreshCheck),
	)
}
