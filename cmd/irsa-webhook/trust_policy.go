package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/irsa-webhook/irsa-webhook/pkg/awsiam"
)

func newTrustPolicyCommand() *cobra.Command {
	cfg := awsiam.NewTrustPolicyConfig()
	output := outputJSON
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
			if err := errors.Join(cfg.Validate(), validateOutput(output, outputJSON, outputText)); err != nil {
				return err
			}
			return runTrustPolicy(cfg, output, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addTrustPolicyFlags(cmd.Flags(), cfg)
	addOutputFlag(cmd.Flags(), &output, "Output format: json (the policy document) or text (a summary).")
	return cmd
}

// addTrustPolicyFlags binds each flag to its field of c, with the field's
// value as default.
func addTrustPolicyFlags(fs *pflag.FlagSet, c *awsiam.TrustPolicyConfig) {
	fs.StringVar(&c.AccountID, "account-id", c.AccountID, "AWS account ID (12 digits) that owns the IAM OIDC identity provider. With --issuer; or use --provider-arn.")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "Public issuer URL of the cluster's service account tokens (https), exactly as in the tokens' iss claim.")
	fs.StringVar(&c.Partition, "partition", c.Partition, "AWS partition of the account: aws, aws-cn, aws-us-gov, ...")
	fs.StringVar(&c.ProviderARN, "provider-arn", c.ProviderARN, "ARN of an existing IAM OIDC identity provider; replaces --account-id, --issuer and --partition.")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "Namespace of the ServiceAccount allowed to assume the role.")
	fs.StringVar(&c.ServiceAccount, "service-account", c.ServiceAccount, "Name of the ServiceAccount allowed to assume the role; '*' allows every ServiceAccount of --namespace.")
	fs.StringVar(&c.SPIFFEID, "spiffe-id", c.SPIFFEID, "SPIFFE ID (spiffe://trust-domain/path) allowed to assume the role, instead of --namespace/--service-account; a trailing '/*' allows a path prefix.")
	fs.StringVar(&c.Audience, "audience", c.Audience, "Token audience the role requires (the aud claim).")
}

// runTrustPolicy prints the policy cfg describes to out, and its warnings
// to warnings: on stderr, so that "> trust.json" still gets only the
// policy. cfg must have passed Validate.
func runTrustPolicy(cfg *awsiam.TrustPolicyConfig, output string, out, warnings io.Writer) error {
	res, err := cfg.TrustPolicy()
	if err != nil {
		return err
	}
	for _, w := range res.Warnings() {
		fmt.Fprintln(warnings, w)
	}
	return writeTrustPolicy(out, res, output)
}

// writeTrustPolicy renders r as output (json: the indented policy document;
// text: a summary for a person).
func writeTrustPolicy(w io.Writer, r *awsiam.TrustPolicyResult, output string) error {
	if output == outputText {
		op := awsiam.StringEquals
		if r.Subject.Pattern {
			op = awsiam.StringLike
		}
		_, err := fmt.Fprintf(w, "principal:  %s\naction:     %s\nsub:        %s %s\naud:        %s %s\n",
			r.Provider, awsiam.ActionAssumeRoleWithWebIdentity, op, r.Subject.Value, awsiam.StringEquals, r.Audience)
		return err
	}
	b, err := r.Document.MarshalIndent()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
