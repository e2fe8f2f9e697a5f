package identity

import (
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Values of Request.PolicyAction: what a role outside the namespace's
// AllowedRoleARNs earns. Either way the role is never injected.
const (
	// RolePolicyDeny refuses the Pod.
	RolePolicyDeny = "deny"
	// RolePolicyWarn admits the Pod without credentials, with a warning.
	RolePolicyWarn = "warn"
)

// ReasonRoleNotAllowed: the namespace's AllowedRoleARNs does not allow the
// role the ServiceAccount asks for.
const ReasonRoleNotAllowed = "role not allowed by namespace policy"

// Request is everything a decision about one Pod depends on. The lookups
// are asked lazily, in the order the rules need them, so a Pod that opted
// out costs no ServiceAccount lookup and a Pod that gets no role costs no
// namespace lookup; Decide does no I/O of its own.
type Request struct {
	Defaults Defaults
	// Namespace and ServiceAccount name the Pod's ServiceAccount, for the
	// messages.
	Namespace, ServiceAccount string
	PodLabels, PodAnnotations map[string]string
	// PolicyAction is RolePolicyDeny (also when empty) or RolePolicyWarn.
	PolicyAction string

	// LookupServiceAccount returns the ServiceAccount's annotations (nil
	// when it has none, or does not exist). An error means the answer is
	// unknown.
	LookupServiceAccount func() (map[string]string, error)
	// LookupNamespacePolicy returns the namespace's AllowedRoleARNs value
	// and whether the annotation is set at all. Nil turns the namespace
	// role policy off. An error means the policy is unknown.
	LookupNamespacePolicy func() (value string, set bool, err error)
}

// Refusal says why a Pod must not be admitted.
type Refusal struct {
	// Message is for the person who created the Pod.
	Message string
	// Retry is set when the answer is unknown (a lookup failed), so
	// retrying may succeed; otherwise the Pod asked for what it may not
	// have.
	Retry bool
}

// Decide is the one decision about a Pod: the Plan it gets, or nothing
// (Reason), or a Refusal; with warnings for the person who created it
// either way. The rules, in order:
//
//  1. the opt-out label or annotation wins over everything;
//  2. the ServiceAccount's annotations decide whether and how the Pod is
//     opted in (see resolve for the precedence of each value);
//  3. the namespace's AllowedRoleARNs, when the policy is on, decides
//     whether that role, and each profile's (Profiles), may be injected.
//
// A lookup that fails refuses the Pod as retryable: it is never admitted on
// a guess, with or without credentials.
func Decide(r Request) Decision {
	k := Keys{Prefix: r.Defaults.Prefix}
	if optedOut(k, r.PodLabels, r.PodAnnotations) {
		return Decision{Reason: ReasonOptedOut}
	}

	sa, err := r.LookupServiceAccount()
	if err != nil {
		return Decision{Reason: err.Error(), Refusal: &Refusal{Retry: true, Message: fmt.Sprintf(
			"irsa-webhook could not look up service account %s/%s to decide whether this pod gets AWS credentials: %v; "+
				"the pod was not admitted without them, retry shortly", r.Namespace, r.ServiceAccount, err)}}
	}

	d := resolve(r.Defaults, r.Namespace, r.ServiceAccount, sa, r.PodAnnotations)
	if d.Plan == nil || r.LookupNamespacePolicy == nil {
		return d
	}
	return r.checkNamespacePolicy(d)
}

// optedOut: the presence of the opt-out key is what counts, whatever its
// value, so that it agrees with the webhook configuration's objectSelector
// (key DoesNotExist).
func optedOut(k Keys, podLabels, podAnnotations map[string]string) bool {
	key := k.Key(SkipPodIdentityWebhook)
	_, label := podLabels[key]
	_, annotation := podAnnotations[key]
	return label || annotation
}

// checkNamespacePolicy applies the namespace's AllowedRoleARNs to the role
// d's Plan asks for, then to each profile's: a profile's role outside it
// refuses the Pod too, or, under RolePolicyWarn, is left out with a
// warning (and a container that asked for it gets nothing).
func (r Request) checkNamespacePolicy(d Decision) Decision {
	arn := d.Plan.RoleARN
	value, set, err := r.LookupNamespacePolicy()
	if err != nil {
		return Decision{Reason: err.Error(), Refusal: &Refusal{Retry: true, Message: fmt.Sprintf(
			"irsa-webhook could not read namespace %s's %s annotation to check whether role %s is allowed: %v; "+
				"the pod was not admitted without AWS credentials, retry shortly", r.Namespace, AllowedRoleARNs, arn, err)}}
	}
	if !set {
		return d
	}
	policy := ParseRolePolicy(value)
	if !policy.Allows(arn) {
		msg := r.notAllowed(policy, "role "+arn)
		if r.PolicyAction == RolePolicyWarn {
			return Decision{Reason: ReasonRoleNotAllowed, Warnings: append(d.Warnings, msg+"; the pod was admitted without AWS credentials")}
		}
		return Decision{Reason: ReasonRoleNotAllowed, Refusal: &Refusal{Message: msg}, Warnings: d.Warnings}
	}

	plan := d.Plan
	kept := plan.Profiles[:0:0]
	for _, pr := range plan.Profiles {
		if policy.Allows(pr.RoleARN) {
			kept = append(kept, pr)
			continue
		}
		msg := r.notAllowed(policy, fmt.Sprintf("role %s for profile %q (annotation %s)", pr.RoleARN, pr.Name, Profiles))
		if r.PolicyAction != RolePolicyWarn {
			return Decision{Reason: ReasonRoleNotAllowed, Refusal: &Refusal{Message: msg}, Warnings: d.Warnings}
		}
		d.Warnings = append(d.Warnings, msg+"; the pod was admitted without that profile")
		for _, c := range slices.Sorted(maps.Keys(plan.ContainerProfiles)) {
			if plan.ContainerProfiles[c] == pr.Name {
				delete(plan.ContainerProfiles, c)
				plan.skip(c)
				d.Warnings = append(d.Warnings, fmt.Sprintf("container %q asked for profile %q (annotation %s), which was left out; the container gets no AWS credentials", c, pr.Name, ContainerProfiles))
			}
		}
	}
	if len(kept) == 0 {
		kept = nil
	}
	plan.Profiles = kept
	return d
}

// notAllowed is the message for a role policy refuses. The answer goes to
// whoever sent the review, which may not be the API server: it names the
// role asked for, never the patterns allowed.
func (r Request) notAllowed(policy RolePolicy, what string) string {
	allowed := "does not allow it"
	if len(policy.Patterns) == 0 {
		allowed = "allows no role"
	}
	msg := fmt.Sprintf("service account %s/%s asks for %s, which namespace %s does not allow: its annotation %s %s",
		r.Namespace, r.ServiceAccount, what, r.Namespace, AllowedRoleARNs, allowed)
	if n := len(policy.Invalid); n > 0 {
		msg += fmt.Sprintf(" (%d of its patterns are invalid and match nothing)", n)
	}
	return msg + "; use an allowed role or ask a cluster administrator which roles the annotation allows"
}

// Shorten cuts s to at most n bytes, on a rune boundary, marking the cut:
// annotation values quoted in messages are the user's, and may be long.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
