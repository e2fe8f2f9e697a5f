package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

// checkPlan decides, with identity.Decide as the webhook does, what the
// ServiceAccount's Pods get, and checks the parts of it beyond the role:
// the profiles, the session name, and the namespace's role policy for
// every role. Each warning of the decision goes to the check of the
// annotation it is about.
func (r *run) checkPlan(ctx context.Context, sa *corev1.ServiceAccount) {
	req := identity.Request{
		Defaults: identity.Defaults{
			Prefix:            r.cfg.AnnotationPrefix,
			Audience:          r.cfg.TokenAudience,
			ExpirationSeconds: r.cfg.TokenExpiration,
			SessionName:       r.cfg.RoleSessionName,
			// doctor does not know the webhook's --spiffe-helper-image; any
			// value lets Decide work out the rest of a token-source spiffe plan.
			SPIFFE: identity.SPIFFE{HelperImage: "unknown"},
		},
		Namespace:            r.cfg.Namespace,
		ServiceAccount:       r.cfg.ServiceAccount,
		PolicyAction:         r.cfg.RolePolicyAction,
		LookupServiceAccount: func() (map[string]string, error) { return sa.Annotations, nil },
	}
	// Without the namespace policy first: what a Pod asks for.
	d := identity.Decide(req)
	r.plan = d.Plan
	var profileWarnings, sessionWarnings []string
	for _, w := range d.Warnings {
		switch {
		case strings.Contains(w, identity.Profiles):
			profileWarnings = append(profileWarnings, w)
		case strings.Contains(w, identity.RoleSessionName):
			sessionWarnings = append(sessionWarnings, w)
		default:
			r.add(CheckRoleARN, StatusWarn, "correct the annotation; the webhook applies the default meanwhile", "%s", w)
		}
	}
	r.checkProfiles(sa, profileWarnings)
	r.checkSessionName(sessionWarnings)
	r.checkRolePolicy(ctx, req, d)
}

func (r *run) skipPlan(because string) {
	r.skip(CheckProfiles, because)
	r.skip(CheckSessionName, because)
	r.skip(CheckRolePolicy, because)
}

// checkProfiles: each profile of the Profiles annotation, and why one is
// left out.
func (r *run) checkProfiles(sa *corev1.ServiceAccount, warnings []string) {
	fix := fmt.Sprintf("kubectl annotate --overwrite serviceaccount -n %s %s %s='name=arn:aws:iam::<account>:role/<name>, ...'",
		r.cfg.Namespace, r.cfg.ServiceAccount, identity.Profiles)
	for _, w := range warnings {
		r.add(CheckProfiles, StatusWarn, fix, "%s", w)
	}
	if _, ok := sa.Annotations[identity.Profiles]; !ok {
		r.add(CheckProfiles, StatusPass, "", "no %s annotation: pods get the one role", identity.Profiles)
		return
	}
	if r.plan == nil || len(r.plan.Profiles) == 0 {
		if len(warnings) == 0 {
			r.add(CheckProfiles, StatusWarn, fix, "annotation %s names no profile", identity.Profiles)
		}
		return
	}
	for _, p := range r.plan.Profiles {
		r.add(CheckProfiles, StatusPass, "", "profile %s is role %s (its trust policy must allow %s too: irsa-webhook trust-policy)",
			p.Name, p.RoleARN, "system:serviceaccount:"+r.cfg.Namespace+":"+r.cfg.ServiceAccount)
	}
}

// checkSessionName: whether CloudTrail will name the Pod.
func (r *run) checkSessionName(warnings []string) {
	for _, w := range warnings {
		r.add(CheckSessionName, StatusWarn, fmt.Sprintf("set the annotation %s to %q or %q", identity.RoleSessionName, identity.SessionNamePod, identity.SessionNameNone), "%s", w)
	}
	switch {
	case r.plan == nil:
		r.skip(CheckSessionName, "the pods get no role")
	case r.plan.SessionName == identity.SessionNamePod:
		r.add(CheckSessionName, StatusPass, "", "pods get %s = their own name, so CloudTrail names the pod behind each call", "AWS_ROLE_SESSION_NAME")
	default:
		r.add(CheckSessionName, StatusPass, "", "no session name is set: the SDK's default, so CloudTrail cannot tell the pods apart (opt in with %s: %s or --role-session-name=pod)",
			identity.RoleSessionName, identity.SessionNamePod)
	}
}

// checkRolePolicy: the namespace's AllowedRoleARNs for the role and every
// profile's, decided as the webhook does with --role-policy-action.
func (r *run) checkRolePolicy(ctx context.Context, req identity.Request, asked identity.Decision) {
	if asked.Plan == nil {
		r.skip(CheckRolePolicy, "the pods get no role")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	ns, err := r.kube.CoreV1().Namespaces().Get(ctx, r.cfg.Namespace, metav1.GetOptions{})
	if err != nil {
		r.add(CheckRolePolicy, StatusWarn, "grant get on namespaces to the user doctor runs as, to check the role policy",
			"could not read namespace %s to check its %s annotation: %s", r.cfg.Namespace, identity.AllowedRoleARNs, oneLine(err))
		return
	}
	value, set := ns.Annotations[identity.AllowedRoleARNs]
	if !set {
		r.add(CheckRolePolicy, StatusPass, "", "namespace %s has no %s annotation: it does not restrict roles", r.cfg.Namespace, identity.AllowedRoleARNs)
		return
	}
	req.LookupNamespacePolicy = func() (string, bool, error) { return value, true, nil }
	d := identity.Decide(req)
	fix := fmt.Sprintf("use roles namespace %s allows, or have a cluster administrator allow them in its %s annotation", r.cfg.Namespace, identity.AllowedRoleARNs)
	switch {
	case d.Refusal != nil:
		r.add(CheckRolePolicy, StatusFail, fix, "the webhook refuses the pods: %s", d.Refusal.Message)
		return
	case d.Plan == nil:
		r.add(CheckRolePolicy, StatusFail, fix, "the pods are admitted without AWS credentials: %s", lastOf(d.Warnings))
		return
	}
	left := false
	for _, w := range d.Warnings {
		if !slices.Contains(asked.Warnings, w) {
			r.add(CheckRolePolicy, StatusWarn, fix, "%s", w)
			left = true
		}
	}
	if !left {
		names := make([]string, 0, len(d.Plan.Profiles))
		for _, p := range d.Plan.Profiles {
			names = append(names, p.Name)
		}
		what := "role " + d.Plan.RoleARN
		if len(names) > 0 {
			what += " and profiles " + strings.Join(names, ", ")
		}
		r.add(CheckRolePolicy, StatusPass, "", "namespace %s's %s allows %s", r.cfg.Namespace, identity.AllowedRoleARNs, what)
	}
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}
