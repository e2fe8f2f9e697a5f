package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "irsa-webhook",
		Short: "AWS IAM roles for Kubernetes service accounts, with no stored secrets",
		Long: `irsa-webhook gives every Pod whose ServiceAccount is annotated with an IAM role
a projected service account token and the environment the AWS SDKs read, so
they assume the role through AssumeRoleWithWebIdentity on their own.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCommand(),
		newDiscoveryCommand(),
		newTrustPolicyCommand(),
		newThumbprintCommand(),
		newDoctorCommand(),
		newSVIDHelperCommand(),
	)
	return root
}
