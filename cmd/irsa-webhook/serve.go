package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
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
			flagErr := errors.Join(cfg.Validate(), clientAuth.Validate(), selfSigned.Validate(), validateDiscoveryListener(cfg, dcfg))
			if selfSigned.Enabled && cfg.DiscoveryPort != 0 {
				// The discovery documents are fetched by AWS, which must trust
				// the serving certificate; a private CA made in-cluster never is.
				flagErr = errors.Join(flagErr, errors.New("--discovery-port serves the --cert-dir certificate and cannot be combined with --self-signed-ca; run 'irsa-webhook discovery serve' behind an Ingress instead"))
			}
			return logs.run(cmd, flagErr, "", func(ctx context.Context) error {
				return runServe(ctx, cfg, clientAuth, selfSigned, dcfg)
			})
		},
	}
	cfg.AddFlags(cmd.Flags())
	clientAuth.AddFlags(cmd.Flags())
	selfSigned.AddFlags(cmd.Flags())
	addDiscoveryListenerFlags(cmd.Flags(), dcfg)
	logs.addFlags(cmd.Flags())
	return cmd
}

// runServe runs the webhook until ctx ends, then drains it; it logs to
// ctx's logger. The flags must have passed validation.
func runServe(ctx context.Context, cfg *webhook.Config, clientAuth *serving.ClientAuthConfig, selfSigned *selfsigned.Config, dcfg *discovery.Config) error {
	log := logr.FromContextOrDiscard(ctx)
	memoryLimit := holdMemoryLimit(os.LookupEnv)
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
		Logger:                  log,
	})
	if err != nil {
		return fmt.Errorf("set up manager: %w", err)
	}

	meta, err := metacache.NewClient(restCfg)
	if err != nil {
		return err
	}
	lookups := metacache.Options{
		LookupTimeout: cfg.ServiceAccountLookupTimeout,
		LookupRate:    cfg.LiveLookupRate,
		LookupBurst:   cfg.LiveLookupBurst,
	}
	saOpts, nsOpts := lookups, lookups
	saOpts.Observer = metacache.NewServiceAccountMetrics(ctrlmetrics.Registry)
	// The initial list of a large cluster is most of the process's
	// garbage: collect it as it is made, so the heap does not grow to
	// GOGC times the live memory meanwhile, and hand it back before
	// reporting ready.
	saOpts.CollectWhileListing = true
	saOpts.ReturnMemoryAfterSync = true
	nsOpts.Observer = metacache.NewNamespaceMetrics(ctrlmetrics.Registry)
	sas := metacache.NewServiceAccounts(meta, []string{cfg.AnnotationPrefix, identity.ProjectPrefix}, saOpts)
	// The namespace role policy: only the one annotation is kept.
	nss := metacache.NewNamespaces(meta, []string{identity.AllowedRoleARNs}, nsOpts)
	if err := errors.Join(mgr.Add(sas), mgr.Add(nss),
		mgr.AddReadyzCheck("service-account-cache", sas.ReadyCheck),
		mgr.AddReadyzCheck("namespace-cache", nss.ReadyCheck)); err != nil {
		return err
	}

	tlsOpts, err := addServingTLS(mgr, log, restCfg, clientAuth, selfSigned)
	if err != nil {
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
	srv.(*webhook.Server).Metrics = serving.NewMetrics(ctrlmetrics.Registry)
	if err := errors.Join(mgr.Add(srv),
		mgr.AddHealthzCheck("ping", healthz.Ping),
		mgr.AddReadyzCheck("webhook-server", srv.StartedChecker())); err != nil {
		return err
	}

	if cfg.DiscoveryPort != 0 {
		if err := addDiscoveryListener(mgr, log.WithName("discovery"), cfg, dcfg); err != nil {
			return err
		}
	}

	gcPercent := setServeGCPercent(os.LookupEnv)
	log.Info("starting irsa-webhook", "gcPercent", gcPercent, "memoryLimit", memoryLimit, "port", cfg.Port, "annotationPrefix", cfg.AnnotationPrefix,
		"audience", cfg.TokenAudience, "region", cfg.AWSDefaultRegion, "regionalSTS", cfg.STSRegionalEndpoints,
		"rolePolicyAction", cfg.RolePolicyAction, "clientCAFile", clientAuth.CAFile, "clientAllowedNames", clientAuth.AllowedNames)
	return mgr.Start(ctx)
}

// addServingTLS adds to mgr what the webhook's TLS listener needs beside
// --cert-dir, and returns the options that configure it:
// --self-signed-ca, a certificate from our own Secret (a GetCertificate
// makes the server skip the directory), and --client-ca-file, only clients
// with a certificate from those CAs (the API server) complete the
// handshake. The discovery listener stays open: AWS fetches from it.
func addServingTLS(mgr manager.Manager, log logr.Logger, restCfg *rest.Config, clientAuth *serving.ClientAuthConfig, selfSigned *selfsigned.Config) ([]func(*tls.Config), error) {
	var tlsOpts []func(*tls.Config)
	if selfSigned.Enabled {
		kube, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
		certs := selfsigned.New(kube, *selfSigned, log.WithName("selfsigned"), nil)
		tlsOpts = append(tlsOpts, certs.ConfigureTLS)
		if err := errors.Join(mgr.Add(certs), mgr.AddReadyzCheck("self-signed-certificate", certs.Ready)); err != nil {
			return nil, err
		}
	}
	if clientAuth.Enabled() {
		auth, err := serving.NewClientAuth(*clientAuth, log.WithName("client-auth"))
		if err != nil {
			return nil, err
		}
		tlsOpts = append(tlsOpts, auth.ConfigureTLS)
		if err := mgr.Add(auth); err != nil {
			return nil, err
		}
	}
	return tlsOpts, nil
}
