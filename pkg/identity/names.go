package identity

import (
	"fmt"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
)

// ValidateNamespaceName reports why ns is not a Namespace name (a DNS
// label), or nil: the API server's own rule, so a name refused here could
// never exist in a cluster.
func ValidateNamespaceName(ns string) error {
	if msgs := apivalidation.ValidateNamespaceName(ns, false); len(msgs) > 0 {
		return fmt.Errorf("%q is not a namespace name: %s", ns, msgs[0])
	}
	return nil
}

// ValidateServiceAccountName reports why name is not a ServiceAccount name
// (a DNS subdomain), or nil: the API server's own rule.
func ValidateServiceAccountName(name string) error {
	if msgs := apivalidation.ValidateServiceAccountName(name, false); len(msgs) > 0 {
		return fmt.Errorf("%q is not a ServiceAccount name: %s", name, msgs[0])
	}
	return nil
}
