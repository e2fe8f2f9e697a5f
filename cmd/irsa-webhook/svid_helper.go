package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/irsa-webhook/irsa-webhook/pkg/svidhelper"
)

func newSVIDHelperCommand() *cobra.Command {
	cfg := svidhelper.NewConfig()
	logs := &logOptions{}
	cmd := &cobra.Command{
		Use:   "svid-helper",
		Short: "Keep a JWT-SVID from the SPIRE agent in a file for the AWS SDKs",
		Long: `Fetch a JWT-SVID for --audience from the SPIFFE Workload API and write it to
--file (atomically: a temporary file, then a rename), for the AWS SDKs'
AWS_WEB_IDENTITY_TOKEN_FILE. The token is refreshed at half its lifetime
(a little earlier, by a random jitter) and at once when the trust domain's
signing keys change. While the agent is unreachable or has no registration
entry for this workload, it retries with backoff and logs why.

The webhook runs this as a native sidecar in Pods whose ServiceAccount is
annotated <prefix>/token-source: spiffe; its startup probe is
"svid-helper check". SIGTERM or SIGINT stops it and leaves the file.`,
		Example: `  # What the sidecar runs:
  irsa-webhook svid-helper --workload-api-addr unix:///spiffe-workload-api/spire-agent.sock \
    --audience sts.amazonaws.com --file /var/run/secrets/eks.amazonaws.com/serviceaccount/token

  # One of several identities, with metrics:
  irsa-webhook svid-helper --file /tmp/token --spiffe-id spiffe://example.org/ns/prod/sa/app \
    --metrics-bind-address 127.0.0.1:9464`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return logs.run(cmd, cfg.Validate(), "svid-helper", func(ctx context.Context) error {
				return runSVIDHelper(ctx, cfg)
			})
		},
	}
	cfg.AddFlags(cmd.Flags())
	logs.addFlags(cmd.Flags())
	cmd.AddCommand(newSVIDHelperCheckCommand())
	return cmd
}

func runSVIDHelper(ctx context.Context, cfg *svidhelper.Config) error {
	client, err := workloadAPIClient(cfg.WorkloadAPIAddr)
	if err != nil {
		return err
	}
	defer client.Close()

	metrics := svidhelper.NewMetrics(ctrlmetrics.Registry, clock.RealClock{})
	helper, err := svidhelper.New(*cfg, client, svidhelper.Options{Metrics: metrics})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	if err := startProbes(ctx, g, "0", cfg.MetricsBindAddress, nil); err != nil {
		return err
	}
	g.Go(func() error { return helper.Run(ctx) })
	return g.Wait()
}

func newSVIDHelperCheckCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Exit 0 when the token file holds an unexpired JWT (the sidecar's startup probe)",
		Long: `Check that --file holds a JWT whose exp is in the future. The signature is
not verified: this only tells the kubelet that svid-helper has written a
token, so that the application containers may start.`,
		Example: `  irsa-webhook svid-helper check --file /var/run/secrets/eks.amazonaws.com/serviceaccount/token`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--file: is required: the token file svid-helper writes")
			}
			return svidhelper.CheckFile(file, time.Now())
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "Token file to check.")
	return cmd
}
