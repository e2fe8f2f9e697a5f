package webhook

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/nscache"
)

// Namespaces looks up the policy annotations of a Namespace. An error means
// the policy is unknown, and the Pod is denied rather than guessed about.
type Namespaces interface {
	Get(ctx context.Context, name string) (nscache.Entry, error)
}

// reasonRoleNotAllowed is the logged reason of a role the namespace policy
// does not allow.
const reasonRoleNotAllowed = "role not allowed by namespace policy"

// checkRolePolicy applies the namespace's identity.AllowedRoleARNs
// annotation to the role d asks for. ok is false when the Pod must not get
// that role; res is then the answer: refused (403) under RolePolicyDeny,
// admitted without credentials and with a warning under RolePolicyWarn, or
// refused as retryable (503) when the policy cannot be read.
func (h *Handler) checkRolePolicy(ctx context.Context, namespace string, r result, d identity.Decision) (res result, ok bool) {
	if h.Namespaces == nil {
		return r, true
	}
	arn := d.Plan.RoleARN
	ns, err := h.Namespaces.Get(ctx, namespace)
	if err != nil {
		return r.with(outcomeDenied, err.Error(), denied(fmt.Sprintf(
			"irsa-webhook could not read namespace %s's %s annotation to check whether role %s is allowed: %v; "+
				"the pod was not admitted without AWS credentials, retry shortly", namespace, identity.AllowedRoleARNs, arn, err))), false
	}
	value, restricted := ns.Annotations[identity.AllowedRoleARNs]
	if !restricted {
		return r, true
	}
	policy := identity.ParseRolePolicy(value)
	if policy.Allows(arn) {
		return r, true
	}

	allowed := "no role"
	if len(policy.Patterns) > 0 {
		allowed = "roles matching " + shorten(strings.Join(policy.Patterns, ", "), 1024)
	}
	msg := fmt.Sprintf("service account %s/%s asks for role %s, which namespace %s does not allow: its annotation %s allows %s",
		namespace, r.serviceAccount, arn, namespace, identity.AllowedRoleARNs, allowed)
	if len(policy.Invalid) > 0 {
		msg += fmt.Sprintf(" (invalid patterns, which match nothing: %s)", shorten(strings.Join(policy.Invalid, "; "), 1024))
	}
	msg += "; use an allowed role or ask a cluster administrator to change the annotation"

	if h.RolePolicyAction == RolePolicyWarn {
		warnings := append(d.Warnings, msg+"; the pod was admitted without AWS credentials")
		return r.with(outcomeSkipped, reasonRoleNotAllowed, admission.Allowed("").WithWarnings(warnings...)), false
	}
	return r.with(outcomeRefused, reasonRoleNotAllowed, admission.Denied(msg)), false
}

// shorten cuts s to at most n bytes, on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
