// Command irsa-webhook gives Kubernetes pods short-lived AWS credentials
// through IAM roles for service accounts: a mutating admission webhook, the
// OIDC discovery companion AWS needs, and the admin's tools around them.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
