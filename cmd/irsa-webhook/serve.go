package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
	"github.com/irsa-webhook/irsa-webhook/pkg/selfsigned"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
	"github.com/irsa-webhook/irsa-webhook/pkg/webhook"
)

// shutdownTimeout bounds graceful shutdown: in-flight admissions finish,
// new connections are refused.
const shutdownTimeout = 5 * time.Second

func newServeCommand() *cobra.Command {
	cfg := webhook.NewConfig()
	clientAuth := serving.NewClientAuthConfig()
	selfSigned := selfsigned.NewConfig()
	dcfg := discovery.NewConfig()
	logs := &logOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the mutating admission webhook",
		Long: `Run the HTTPS mutating admission webhook that injects AWS web identity
credentials into Pods whose ServiceAccount carries <prefix>/role-arn.`,
		Example: `  # In a cluster, with the serving certificate mounted from a Secret:
  irsa-webhook serve --cert-dir /etc/irsa-webhook/tls --aws-default-region us-west-2

  # Outside a cluster, against the API server of a kubeconfig:
  irsa-webhook serve --kubeconfig ~/.kube/config --cert-dir ./certs --bind-address 127.0.0.1

  # Without cert-manager: make, renew and publish our own CA and certificate:
  irsa-webhook serve --self-signed-ca --self-signed-secret-namespace irsa-system

  # A role outside its namespace's irsa-webhook.io/allowed-role-arns patterns:
  # admit the pod without AWS credentials and warn, instead of refusing it:
  irsa-webhook serve --role-policy-action=warn

  # Complete the TLS handshake only with the API server's webhook client
  # certificate (see docs/install.md, "Client authentication"):
  irsa-webhook serve --client-ca-file /etc/irsa-webhook/client-ca/ca.crt \
    --client-allowed-names kube-apiserver-webhook-client`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(cfg.Validate(), clientAuth.Validate(), selfSigned.Validate(), validateDiscoveryListener(cfg, dcfg), logs.validate()); err != nil {
				return err
			}
			if selfSigned.Enabled && cfg.DiscoveryPort != 0 {
				// The discovery documents are fetched by AWS, which must trust
				// the serving certificate; a private CA made in-cluster never is.
				return errors.New("--discovery-port serves the --cert-dir certificate and cannot be combined with --self-signed-ca; run 'irsa-webhook discovery serve' behind an Ingress instead")
			}
			_, closeLogs := logs.setup()
			defer closeLogs()
			return runServe(cmd.Context(), cfg, clientAuth, selfSigned, dcfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	clientAuth.AddFlags(cmd.Flags())
	selfSigned.AddFlags(cmd.Flags())
	addDiscoveryListenerFlags(cmd.Flags(), dcfg)
	logs.addFlags(cmd.Flags())
	return cmd
}

func runServe(ctx context.Context, cfg *webhook.Config, clientAuth *serving.ClientAuthConfig, selfSigned *selfsigned.Config, dcfg *discovery.Config) error {
	if ctx == nil {
		ctx = context.Background()
	}
	restCfg, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "irsa-webhook"
	grace := shutdownTimeout
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		Metrics:                 metricsserver.Options{BindAddress: cfg.MetricsBindAddress},
		HealthProbeBindAddress:  cfg.HealthProbeBindAddress,
		PprofBindAddress:        cfg.PprofBindAddress,
		GracefulShutdownTimeout: &grace,
	})
	if err != nil {
		return fmt.Errorf("set up manager: %w", err)
	}

	// Live lookups are bounded by each cache (shared per key, in flight,
	// and by --live-lookup-rate, where a waiting lookup can still be
	// answered by the watch) and by the API server's priority and fairness;
	// the client's default token bucket (5 per second) would instead queue
	// a burst of Pods for new ServiceAccounts past the lookup timeout and
	// deny them.
	metaCfg := rest.CopyConfig(restCfg)
	metaCfg.QPS = -1
	meta, err := metadata.NewForConfig(metaCfg)
	if err != nil {
		return fmt.Errorf("metadata client: %w", err)
	}
	sas := metacache.NewServiceAccounts(meta, []string{cfg.AnnotationPrefix, identity.ProjectPrefix}, metacache.Options{
		LookupTimeout: cfg.ServiceAccountLookupTimeout,
		LookupRate:    cfg.LiveLookupRate,
		LookupBurst:   cfg.LiveLookupBurst,
		Observer:      metacache.NewServiceAccountMetrics(ctrlmetrics.Registry),
		// The initial list of a large cluster is most of the process's
		// garbage: collect it as it is made, so the heap does not grow to
		// GOGC times the live memory meanwhile, and hand it back before
		// reporting ready.
		CollectWhileListing:   true,
		ReturnMemoryAfterSync: true,
	})
	if err := mgr.Add(sas); err != nil {
		return err
	}

	// --self-signed-ca: the certificate comes from our own Secret, not
	// --cert-dir (a GetCertificate makes the server skip the directory).
	var tlsOpts []func(*tls.Config)
	if selfSigned.Enabled {
		kube, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		certs := selfsigned.New(kube, *selfSigned, ctrl.Log.WithName("selfsigned"), nil)
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.GetCertificate = certs.GetCertificate })
		if err := errors.Join(mgr.Add(certs), mgr.AddReadyzCheck("self-signed-certificate", certs.Ready)); err != nil {
			return err
		}
	}

	// --client-ca-file: only clients with a certificate from those CAs (the
	// API server) complete the handshake. The discovery listener stays open:
	// AWS fetches from it.
	if clientAuth.Enabled() {
		auth, err := serving.NewClientAuth(*clientAuth, ctrl.Log.WithName("client-auth"))
		if err != nil {
			return err
		}
		tlsOpts = append(tlsOpts, auth.ConfigureTLS)
		if err := mgr.Add(auth); err != nil {
			return err
		}
	}

	// The namespace role policy: only the one annotation is kept.
	nss := metacache.NewNamespaces(meta, []string{identity.AllowedRoleARNs}, metacache.Options{
		LookupTimeout: cfg.ServiceAccountLookupTimeout,
		LookupRate:    cfg.LiveLookupRate,
		LookupBurst:   cfg.LiveLookupBurst,
		Observer:      metacache.NewNamespaceMetrics(ctrlmetrics.Registry),
	})
	if err := mgr.Add(nss); err != nil {
		return err
	}

	srv := webhook.NewServer(cfg, &webhook.Handler{
		Defaults:         cfg.Defaults(),
		ServiceAccounts:  sas,
		Namespaces:       nss,
		RolePolicyAction: cfg.RolePolicyAction,
		LookupTimeout:    cfg.ServiceAccountLookupTimeout,
		Metrics:          webhook.NewMetrics(ctrlmetrics.Registry),
	}, tlsOpts...)
	if err := mgr.Add(srv); err != nil {
		return err
	}

	if cfg.DiscoveryPort != 0 {
		if err := addDiscoveryListener(mgr, cfg, dcfg); err != nil {
			return err
		}
	}

	if err := errors.Join(
		mgr.AddHealthzCheck("ping", healthz.Ping),
		mgr.AddReadyzCheck("service-account-cache", func(*http.Request) error {
			if !sas.HasSynced() {
				return errors.New("service account cache has not synced")
			}
			return nil
		}),
		mgr.AddReadyzCheck("namespace-cache", func(*http.Request) error {
			if !nss.HasSynced() {
				return errors.New("namespace cache has not synced")
			}
			return nil
		}),
		mgr.AddReadyzCheck("webhook-server", srv.StartedChecker()),
	); err != nil {
		return err
	}

	gcPercent := setServeGCPercent(os.LookupEnv)
	ctrl.Log.Info("starting irsa-webhook", "gcPercent", gcPercent, "port", cfg.Port, "annotationPrefix", cfg.AnnotationPrefix,
		"audience", cfg.TokenAudience, "region", cfg.AWSDefaultRegion, "regionalSTS", cfg.STSRegionalEndpoints,
		"rolePolicyAction", cfg.RolePolicyAction, "clientCAFile", clientAuth.CAFile, "clientAllowedNames", clientAuth.AllowedNames)
	return mgr.Start(ctrl.SetupSignalHandler())
}
