package main

import (
	"github.com/spf13/cobra"

	"github.com/irsa-webhook/irsa-webhook/pkg/awsiam"
)

func newThumbprintCommand() *cobra.Command {
	cfg := awsiam.NewThumbprintConfig()
	cmd := &cobra.Command{
		Use:   "thumbprint URL",
		Short: "Print the certificate thumbprint IAM asks for when creating the OIDC provider",
		Long: `Print the SHA-1 thumbprint IAM's CreateOpenIDConnectProvider takes, following
AWS's documented procedure: read the issuer URL's discovery document
(/.well-known/openid-configuration), connect over TLS to its jwks_uri host,
and print 40 lower case hex digits of the last certificate that host
presents, the top intermediate CA of its chain. When the jwks_uri is on
another host than the issuer, AWS checks both, so both thumbprints are
printed, one a line, the issuer's first. A server that presents only its own
certificate gets the thumbprint of the CA that verified it, not of a leaf
that changes at every renewal (-o json shows which certificate was used).

--discovery=false, or a bare host[:port] as URL, thumbprints that host alone.
Chains must verify against the system's trusted roots, or against --ca-file
for a private CA; a redirect from https to plain HTTP is an error.`,
		Example: `  irsa-webhook thumbprint https://oidc.example.com/cluster-1

  # A discovery server behind a private CA:
  irsa-webhook thumbprint https://oidc.internal.example:8443 --ca-file ca.pem -o json

  # Straight into the provider (both thumbprints when the jwks_uri host differs):
  aws iam create-open-id-connect-provider --url https://oidc.example.com/cluster-1 \
    --client-id-list sts.amazonaws.com \
    --thumbprint-list $(irsa-webhook thumbprint https://oidc.example.com/cluster-1)

  # One host's chain only, no discovery document:
  irsa-webhook thumbprint keys.example.com:443`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Target = args[0]
			if err := cfg.Validate(); err != nil {
				return err
			}
			res, err := cfg.Run(cmd.Context())
			if err != nil {
				return err
			}
			return res.Write(cmd.OutOrStdout(), cfg.Output)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}
