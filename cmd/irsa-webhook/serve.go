package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
	"github.com/irsa-webhook/irsa-webhook/pkg/sacache"
	"github.com/irsa-webhook/irsa-webhook/pkg/webhook"
)

// MutatePath is where the webhook answers AdmissionReviews.
const MutatePath = "/mutate"

// shutdownTimeout bounds graceful shutdown: in-flight admissions finish,
// new connections are refused.
const shutdownTimeout = 5 * time.Second

func newServeCommand() *cobra.Command {
	cfg := webhook.NewConfig()
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
  irsa-webhook serve --kubeconfig ~/.kube/config --cert-dir ./certs --bind-address 127.0.0.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(cfg.Validate(), validateDiscoveryListener(cfg, dcfg), logs.validate()); err != nil {
				return err
			}
			logs.setup()
			return runServe(cmd.Context(), cfg, dcfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	addDiscoveryListenerFlags(cmd.Flags(), dcfg)
	logs.addFlags(cmd.Flags())
	return cmd
}

func runServe(ctx context.Context, cfg *webhook.Config, dcfg *discovery.Config) error {
	if ctx == nil {
		ctx = context.Background()
	}
	restCfg, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "irsa-webhook"
	minTLS, _ := webhook.TLSVersion(cfg.TLSMinVersion) // checked by Validate

	grace := shutdownTimeout
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		Metrics:                 metricsserver.Options{BindAddress: cfg.MetricsBindAddress},
		HealthProbeBindAddress:  cfg.HealthProbeBindAddress,
		GracefulShutdownTimeout: &grace,
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host:     cfg.BindAddress,
			Port:     cfg.Port,
			CertDir:  cfg.CertDir,
			CertName: "tls.crt",
			KeyName:  "tls.key",
			TLSOpts:  []func(*tls.Config){func(c *tls.Config) { c.MinVersion = minTLS }},
		}),
	})
	if err != nil {
		return fmt.Errorf("set up manager: %w", err)
	}

	meta, err := metadata.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("metadata client: %w", err)
	}
	sas := sacache.New(meta, sacache.Options{
		Prefix:        cfg.AnnotationPrefix,
		LookupTimeout: cfg.ServiceAccountLookupTimeout,
		Metrics:       sacache.NewMetrics(ctrlmetrics.Registry),
	})
	if err := mgr.Add(sas); err != nil {
		return err
	}

	mgr.GetWebhookServer().Register(MutatePath, &admission.Webhook{Handler: &webhook.Handler{
		Defaults:        cfg.Defaults(),
		ServiceAccounts: sas,
		Metrics:         webhook.NewMetrics(ctrlmetrics.Registry),
	}})

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
		mgr.AddReadyzCheck("webhook-server", mgr.GetWebhookServer().StartedChecker()),
	); err != nil {
		return err
	}

	ctrl.Log.Info("starting irsa-webhook", "port", cfg.Port, "annotationPrefix", cfg.AnnotationPrefix,
		"audience", cfg.TokenAudience, "region", cfg.AWSDefaultRegion, "regionalSTS", cfg.STSRegionalEndpoints)
	return mgr.Start(ctrl.SetupSignalHandler())
}
