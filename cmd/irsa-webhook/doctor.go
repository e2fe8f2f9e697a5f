package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-webhook/irsa-webhook/pkg/doctor"
)

func newDoctorCommand() *cobra.Command {
	cfg := doctor.NewConfig()
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check every link between a ServiceAccount and AWS, and say how to fix the broken one",
		Long: `Walk the chain a pod's AWS credentials depend on and print a checklist, one
line per check (PASS, FAIL, WARN, or SKIP when an earlier failure makes a
check meaningless), with the fix for each failure:

  service-account        the ServiceAccount exists
  role-arn               its <prefix>/role-arn annotation is an IAM role ARN
  profiles               each role of its irsa-webhook.io/profiles is an IAM role ARN
  session-name           the session name the webhook would set (--role-session-name,
                         irsa-webhook.io/role-session-name)
  role-policy            the role and every profile's role are allowed by the namespace's
                         irsa-webhook.io/allowed-role-arns (--role-policy-action)
  webhook-configuration  a MutatingWebhookConfiguration calls irsa-webhook for pod CREATE
                         in the ServiceAccount's namespace
  webhook-ca-bundle      its caBundle verifies the webhook's serving certificate
  token-request          a token for the ServiceAccount (TokenRequest API, the webhook's audience)
  token-issuer           the token's iss is the public issuer AWS trusts
  token-lifetime         the token's lifetime is within the day AWS accepts
  discovery-document     <issuer>/.well-known/openid-configuration is reachable over https
  discovery-issuer       its issuer is exactly the public issuer
  jwks                   its jwks_uri holds the token's kid (and public keys only)
  token-signature        the token verifies with that key, with an algorithm AWS accepts

With --bucket, the documents "discovery publish" wrote to S3 are read back
with the AWS SDK's default credentials (s3:GetObject; nothing is written):

  bucket-document        <bucket-prefix>/.well-known/openid-configuration exists, names the
                         issuer, has its jwks_uri under it, and is byte for byte what
                         "discovery serve" would serve for the API server's keys
  bucket-jwks            the bucket's JWKS holds the token's kid (a key rotated without
                         publishing fails here) and the API server's keys
  bucket-token-signature the token verifies with the bucket's key of its kid

The exit status is non-zero when any check fails. Nothing in the cluster is
changed: doctor reads the ServiceAccount, its namespace and the webhook
configurations, and requests one short-lived token, which the API server
does not store and doctor never prints. The discovery checks run from where doctor runs; AWS
fetches the same URLs from the internet.`,
		Example: `  irsa-webhook doctor --namespace team-a --service-account app

  # Check against the issuer the IAM OIDC provider was created for:
  irsa-webhook doctor -n team-a --service-account app --issuer https://oidc.example.com/cluster-1

  # A private cluster's issuer published to S3 (the flags discovery publish was given):
  irsa-webhook doctor -n team-a --service-account app --issuer https://oidc-prod.s3.us-west-2.amazonaws.com/prod \
    --bucket oidc-prod --bucket-prefix prod --region us-west-2

  # For scripts:
  irsa-webhook doctor -n team-a --service-account app -o json | jq '.checks[] | select(.status == "FAIL")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			return runDoctor(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// runDoctor runs the checks against the cluster of cfg.Kubeconfig and
// prints the report to out. cfg must have passed Validate.
func runDoctor(ctx context.Context, cfg *doctor.Config, out io.Writer) error {
	restCfg, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "irsa-webhook-doctor"
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	report, err := doctor.Run(ctx, cfg, kube, out)
	if errors.Is(err, doctor.ErrChecksFailed) {
		return fmt.Errorf("%d of %d checks failed", report.Failed, len(report.Checks))
	}
	return err
}
