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
		Long: `Connect to URL (the issuer, or a bare host[:port]) over TLS and print the
SHA-1 thumbprint IAM's CreateOpenIDConnectProvider takes: 40 lower case hex
digits of the last certificate the server presents, the top intermediate CA
of its chain, following AWS's documented procedure. A server that presents
only its own certificate gets that certificate's thumbprint, which changes
when it is renewed (-o json shows which certificate was used).

The chain must verify against the system's trusted roots, or against
--ca-file for a private CA. When the discovery document's jwks_uri is on
another host than the issuer, AWS checks both: --discovery reads the
issuer's discovery document and prints the second thumbprint too, one a
line.`,
		Example: `  irsa-webhook thumbprint https://oidc.example.com/cluster-1

  # A discovery server behind a private CA:
  irsa-webhook thumbprint https://oidc.internal.example:8443 --ca-file ca.pem -o json

  # Straight into the provider, with the jwks_uri host's thumbprint if it differs:
  aws iam create-open-id-connect-provider --url https://oidc.example.com/cluster-1 \
    --client-id-list sts.amazonaws.com \
    --thumbprint-list $(irsa-webhook thumbprint --discovery https://oidc.example.com/cluster-1)`,
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
