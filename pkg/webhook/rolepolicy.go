package webhook

import (
	"context"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
)

// Namespaces looks up the policy annotations of a Namespace; namespace is
// always "" (Namespaces are cluster-scoped). An error means the policy is
// unknown, and the Pod is denied rather than guessed about.
type Namespaces interface {
	Get(ctx context.Context, namespace, name string) (metacache.Entry, error)
}

// namespacePolicy is the lookup identity.Decide asks for the namespace's
// role policy; nil when the policy is off.
func (h *Handler) namespacePolicy(ctx context.Context, namespace string) func() (string, bool, error) {
	if h.Namespaces == nil {
		return nil
	}
	return func() (string, bool, error) {
		ns, err := h.Namespaces.Get(ctx, "", namespace)
		if err != nil {
			return "", false, err
		}
		value, set := ns.Annotations[identity.AllowedRoleARNs]
		return value, set, nil
	}
}
