package main

import (
	"context"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
)

func newDiscoveryPublishCommand() *cobra.Command {
	cfg := discovery.NewPublishConfig()
	logs := &logOptions{}
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish the OIDC discovery documents to an S3 bucket and keep them current",
		Long: `Write <prefix>/.well-known/openid-configuration, <prefix>/openid/v1/jwks and
<prefix>/keys.json to an S3 bucket, byte for byte what "discovery serve" would
return, with the same content types and cache header; then keep running and
publish again within one --refresh-interval whenever the key source changes
(old and new keys side by side, as the source lists them). For a private
cluster whose API server and Ingress AWS cannot reach: the issuer URL is the
bucket's https URL, e.g. https://<bucket>.s3.<region>.amazonaws.com/<prefix>.
With --from-apiserver, documents whose issuer differs from the API server's
are never published. --once publishes once and exits, for a Job.
Its own AWS credentials cannot come from IRSA before the issuer is published:
give it a Secret (shared credentials file) or the node's role; it needs only
s3:PutObject on the three keys.`,
		Example: `  # Keep a bucket current from the API server's keys:
  irsa-webhook discovery publish --issuer https://oidc-prod.s3.us-west-2.amazonaws.com/prod \
    --bucket oidc-prod --prefix prod --region us-west-2 --from-apiserver

  # Once, from key files, into an S3-compatible store:
  irsa-webhook discovery publish --once --issuer https://s3.example.com/oidc --bucket oidc \
    --endpoint-url https://s3.example.com --path-style --key-file sa.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return logs.run(cmd, cfg.Validate(), "", func(ctx context.Context) error {
				return runDiscoveryPublish(ctx, cfg)
			})
		},
	}
	cfg.AddFlags(cmd.Flags())
	logs.addFlags(cmd.Flags())
	return cmd
}

// newS3Bucket is the bucket cfg names, with the SDK's credential chain.
func newS3Bucket(ctx context.Context, cfg *discovery.PublishConfig) (discovery.Bucket, error) {
	client, err := discovery.NewS3Client(ctx, discovery.S3Options{Region: cfg.Region, EndpointURL: cfg.EndpointURL, PathStyle: cfg.PathStyle})
	if err != nil {
		return nil, err
	}
	return discovery.S3Bucket{Client: client, Name: cfg.Bucket}, nil
}

func runDiscoveryPublish(ctx context.Context, cfg *discovery.PublishConfig) error {
	log := logr.FromContextOrDiscard(ctx)
	keys := &discovery.Config{SourceConfig: cfg.SourceConfig, RefreshInterval: cfg.RefreshInterval}
	pub, source, err := discovery.NewServedPublisher(keys, discovery.NewMetrics(ctrlmetrics.Registry), sourceClients(cfg.Kubeconfig))
	if err != nil {
		return err
	}
	bucket, err := newS3Bucket(ctx, cfg)
	if err != nil {
		return err
	}
	mirror := &discovery.Mirror{Publisher: pub, Bucket: bucket, Prefix: cfg.Prefix, MaxStaleness: keys.MaxStaleness()}

	if cfg.Once {
		if err := source.Refresh(ctx); err != nil {
			return err
		}
		if _, err := mirror.Sync(ctx); err != nil {
			return err
		}
		docs := pub.Documents()
		log.Info("published the discovery documents", "bucket", cfg.Bucket, "prefix", cfg.Prefix, "keys", docs.KeyIDs)
		return nil
	}

	g, ctx := errgroup.WithContext(ctx)
	health := discovery.HealthHandler(pub, map[string]healthz.Checker{"bucket": func(*http.Request) error { return mirror.Ready() }})
	if err := startProbes(ctx, g, cfg.HealthProbeBindAddress, cfg.MetricsBindAddress, health); err != nil {
		return err
	}
	g.Go(func() error { return runKeySource(ctx, source) })
	g.Go(func() error { return mirror.Run(ctx) })
	log.Info("starting discovery publisher", "issuer", cfg.Issuer, "bucket", cfg.Bucket, "prefix", cfg.Prefix,
		"fromAPIServer", cfg.FromAPIServer, "fromSPIFFE", cfg.FromSPIFFE, "keyFiles", cfg.KeyFiles, "refresh", cfg.RefreshInterval.String())
	return g.Wait()
}
