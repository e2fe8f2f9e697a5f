package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	testRole  = "arn:aws:iam::111122223333:role/app"
	otherRole = "arn:aws:iam::111122223333:role/other"
	thirdRole = "arn:aws:iam::111122223333:role/third"
)

func testDefaults() Defaults {
	return Defaults{
		Prefix: DefaultPrefix, Audience: DefaultAudience, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount",
		ExpirationSeconds: DefaultTokenExpiration, Region: "us-west-2", RegionalSTS: true,
	}
}

func key(name string) string { return DefaultPrefix + "/" + name }

// basePlan is the Plan of a ServiceAccount with only a role under testDefaults.
func basePlan() *Plan {
	d := testDefaults()
	return &Plan{RoleARN: testRole, Audience: d.Audience, ExpirationSeconds: d.ExpirationSeconds, Region: d.Region,
		RegionalSTS: true, MountPath: d.MountPath, TokenSource: TokenSourceServiceAccount}
}

// TestDecidePrecedence holds every rule of Decide: the opt-out first, then
// Pod annotation > ServiceAccount annotation > flag for each value, then
// the namespace policy; and that a bad value warns and falls back.
func TestDecidePrecedence(t *testing.T) {
	withPlan := func(f func(*Plan)) *Plan { p := basePlan(); f(p); return p }
	spiffeDefaults := testDefaults()
	spiffeDefaults.SPIFFE = SPIFFE{HelperImage: "helper:1", SocketName: "agent.sock"}
	sessionDefaults := testDefaults()
	sessionDefaults.SessionName = SessionNamePod
	for name, tc := range map[string]struct {
		defaults      *Defaults
		sa            map[string]string
		podLabels     map[string]string
		podAnnots     map[string]string
		policy        *string
		action        string
		wantPlan      *Plan
		wantReason    string
		wantRefusal   bool
		wantRetry     bool
		wantWarnings  []string // substrings, one per warning, in order
		wantNoSALooks bool
	}{
		"role only: the flags": {sa: map[string]string{key(RoleARN): testRole}, wantPlan: basePlan()},
		"no role: nothing":     {sa: map[string]string{key(Audience): "x"}, wantReason: ReasonNotOptedIn},
		"opt-out label wins over a role, without a lookup": {
			sa: map[string]string{key(RoleARN): testRole}, podLabels: map[string]string{key(SkipPodIdentityWebhook): "false"},
			wantReason: ReasonOptedOut, wantNoSALooks: true,
		},
		"opt-out annotation, any value": {
			sa: map[string]string{key(RoleARN): testRole}, podAnnots: map[string]string{key(SkipPodIdentityWebhook): ""},
			wantReason: ReasonOptedOut, wantNoSALooks: true,
		},
		"invalid role: nothing, warned": {
			sa: map[string]string{key(RoleARN): "arn:aws:iam::1:role/x"}, wantReason: ReasonInvalidARN, wantWarnings: []string{key(RoleARN)},
		},
		"service account audience over the flag": {
			sa:       map[string]string{key(RoleARN): testRole, key(Audience): "other-aud"},
			wantPlan: withPlan(func(p *Plan) { p.Audience = "other-aud" }),
		},
		"bad audience: the flag, warned": {
			sa: map[string]string{key(RoleARN): testRole, key(Audience): "a b"}, wantPlan: basePlan(), wantWarnings: []string{key(Audience)},
		},
		"service account turns regional STS off": {
			sa:       map[string]string{key(RoleARN): testRole, key(STSRegionalEndpoints): "false"},
			wantPlan: withPlan(func(p *Plan) { p.RegionalSTS = false }),
		},
		"bad regional STS value: the flag, warned": {
			sa: map[string]string{key(RoleARN): testRole, key(STSRegionalEndpoints): "yes"}, wantPlan: basePlan(),
			wantWarnings: []string{key(STSRegionalEndpoints)},
		},
		"pod expiration over the service account's over the flag": {
			sa:        map[string]string{key(RoleARN): testRole, key(TokenExpiration): "3600"},
			podAnnots: map[string]string{key(TokenExpiration): "7200"},
			wantPlan:  withPlan(func(p *Plan) { p.ExpirationSeconds = 7200 }),
		},
		"service account expiration over the flag": {
			sa:       map[string]string{key(RoleARN): testRole, key(TokenExpiration): "3600"},
			wantPlan: withPlan(func(p *Plan) { p.ExpirationSeconds = 3600 }),
		},
		"bad pod expiration: the service account's, warned": {
			sa:        map[string]string{key(RoleARN): testRole, key(TokenExpiration): "3600"},
			podAnnots: map[string]string{key(TokenExpiration): "1h"},
			wantPlan:  withPlan(func(p *Plan) { p.ExpirationSeconds = 3600 }), wantWarnings: []string{"pod annotation " + key(TokenExpiration)},
		},
		"expiration clamped, warned": {
			sa: map[string]string{key(RoleARN): testRole, key(TokenExpiration): "60"}, wantPlan: withPlan(func(p *Plan) { p.ExpirationSeconds = MinTokenExpiration }),
			wantWarnings: []string{"outside"},
		},
		"service account region over the flag": {
			sa:       map[string]string{key(RoleARN): testRole, Region: " eu-central-1 "},
			wantPlan: withPlan(func(p *Plan) { p.Region = "eu-central-1" }),
		},
		"bad region: the flag, warned": {
			sa: map[string]string{key(RoleARN): testRole, Region: "mars-north"}, wantPlan: basePlan(), wantWarnings: []string{Region},
		},
		"region is not read under the EKS prefix": {
			sa: map[string]string{key(RoleARN): testRole, key("region"): "eu-central-1"}, wantPlan: basePlan(),
		},
		"session name from the flag": {
			defaults: &sessionDefaults, sa: map[string]string{key(RoleARN): testRole},
			wantPlan: withPlan(func(p *Plan) { p.SessionName = SessionNamePod }),
		},
		"service account session name over an empty flag": {
			sa:       map[string]string{key(RoleARN): testRole, RoleSessionName: "pod"},
			wantPlan: withPlan(func(p *Plan) { p.SessionName = SessionNamePod }),
		},
		"service account none turns the flag off": {
			defaults: &sessionDefaults, sa: map[string]string{key(RoleARN): testRole, RoleSessionName: "none"}, wantPlan: basePlan(),
		},
		"bad session name value: the flag, warned": {
			defaults: &sessionDefaults, sa: map[string]string{key(RoleARN): testRole, RoleSessionName: "yes"},
			wantPlan: withPlan(func(p *Plan) { p.SessionName = SessionNamePod }), wantWarnings: []string{RoleSessionName},
		},
		"skip containers from the pod": {
			sa: map[string]string{key(RoleARN): testRole}, podAnnots: map[string]string{key(SkipContainers): " a, ,b "},
			wantPlan: withPlan(func(p *Plan) { p.SkipContainers = map[string]bool{"a": true, "b": true} }),
		},
		"bad token source: nothing, warned": {
			sa: map[string]string{key(RoleARN): testRole, key(TokenSource): "vault"}, wantReason: ReasonInvalidTokenSource,
			wantWarnings: []string{key(TokenSource)},
		},
		"spiffe without a helper image: nothing, warned": {
			sa: map[string]string{key(RoleARN): testRole, key(TokenSource): TokenSourceSPIFFE}, wantReason: ReasonSPIFFEUnconfigured,
			wantWarnings: []string{"--spiffe-helper-image"},
		},
		"spiffe: pod ID over the service account's; a bad one warned before the audience's": {
			defaults: &spiffeDefaults,
			sa: map[string]string{key(RoleARN): testRole, key(TokenSource): TokenSourceSPIFFE, key(SPIFFEID): "spiffe://example.org/sa",
				key(Audience): "a b"},
			podAnnots: map[string]string{key(SPIFFEID): "not-an-id"},
			wantPlan: withPlan(func(p *Plan) {
				p.TokenSource = TokenSourceSPIFFE
				p.SPIFFE = SPIFFE{ID: "spiffe://example.org/sa", HelperImage: "helper:1", SocketName: "agent.sock"}
			}),
			wantWarnings: []string{"pod annotation " + key(SPIFFEID), key(Audience)},
		},
		"namespace policy absent: allowed": {
			sa: map[string]string{key(RoleARN): testRole}, wantPlan: basePlan(),
		},
		"namespace policy allows the role": {
			sa: map[string]string{key(RoleARN): testRole}, policy: ptr("arn:aws:iam::111122223333:role/a*"), wantPlan: basePlan(),
		},
		"namespace policy refuses another role": {
			sa: map[string]string{key(RoleARN): otherRole}, policy: ptr("arn:aws:iam::111122223333:role/app"),
			wantReason: ReasonRoleNotAllowed, wantRefusal: true,
		},
		"empty namespace policy allows no role": {
			sa: map[string]string{key(RoleARN): testRole}, policy: ptr(""), wantReason: ReasonRoleNotAllowed, wantRefusal: true,
		},
		"namespace policy under warn: nothing, warned": {
			sa: map[string]string{key(RoleARN): otherRole}, policy: ptr("arn:aws:iam::111122223333:role/app"), action: RolePolicyWarn,
			wantReason: ReasonRoleNotAllowed, wantWarnings: []string{"admitted without AWS credentials"},
		},
		"profiles: in the order given": {
			sa: map[string]string{key(RoleARN): testRole, Profiles: " reader=" + otherRole + ",writer = " + thirdRole + " ,"},
			wantPlan: withPlan(func(p *Plan) {
				p.Profiles = []Profile{{"reader", otherRole}, {"writer", thirdRole}}
			}),
		},
		"profiles without role-arn: nothing, warned": {
			sa: map[string]string{Profiles: "reader=" + otherRole}, wantReason: ReasonNotOptedIn, wantWarnings: []string{"profiles need a default role"},
		},
		"bad profiles are left out, warned; the rest stay": {
			sa:           map[string]string{key(RoleARN): testRole, Profiles: "default=" + otherRole + ", a/b=" + otherRole + ", x, dup=" + otherRole + ", dup=" + thirdRole + ", bad=arn:aws:iam::1:role/x, ok=" + thirdRole},
			wantPlan:     withPlan(func(p *Plan) { p.Profiles = []Profile{{"ok", thirdRole}} }),
			wantWarnings: []string{`"default" is reserved`, `"a/b"`, `"x" is not name=`, `"dup" is named more than once`, `"bad"`},
		},
		"container profiles: AWS_PROFILE among the granted": {
			sa:        map[string]string{key(RoleARN): testRole, Profiles: "writer=" + thirdRole},
			podAnnots: map[string]string{ContainerProfiles: "uploader=writer"},
			wantPlan: withPlan(func(p *Plan) {
				p.Profiles = []Profile{{"writer", thirdRole}}
				p.ContainerProfiles = map[string]string{"uploader": "writer"}
			}),
		},
		"container profiles: a profile not granted refuses the pod": {
			sa:         map[string]string{key(RoleARN): testRole, Profiles: "writer=" + thirdRole},
			podAnnots:  map[string]string{ContainerProfiles: "uploader=admin"},
			wantReason: ReasonProfileNotGranted, wantRefusal: true,
		},
		"container profiles without any profile refuse the pod": {
			sa: map[string]string{key(RoleARN): testRole}, podAnnots: map[string]string{ContainerProfiles: "uploader=writer"},
			wantReason: ReasonProfileNotGranted, wantRefusal: true,
		},
		"container profiles that do not parse refuse the pod": {
			sa:         map[string]string{key(RoleARN): testRole, Profiles: "writer=" + thirdRole},
			podAnnots:  map[string]string{ContainerProfiles: "uploader=writer, uploader=writer"},
			wantReason: ReasonProfileNotGranted, wantRefusal: true,
		},
		"container profiles: a granted but unusable profile skips the container, warned": {
			sa:           map[string]string{key(RoleARN): testRole, Profiles: "writer=arn:aws:iam::1:role/x"},
			podAnnots:    map[string]string{ContainerProfiles: "uploader=writer"},
			wantPlan:     withPlan(func(p *Plan) { p.SkipContainers = map[string]bool{"uploader": true} }),
			wantWarnings: []string{`"writer"`, `container "uploader"`},
		},
		"container profiles: a skipped container stays skipped": {
			sa:        map[string]string{key(RoleARN): testRole, Profiles: "writer=" + thirdRole},
			podAnnots: map[string]string{ContainerProfiles: "uploader=writer", key(SkipContainers): "uploader"},
			wantPlan: withPlan(func(p *Plan) {
				p.Profiles = []Profile{{"writer", thirdRole}}
				p.SkipContainers = map[string]bool{"uploader": true}
			}),
		},
		"profiles with the spiffe token source": {
			defaults: &spiffeDefaults,
			sa:       map[string]string{key(RoleARN): testRole, key(TokenSource): TokenSourceSPIFFE, Profiles: "writer=" + thirdRole},
			wantPlan: withPlan(func(p *Plan) {
				p.TokenSource, p.SPIFFE = TokenSourceSPIFFE, spiffeDefaults.SPIFFE
				p.Profiles = []Profile{{"writer", thirdRole}}
			}),
		},
		"namespace policy refuses a profile's role": {
			sa:     map[string]string{key(RoleARN): testRole, Profiles: "reader=" + otherRole + ", writer=" + thirdRole},
			policy: ptr(testRole + "," + otherRole), wantReason: ReasonRoleNotAllowed, wantRefusal: true,
		},
		"namespace policy under warn leaves a profile out, and its container": {
			sa:        map[string]string{key(RoleARN): testRole, Profiles: "reader=" + otherRole + ", writer=" + thirdRole},
			podAnnots: map[string]string{ContainerProfiles: "uploader=writer, app=reader"},
			policy:    ptr(testRole + "," + otherRole), action: RolePolicyWarn,
			wantPlan: withPlan(func(p *Plan) {
				p.Profiles = []Profile{{"reader", otherRole}}
				p.ContainerProfiles = map[string]string{"app": "reader"}
				p.SkipContainers = map[string]bool{"uploader": true}
			}),
			wantWarnings: []string{`profile "writer"`, `container "uploader"`},
		},
		"namespace policy allows every profile": {
			sa:       map[string]string{key(RoleARN): testRole, Profiles: "reader=" + otherRole},
			policy:   ptr("arn:aws:iam::111122223333:role/*"),
			wantPlan: withPlan(func(p *Plan) { p.Profiles = []Profile{{"reader", otherRole}} }),
		},
	} {
		t.Run(name, func(t *testing.T) {
			d := testDefaults()
			if tc.defaults != nil {
				d = *tc.defaults
			}
			saLookups := 0
			req := Request{
				Defaults: d, Namespace: "team-a", ServiceAccount: "app", PodLabels: tc.podLabels, PodAnnotations: tc.podAnnots,
				PolicyAction:         tc.action,
				LookupServiceAccount: func() (map[string]string, error) { saLookups++; return tc.sa, nil },
			}
			if tc.policy != nil {
				req.LookupNamespacePolicy = func() (string, bool, error) { return *tc.policy, true, nil }
			} else {
				req.LookupNamespacePolicy = func() (string, bool, error) { return "", false, nil }
			}
			got := Decide(req)
			if diff := cmp.Diff(tc.wantPlan, got.Plan); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if got.Plan == nil && got.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q", got.Reason, tc.wantReason)
			}
			if (got.Refusal != nil) != tc.wantRefusal || (got.Refusal != nil && got.Refusal.Retry != tc.wantRetry) {
				t.Errorf("refusal %+v, want refused %t (retry %t)", got.Refusal, tc.wantRefusal, tc.wantRetry)
			}
			if len(got.Warnings) != len(tc.wantWarnings) {
				t.Fatalf("warnings %q, want %d containing %q", got.Warnings, len(tc.wantWarnings), tc.wantWarnings)
			}
			for i, w := range tc.wantWarnings {
				if !strings.Contains(got.Warnings[i], w) {
					t.Errorf("warning %d %q does not mention %q", i, got.Warnings[i], w)
				}
			}
			if tc.wantNoSALooks && saLookups != 0 {
				t.Errorf("%d service account lookups, want none", saLookups)
			}
		})
	}
}

// Lookups are asked only when a rule needs them, and a failed one refuses
// the Pod as retryable, never admits it on a guess.
func TestDecideLookups(t *testing.T) {
	boom := errors.New("connection refused")
	t.Run("service account lookup fails", func(t *testing.T) {
		d := Decide(Request{Defaults: testDefaults(), Namespace: "team-a", ServiceAccount: "app",
			LookupServiceAccount: func() (map[string]string, error) { return nil, boom }})
		if d.Plan != nil || d.Refusal == nil || !d.Refusal.Retry {
			t.Fatalf("got %+v, want a retryable refusal", d)
		}
		for _, want := range []string{"team-a/app", "connection refused", "retry"} {
			if !strings.Contains(d.Refusal.Message, want) {
				t.Errorf("message %q does not mention %q", d.Refusal.Message, want)
			}
		}
	})
	t.Run("namespace lookup fails", func(t *testing.T) {
		for _, action := range []string{RolePolicyDeny, RolePolicyWarn} {
			d := Decide(Request{Defaults: testDefaults(), Namespace: "team-a", ServiceAccount: "app", PolicyAction: action,
				LookupServiceAccount:  func() (map[string]string, error) { return map[string]string{key(RoleARN): testRole}, nil },
				LookupNamespacePolicy: func() (string, bool, error) { return "", false, boom }})
			if d.Plan != nil || d.Refusal == nil || !d.Refusal.Retry {
				t.Fatalf("%s: got %+v, want a retryable refusal", action, d)
			}
			for _, want := range []string{"namespace team-a", AllowedRoleARNs, testRole, "connection refused"} {
				if !strings.Contains(d.Refusal.Message, want) {
					t.Errorf("%s: message %q does not mention %q", action, d.Refusal.Message, want)
				}
			}
		}
	})
	t.Run("no role: the namespace is never asked", func(t *testing.T) {
		d := Decide(Request{Defaults: testDefaults(),
			LookupServiceAccount:  func() (map[string]string, error) { return nil, nil },
			LookupNamespacePolicy: func() (string, bool, error) { t.Fatal("namespace looked up"); return "", false, nil }})
		if d.Reason != ReasonNotOptedIn {
			t.Fatalf("reason %q, want %q", d.Reason, ReasonNotOptedIn)
		}
	})
	// Whoever sent the review reads the refusal: it names the role and the
	// annotation, counts the invalid patterns, and quotes no pattern.
	t.Run("the refusal names the role and annotation, not the patterns", func(t *testing.T) {
		d := Decide(Request{Defaults: testDefaults(), Namespace: "team-a", ServiceAccount: "app",
			LookupServiceAccount:  func() (map[string]string, error) { return map[string]string{key(RoleARN): otherRole}, nil },
			LookupNamespacePolicy: func() (string, bool, error) { return testRole + ",arn:aws:s3:::x", true, nil }})
		if d.Refusal == nil {
			t.Fatalf("decision %+v, want a refusal", d)
		}
		for _, want := range []string{"team-a/app", otherRole, AllowedRoleARNs, "1 of its patterns are invalid"} {
			if !strings.Contains(d.Refusal.Message, want) {
				t.Errorf("refusal %q does not mention %q", d.Refusal.Message, want)
			}
		}
		for _, secret := range []string{testRole, "arn:aws:s3:::x"} {
			if strings.Contains(d.Refusal.Message, secret) {
				t.Errorf("refusal %q quotes the pattern %q", d.Refusal.Message, secret)
			}
		}
	})
}

func TestShorten(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "abcdef": "abcd...", "ab\u00e9\u00e9": "ab\u00e9..."} {
		if got := Shorten(in, 4); got != want {
			t.Errorf("Shorten(%q, 4) = %q, want %q", in, got, want)
		}
	}
}

func ptr(s string) *string { return &s }
