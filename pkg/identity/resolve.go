package identity

import (
	"fmt"
	"maps"
	"slices"
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
	// SessionName is SessionNamePod or empty.
	SessionName string
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
	// SessionName is SessionNamePod (AWS_ROLE_SESSION_NAME = the Pod's
	// name) or empty (the SDK's default).
	SessionName string
	MountPath   string
	// TokenSource is TokenSourceServiceAccount or TokenSourceSPIFFE.
	TokenSource string
	// SPIFFE is only meaningful with TokenSourceSPIFFE. ExpirationSeconds is
	// then unused: the SPIRE server decides the JWT-SVID's lifetime.
	SPIFFE SPIFFE
	// SkipContainers names containers that get nothing.
	SkipContainers map[string]bool
	// Profiles are the roles beyond RoleARN (the Profiles annotation), each
	// an AWS config profile over the same token; empty means no config
	// file. Every role in it passed the namespace role policy.
	Profiles []Profile
	// ContainerProfiles maps a container to the profile its AWS_PROFILE
	// names, always one of Profiles (the ContainerProfiles annotation).
	ContainerProfiles map[string]string
}

// Decision is the outcome of Decide: a Plan when the Pod is to be given an
// identity, a Refusal when it must not be admitted, and warnings for the
// person who created it either way.
type Decision struct {
	// Plan is nil when the Pod gets nothing.
	Plan *Plan
	// Refusal, when not nil, says why the Pod must not be admitted.
	Refusal *Refusal
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
	// ReasonProfileNotGranted: the Pod's ContainerProfiles asks for a
	// profile its ServiceAccount does not grant, or does not parse.
	ReasonProfileNotGranted = "container profile not granted"
)

// resolve decides what a Pod that did not opt out gets from its
// ServiceAccount's annotations, its own annotations and the flag defaults.
//
// Precedence, for every value that more than one source can set:
// Pod annotation > ServiceAccount annotation > flag. A value that does not
// parse is reported as a warning and the next source down applies; a token
// lifetime outside [MinTokenExpiration, MaxTokenExpiration] is clamped, with
// a warning. Each value is read in one function below.
func resolve(d Defaults, namespace, serviceAccount string, sa, pod map[string]string) Decision {
	v := values{k: Keys{Prefix: d.Prefix}, namespace: namespace, serviceAccount: serviceAccount, sa: sa, pod: pod}
	arn, ok := sa[v.k.Key(RoleARN)]
	if !ok {
		if _, profiles := sa[Profiles]; profiles {
			// Profiles come with a default role: an unmodified app must
			// behave as it did before them.
			return Decision{Reason: ReasonNotOptedIn, Warnings: []string{fmt.Sprintf(
				"service account annotation %s is set but %s is not; profiles need a default role, so no AWS credentials were injected",
				Profiles, v.k.Key(RoleARN))}}
		}
		return Decision{Reason: ReasonNotOptedIn}
	}
	if err := ValidateRoleARN(arn); err != nil {
		return Decision{
			Reason:   ReasonInvalidARN,
			Warnings: []string{fmt.Sprintf("service account annotation %s %v; no AWS credentials were injected", v.k.Key(RoleARN), err)},
		}
	}
	source, refused := v.tokenSource(d)
	if refused != nil {
		return *refused
	}
	// The order of the reads is the order of the warnings.
	plan := &Plan{RoleARN: arn, MountPath: d.MountPath, TokenSource: source}
	if source == TokenSourceSPIFFE {
		plan.SPIFFE = d.SPIFFE
		plan.SPIFFE.ID = v.spiffeID()
	}
	plan.Audience = v.audience(d.Audience)
	plan.RegionalSTS = v.regionalSTS(d.RegionalSTS)
	plan.ExpirationSeconds = v.expiration(d.ExpirationSeconds)
	plan.Region = v.region(d.Region)
	plan.SessionName = v.sessionName(d.SessionName)
	plan.SkipContainers = v.skipContainers()
	if refusal := v.profiles(plan); refusal != nil {
		return Decision{Reason: ReasonProfileNotGranted, Refusal: refusal, Warnings: v.warnings}
	}
	return Decision{Plan: plan, Warnings: v.warnings}
}

// values reads each setting from the annotations that may hold it,
// collecting a warning for each value that does not parse.
type values struct {
	k Keys
	// namespace and serviceAccount name the ServiceAccount, for the
	// messages.
	namespace, serviceAccount string
	sa, pod                   map[string]string
	warnings                  []string
}

func (v *values) warn(format string, args ...any) {
	v.warnings = append(v.warnings, fmt.Sprintf(format, args...))
}

// source is one annotation map, named for the messages.
type source struct {
	kind string
	ann  map[string]string
}

// saThenPod lists the sources of a value a Pod may override, lowest
// precedence first.
func (v *values) saThenPod() []source {
	return []source{{"service account", v.sa}, {"pod", v.pod}}
}

// tokenSource: ServiceAccount only. A value that is neither source, or the
// SPIFFE source on a webhook not configured for it, gives the Pod nothing:
// falling back would hand out a token the role's trust policy was not
// written for.
func (v *values) tokenSource(d Defaults) (string, *Decision) {
	key := v.k.Key(TokenSource)
	s, ok := v.sa[key]
	if !ok {
		return TokenSourceServiceAccount, nil
	}
	switch s = strings.TrimSpace(s); s {
	case TokenSourceServiceAccount:
		return s, nil
	case TokenSourceSPIFFE:
		if d.SPIFFE.HelperImage == "" {
			return "", &Decision{
				Reason: ReasonSPIFFEUnconfigured,
				Warnings: []string{fmt.Sprintf("service account annotation %s is %q but the webhook runs without --spiffe-helper-image; no AWS credentials were injected, ask the cluster admin",
					key, TokenSourceSPIFFE)},
			}
		}
		return s, nil
	}
	return "", &Decision{
		Reason: ReasonInvalidTokenSource,
		Warnings: []string{fmt.Sprintf("service account annotation %s is %q, want %q or %q; no AWS credentials were injected",
			key, v.sa[key], TokenSourceServiceAccount, TokenSourceSPIFFE)},
	}
}

// spiffeID: Pod > ServiceAccount; empty means the Workload API's default.
func (v *values) spiffeID() string {
	id := ""
	for _, src := range v.saThenPod() {
		s, ok := src.ann[v.k.Key(SPIFFEID)]
		if !ok {
			continue
		}
		if err := ValidateSPIFFEID(s); err != nil {
			v.warn("%s annotation %s %v; ignored", src.kind, v.k.Key(SPIFFEID), err)
			continue
		}
		id = s
	}
	return id
}

// audience: ServiceAccount > flag.
func (v *values) audience(def string) string {
	s, ok := v.sa[v.k.Key(Audience)]
	if !ok {
		return def
	}
	if err := ValidateAudience(s); err != nil {
		v.warn("service account annotation %s %v; using the default audience %q", v.k.Key(Audience), err, def)
		return def
	}
	return s
}

// regionalSTS: ServiceAccount > flag, in both directions.
func (v *values) regionalSTS(def bool) bool {
	s, ok := v.sa[v.k.Key(STSRegionalEndpoints)]
	if !ok {
		return def
	}
	switch strings.TrimSpace(s) {
	case "true":
		return true
	case "false":
		return false
	}
	v.warn("service account annotation %s is %q, want \"true\" or \"false\"; using the default (%t)", v.k.Key(STSRegionalEndpoints), s, def)
	return def
}

// expiration: Pod > ServiceAccount > flag, each overriding the one before
// when it parses; clamped to what the API server and AWS accept.
func (v *values) expiration(def int64) int64 {
	n := def
	for _, src := range v.saThenPod() {
		s, ok := src.ann[v.k.Key(TokenExpiration)]
		if !ok {
			continue
		}
		parsed, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			v.warn("%s annotation %s is %q, not a whole number of seconds; ignored", src.kind, v.k.Key(TokenExpiration), s)
			continue
		}
		n = parsed
		if c := clamp(parsed); c != parsed {
			v.warn("%s annotation %s is %d seconds, outside [%d, %d]; using %d", src.kind, v.k.Key(TokenExpiration), parsed, MinTokenExpiration, MaxTokenExpiration, c)
			n = c
		}
	}
	return n
}

// region: ServiceAccount > flag.
func (v *values) region(def string) string {
	s, ok := v.sa[Region]
	if !ok {
		return def
	}
	if err := ValidateRegion(strings.TrimSpace(s)); err != nil {
		v.warn("service account annotation %s %v; using the default region %q", Region, err, def)
		return def
	}
	return strings.TrimSpace(s)
}

// sessionName: ServiceAccount > flag.
func (v *values) sessionName(def string) string {
	s, ok := v.sa[RoleSessionName]
	if !ok {
		return def
	}
	switch strings.TrimSpace(s) {
	case SessionNamePod:
		return SessionNamePod
	case SessionNameNone:
		return ""
	}
	v.warn("service account annotation %s is %q, want %q or %q; using the default", RoleSessionName, Shorten(s, 64), SessionNamePod, SessionNameNone)
	return def
}

// skipContainers: Pod only.
func (v *values) skipContainers() map[string]bool {
	s, ok := v.pod[v.k.Key(SkipContainers)]
	if !ok {
		return nil
	}
	return parseList(s)
}

// profiles: ServiceAccount only, and the Pod's choice among them per
// container. A container that asks for a profile the ServiceAccount names
// but cannot use (its role is invalid) gets nothing, with a warning; one that asks for a profile the
// ServiceAccount does not name at all refuses the Pod: a typo must not run
// a container with a role it did not ask for. A container in
// SkipContainers stays skipped.
func (v *values) profiles(p *Plan) *Refusal {
	var parsed ParsedProfiles
	if value, ok := v.sa[Profiles]; ok {
		parsed = ParseProfiles(value)
		v.warnings = append(v.warnings, parsed.Warnings...)
	}
	p.Profiles = parsed.Profiles
	value, ok := v.pod[ContainerProfiles]
	if !ok {
		return nil
	}
	asked, err := ParseContainerProfiles(value)
	if err != nil {
		return &Refusal{Message: fmt.Sprintf("pod annotation %s: %v; want container=profile, ... with profiles of service account %s", ContainerProfiles, err, v.namespace+"/"+v.serviceAccount)}
	}
	for _, container := range slices.Sorted(maps.Keys(asked)) {
		name := asked[container]
		switch {
		case p.SkipContainers[container]:
		case slices.ContainsFunc(p.Profiles, func(pr Profile) bool { return pr.Name == name }):
			if p.ContainerProfiles == nil {
				p.ContainerProfiles = map[string]string{}
			}
			p.ContainerProfiles[container] = name
		case parsed.Declared[name]:
			v.warn("pod annotation %s: container %q asks for profile %q, which service account %s names but cannot give (see the other warnings); the container gets no AWS credentials",
				ContainerProfiles, Shorten(container, 64), name, v.namespace+"/"+v.serviceAccount)
			p.skip(container)
		default:
			granted := "its annotation " + Profiles + " is not set"
			if names := slices.Sorted(maps.Keys(parsed.Declared)); len(names) > 0 {
				granted = "it grants " + strings.Join(names, ", ")
			}
			return &Refusal{Message: fmt.Sprintf("pod annotation %s asks for profile %q for container %q, which service account %s does not grant (%s); ask for a granted profile or have the service account grant it",
				ContainerProfiles, Shorten(name, 64), Shorten(container, 64), v.namespace+"/"+v.serviceAccount, granted)}
		}
	}
	return nil
}

// skip adds container to SkipContainers, which may be nil.
func (p *Plan) skip(container string) {
	if p.SkipContainers == nil {
		p.SkipContainers = map[string]bool{}
	}
	p.SkipContainers[container] = true
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
