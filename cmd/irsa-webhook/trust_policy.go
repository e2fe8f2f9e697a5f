package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/irsa-webhook/irsa-webhook/pkg/awsiam"
)

func newTrustPolicyCommand() *cobra.Command {
	cfg := awsiam.NewTrustPolicyConfig()
	cmd := &cobra.Command{
		Use:   "trust-policy",
		Short: "Print the IAM role trust policy for a ServiceAccount",
		Long: `Print the trust policy document of an IAM role that pods running as one
ServiceAccount (or every ServiceAccount of a namespace) may assume through
sts:AssumeRoleWithWebIdentity.

The policy trusts the cluster's IAM OIDC identity provider, named by
--account-id and --issuer (with --partition) or by --provider-arn, and always
holds a condition on the token's sub claim: an audience-only policy would let
every ServiceAccount of the cluster assume the role, so none is ever printed.
Nothing is sent to AWS.`,
		Example: `  # One ServiceAccount:
  irsa-webhook trust-policy --account-id 111122223333 \
    --issuer https://oidc.example.com/cluster-1 --namespace team-a --service-account app > trust.json
  aws iam create-role --role-name team-a-app --assume-role-policy-document file://trust.json

  # Every ServiceAccount of a namespace (StringLike on sub; prints a warning):
  irsa-webhook trust-policy --account-id 111122223333 \
    --issuer https://oidc.example.com/cluster-1 --namespace team-a --service-account '*'

  # An existing provider, in GovCloud:
  irsa-webhook trust-policy \
    --provider-arn arn:aws-us-gov:iam::111122223333:oidc-provider/oidc.example.com/cluster-1 \
    --namespace team-a --service-account app

  # A SPIFFE workload (JWT-SVIDs from SPIRE):
  irsa-webhook trust-policy --account-id 111122223333 --issuer https://oidc.example.org \
    --spiffe-id spiffe://example.org/ns/team-a/sa/app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := cfg.TrustPolicy()
			if err != nil {
				return err
			}
			// On stderr, so that "> trust.json" still gets only the policy.
			for _, w := range res.Warnings() {
				fmt.Fprintln(cmd.ErrOrStderr(), w)
			}
			return res.Write(cmd.OutOrStdout(), cfg.Output)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}
