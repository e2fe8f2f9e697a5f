package identity

import (
	"fmt"
	"strconv"
	"strings"
)

// Defaults are the cluster-wide settings from flags: the lowest-precedence
// source of every value.
type Defaults struct {
	Prefix            string
	Audience          string
	MountPath         string
	ExpirationSeconds int64
	Region            string
	RegionalSTS       bool
	// SPIFFE holds the flag settings of the SPIFFE token source; its ID is
	// always empty here.
	SPIFFE SPIFFE
}

// SPIFFE is how a Pod with TokenSourceSPIFFE gets its JWT-SVID.
type SPIFFE struct {
	// ID, when not empty, is the SPIFFE ID to fetch a JWT-SVID for.
	ID string
	// HelperImage runs `irsa-webhook svid-helper` as the native sidecar.
	HelperImage string
	// SocketHostPath, when not empty, is the node directory holding the
	// Workload API socket, mounted with hostPath; empty means the SPIFFE CSI
	// driver (csi.spiffe.io) provides it.
	SocketHostPath string
	// SocketName is the socket's file name inside that directory.
	SocketName string
}

// Plan is everything the mutation needs to know to give a Pod its identity.
type Plan struct {
	RoleARN           string
	Audience          string
	ExpirationSeconds int64
	// Region, when not empty, is written as AWS_REGION and AWS_DEFAULT_REGION.
	Region      string
	RegionalSTS bool
	MountPath   string
	// TokenSource is TokenSourceServiceAccount or TokenSourceSPIFFE.
	TokenSource string
	// SPIFFE is only meaningful with TokenSourceSPIFFE. ExpirationSeconds is
	// then unused: the SPIRE server decides the JWT-SVID's lifetime.
	SPIFFE SPIFFE
	// SkipContainers names containers that get nothing.
	SkipContainers map[string]bool
}

// Decision is the outcome of Resolve: a Plan when the Pod is to be given an
// identity, and warnings for the person who created it either way.
type Decision struct {
	// Plan is nil when the Pod gets nothing.
	Plan *Plan
	// Reason says why Plan is nil, for logs ("not opted in", "opted out", ...).
	Reason   string
	Warnings []string
}

// Reasons a Pod gets nothing.
const (
	ReasonNotOptedIn = "service account has no role annotation"
	ReasonOptedOut   = "pod opted out"
	ReasonInvalidARN = "invalid role annotation"
	// ReasonInvalidTokenSource: a token source that is neither value. Falling
	// back to another source would hand out a token the role's trust policy
	// was not written for, so the Pod gets nothing and a warning.
	ReasonInvalidTokenSource = "invalid token source annotation"
	// ReasonSPIFFEUnconfigured: the webhook was not told which image runs
	// the SVID helper (--spiffe-helper-image).
	ReasonSPIFFEUnconfigured = "spiffe token source not configured"
)

// Resolve decides what a Pod gets from its ServiceAccount's annotations, its
// own labels and annotations, and the flag defaults.
//
// Precedence, for every value that more than one source can set:
// Pod annotation > ServiceAccount annotation > flag. A value that does not
// parse is reported as a warning and the next source down applies; a token
// lifetime outside [MinTokenExpiration, MaxTokenExpiration] is clamped, with
// a warning.
func Resolve(d Defaults, saAnnotations, podLabels, podAnnotations map[string]string) Decision {
	k := Keys{Prefix: d.Prefix}
	optOut := k.Key(SkipPodIdentityWebhook)
	if _, ok := podLabels[optOut]; ok {
		return Decision{Reason: ReasonOptedOut}
	}
	if _, ok := podAnnotations[optOut]; ok {
		return Decision{Reason: ReasonOptedOut}
	}

	arn, ok := saAnnotations[k.Key(RoleARN)]
	if !ok {
		return Decision{Reason: ReasonNotOptedIn}
	}
	if err := ValidateRoleARN(arn); err != nil {
		return Decision{
			Reason:   ReasonInvalidARN,
			Warnings: []string{fmt.Sprintf("service account annotation %s %v; no AWS credentials were injected", k.Key(RoleARN), err)},
		}
	}

	source := TokenSourceServiceAccount
	if v, ok := saAnnotations[k.Key(TokenSource)]; ok {
		switch strings.TrimSpace(v) {
		case TokenSourceServiceAccount, TokenSourceSPIFFE:
			source = strings.TrimSpace(v)
		default:
			return Decision{
				Reason: ReasonInvalidTokenSource,
				Warnings: []string{fmt.Sprintf("service account annotation %s is %q, want %q or %q; no AWS credentials were injected",
					k.Key(TokenSource), v, TokenSourceServiceAccount, TokenSourceSPIFFE)},
			}
		}
	}

	if source == TokenSourceSPIFFE && d.SPIFFE.HelperImage == "" {
		return Decision{
			Reason: ReasonSPIFFEUnconfigured,
			Warnings: []string{fmt.Sprintf("service account annotation %s is %q but the webhook runs without --spiffe-helper-image; no AWS credentials were injected, ask the cluster admin",
				k.Key(TokenSource), TokenSourceSPIFFE)},
		}
	}

	var warnings []string
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }

	plan := &Plan{
		RoleARN:           arn,
		Audience:          d.Audience,
		ExpirationSeconds: d.ExpirationSeconds,
		Region:            d.Region,
		RegionalSTS:       d.RegionalSTS,
		MountPath:         d.MountPath,
		TokenSource:       source,
	}
	if source == TokenSourceSPIFFE {
		plan.SPIFFE = d.SPIFFE
		plan.SPIFFE.ID = ""
		for _, src := range []struct {
			kind string
			ann  map[string]string
		}{{"service account", saAnnotations}, {"pod", podAnnotations}} {
			v, ok := src.ann[k.Key(SPIFFEID)]
			if !ok {
				continue
			}
			if err := ValidateSPIFFEID(v); err != nil {
				warn("%s annotation %s %v; ignored", src.kind, k.Key(SPIFFEID), err)
				continue
			}
			plan.SPIFFE.ID = v
		}
	}

	if v, ok := saAnnotations[k.Key(Audience)]; ok {
		if err := ValidateAudience(v); err != nil {
			warn("service account annotation %s %v; using the default audience %q", k.Key(Audience), err, d.Audience)
		} else {
			plan.Audience = v
		}
	}

	if v, ok := saAnnotations[k.Key(STSRegionalEndpoints)]; ok {
		switch strings.TrimSpace(v) {
		case "true":
			plan.RegionalSTS = true
		case "false":
			plan.RegionalSTS = false
		default:
			warn("service account annotation %s is %q, want \"true\" or \"false\"; using the default (%t)", k.Key(STSRegionalEndpoints), v, d.RegionalSTS)
		}
	}

	// Token lifetime: flag, then the ServiceAccount, then the Pod, each
	// overriding the one before when it parses.
	for _, src := range []struct {
		kind string
		ann  map[string]string
	}{{"service account", saAnnotations}, {"pod", podAnnotations}} {
		v, ok := src.ann[k.Key(TokenExpiration)]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			warn("%s annotation %s is %q, not a whole number of seconds; ignored", src.kind, k.Key(TokenExpiration), v)
			continue
		}
		plan.ExpirationSeconds = n
		if c := clamp(n); c != n {
			warn("%s annotation %s is %d seconds, outside [%d, %d]; using %d", src.kind, k.Key(TokenExpiration), n, MinTokenExpiration, MaxTokenExpiration, c)
			plan.ExpirationSeconds = c
		}
	}

	if v, ok := podAnnotations[k.Key(SkipContainers)]; ok {
		plan.SkipContainers = parseList(v)
	}

	return Decision{Plan: plan, Warnings: warnings}
}

func clamp(n int64) int64 {
	return min(max(n, MinTokenExpiration), MaxTokenExpiration)
}

// parseList splits a comma-separated list, trimming white space and dropping
// empty items.
func parseList(s string) map[string]bool {
	set := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			set[item] = true
		}
	}
	return set
}
