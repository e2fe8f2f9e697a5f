package awsiam

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// parseArgs sets the fields of a TrustPolicyConfig that args name by the
// trust-policy command's flags, so that the cases read as a user writes
// them (the command's own flag binding is tested in cmd/irsa-webhook).
func parseArgs(t *testing.T, args ...string) *TrustPolicyConfig {
	t.Helper()
	cfg := NewTrustPolicyConfig()
	if len(args)%2 != 0 {
		t.Fatalf("odd number of args: %q", args)
	}
	for i := 0; i < len(args); i += 2 {
		v := args[i+1]
		switch args[i] {
		case "--account-id":
			cfg.AccountID = v
		case "--issuer":
			cfg.Issuer = v
		case "--partition":
			cfg.Partition = v
		case "--provider-arn":
			cfg.ProviderARN = v
		case "--namespace":
			cfg.Namespace = v
		case "--service-account":
			cfg.ServiceAccount = v
		case "--spiffe-id":
			cfg.SPIFFEID = v
		case "--audience":
			cfg.Audience = v
		default:
			t.Fatalf("unknown flag %q", args[i])
		}
	}
	return cfg
}

func TestTrustPolicyGolden(t *testing.T) {
	tests := map[string][]string{
		"service-account": {"--account-id", "111122223333", "--issuer", "https://oidc.example.com/cluster-1",
			"--namespace", "team-a", "--service-account", "app"},
		"whole-namespace": {"--account-id", "111122223333", "--issuer", "https://oidc.example.com",
			"--namespace", "team-a", "--service-account", "*"},
		"provider-arn-gov": {"--provider-arn", "arn:aws-us-gov:iam::111122223333:oidc-provider/oidc.example.com/id/ABC",
			"--namespace", "kube-system", "--service-account", "ebs-csi.controller", "--audience", "sts.amazonaws.com"},
		"china-custom-audience": {"--account-id", "111122223333", "--partition", "aws-cn", "--issuer", "https://oidc.example.cn",
			"--namespace", "default", "--service-account", "default", "--audience", "irsa.example.cn"},
		"spiffe-id": {"--account-id", "111122223333", "--issuer", "https://oidc.example.org",
			"--spiffe-id", "spiffe://example.org/ns/team-a/sa/app"},
		"spiffe-prefix": {"--account-id", "111122223333", "--issuer", "https://oidc.example.org",
			"--spiffe-id", "spiffe://example.org/ns/team-a/*"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := parseArgs(t, args...)
			res, err := cfg.TrustPolicy()
			if err != nil {
				t.Fatal(err)
			}
			b, err := res.Document.MarshalIndent()
			if err != nil {
				t.Fatal(err)
			}
			out := bytes.NewBuffer(b)
			checkGrammar(t, out.Bytes())
			golden := filepath.Join("testdata", "trust-policy-"+name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("%s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// Condition operators of the IAM policy grammar (IAM User Guide, "IAM JSON
// policy elements: Condition operators"), optionally with an IfExists
// suffix and a ForAnyValue:/ForAllValues: set qualifier.
var conditionOperator = regexp.MustCompile(`^(?:ForAnyValue:|ForAllValues:)?(?:` +
	`StringEquals|StringNotEquals|StringEqualsIgnoreCase|StringNotEqualsIgnoreCase|StringLike|StringNotLike|` +
	`NumericEquals|NumericNotEquals|NumericLessThan|NumericLessThanEquals|NumericGreaterThan|NumericGreaterThanEquals|` +
	`DateEquals|DateNotEquals|DateLessThan|DateLessThanEquals|DateGreaterThan|DateGreaterThanEquals|` +
	`Bool|BinaryEquals|IpAddress|NotIpAddress|ArnEquals|ArnLike|ArnNotEquals|ArnNotLike)(?:IfExists)?$|^Null$`)

// checkGrammar checks doc against the IAM policy grammar, read as a generic
// JSON value so that nothing this package's types would hide gets through:
// only the documented elements, with the documented value types, and for a
// web identity trust policy the principal and action it needs.
func checkGrammar(t *testing.T, doc []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, doc)
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for k := range top {
		if k != "Version" && k != "Id" && k != "Statement" {
			bad("top level: unknown element %q", k)
		}
	}
	if top["Version"] != "2012-10-17" {
		bad("Version = %v, want 2012-10-17", top["Version"])
	}
	stmts, ok := top["Statement"].([]any)
	if !ok || len(stmts) == 0 {
		bad("Statement is not a non-empty list: %v", top["Statement"])
	}
	for i, s := range stmts {
		st, ok := s.(map[string]any)
		if !ok {
			bad("Statement[%d] is not an object", i)
			continue
		}
		for k := range st {
			switch k {
			case "Sid", "Effect", "Principal", "Action", "Condition":
			default:
				bad("Statement[%d]: element %q does not belong in a trust policy", i, k)
			}
		}
		if e := st["Effect"]; e != "Allow" && e != "Deny" {
			bad("Statement[%d].Effect = %v, want Allow or Deny", i, e)
		}
		principal, _ := st["Principal"].(map[string]any)
		fed, _ := principal["Federated"].(string)
		if len(principal) != 1 || !regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:oidc-provider/[^*\s"]+$`).MatchString(fed) {
			bad("Statement[%d].Principal = %v, want {\"Federated\": <OIDC provider ARN>}", i, st["Principal"])
		}
		if st["Action"] != "sts:AssumeRoleWithWebIdentity" {
			bad("Statement[%d].Action = %v, want sts:AssumeRoleWithWebIdentity", i, st["Action"])
		}
		cond, ok := st["Condition"].(map[string]any)
		if !ok || len(cond) == 0 {
			bad("Statement[%d].Condition is missing or empty", i)
			continue
		}
		hostPath := strings.SplitN(fed, ":oidc-provider/", 2)[len(strings.SplitN(fed, ":oidc-provider/", 2))-1]
		keys := map[string]bool{}
		for op, kv := range cond {
			if !conditionOperator.MatchString(op) {
				bad("Statement[%d].Condition: %q is not a condition operator", i, op)
			}
			m, ok := kv.(map[string]any)
			if !ok || len(m) == 0 {
				bad("Statement[%d].Condition.%s is not a non-empty object", i, op)
				continue
			}
			for k, v := range m {
				keys[k] = true
				if !strings.HasPrefix(k, hostPath+":") {
					bad("Statement[%d].Condition.%s: key %q is not a key of provider %s", i, op, k, hostPath)
				}
				if s, ok := v.(string); !ok || s == "" {
					bad("Statement[%d].Condition.%s[%q] = %v, want a non-empty string", i, op, k, v)
				}
			}
		}
		if !keys[hostPath+":sub"] || !keys[hostPath+":aud"] {
			bad("Statement[%d].Condition must hold both %s:sub and %s:aud, has %v", i, hostPath, hostPath, keys)
		}
	}
	if len(errs) > 0 {
		t.Errorf("policy breaks the grammar:\n  %s\n%s", strings.Join(errs, "\n  "), doc)
	}
}

// TestNeverAudienceOnly runs every combination of the subject-related flags,
// good and bad, and checks that each either fails validation or yields a
// policy bound to a sub claim.
func TestNeverAudienceOnly(t *testing.T) {
	providers := [][]string{
		{"--account-id", "111122223333", "--issuer", "https://oidc.example.com/c"},
		{"--provider-arn", "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/c"},
	}
	values := map[string][]string{
		"--namespace":       {"", "team-a", "*", "Team-A", " "},
		"--service-account": {"", "app", "*", "**", "a.b", " "},
		"--spiffe-id":       {"", "spiffe://example.org/app", "spiffe://example.org/*", "spiffe://example.org", "spiffe://example.org/a/*", "*"},
		"--audience":        {"", "sts.amazonaws.com", "*"},
	}
	flags := []string{"--namespace", "--service-account", "--spiffe-id", "--audience"}
	built := 0
	var walk func(i int, args []string)
	walk = func(i int, args []string) {
		if i == len(flags) {
			for _, p := range providers {
				all := append(append([]string{}, p...), args...)
				cfg := parseArgs(t, all...)
				res, err := cfg.TrustPolicy()
				if err != nil {
					continue
				}
				built++
				if err := CheckSubjectBound(res.Document); err != nil {
					t.Errorf("%v: %v", all, err)
				}
				b, err := res.Document.MarshalIndent()
				if err != nil {
					t.Fatal(err)
				}
				checkGrammar(t, b)
			}
			return
		}
		for _, v := range values[flags[i]] {
			next := args
			if v != "" {
				next = append(append([]string{}, args...), flags[i], v)
			}
			walk(i+1, next)
		}
	}
	walk(0, nil)
	if built == 0 {
		t.Fatal("no combination built a policy; the test checks nothing")
	}
}

func TestTrustPolicyRefusesNoSubject(t *testing.T) {
	p := ProviderARN{Partition: "aws", AccountID: "111122223333", HostPath: "oidc.example.com"}
	for name, sub := range map[string]Subject{
		"empty":         {},
		"star":          {Value: "*", Pattern: true},
		"question mark": {Value: "?*", Pattern: true},
	} {
		t.Run(name, func(t *testing.T) {
			if doc, err := TrustPolicy(p, sub, "sts.amazonaws.com"); err == nil {
				t.Fatalf("built %+v", doc)
			}
		})
	}
	audOnly := &PolicyDocument{Version: PolicyVersion, Statement: []Statement{{
		Effect: EffectAllow, Principal: Principal{Federated: p.String()}, Action: ActionAssumeRoleWithWebIdentity,
		Condition: map[string]map[string]string{StringEquals: {"oidc.example.com:aud": "sts.amazonaws.com"}},
	}}}
	if err := CheckSubjectBound(audOnly); err == nil {
		t.Error("CheckSubjectBound accepted an audience-only policy")
	}
}

func TestTrustPolicyConfigValidate(t *testing.T) {
	good := []string{"--account-id", "111122223333", "--issuer", "https://oidc.example.com", "--namespace", "ns", "--service-account", "sa"}
	tests := map[string]struct {
		args []string
		want []string // each must appear in the error; none means valid
	}{
		"valid":   {args: good},
		"nothing": {want: []string{"--account-id: is required", "--issuer: is required", "--namespace: is required", "--service-account: is required"}},
		"bad account and partition": {
			args: []string{"--account-id", "12345", "--partition", "amazon", "--issuer", "https://o.example.com", "--namespace", "ns", "--service-account", "sa"},
			want: []string{"--account-id: \"12345\" is not an AWS account ID", "--partition: \"amazon\" is not an AWS partition"},
		},
		"http issuer": {
			args: []string{"--account-id", "111122223333", "--issuer", "http://o.example.com", "--namespace", "ns", "--service-account", "sa"},
			want: []string{"--issuer: \"http://o.example.com\" is not an https URL"},
		},
		"issuer with query": {
			args: []string{"--account-id", "111122223333", "--issuer", "https://o.example.com/?a=b", "--namespace", "ns", "--service-account", "sa"},
			want: []string{"--issuer:", "query"},
		},
		"bad names": {
			args: []string{"--account-id", "111122223333", "--issuer", "https://o.example.com", "--namespace", "Team_A", "--service-account", "app:x"},
			want: []string{"--namespace: \"Team_A\" is not a namespace name", "--service-account: \"app:x\" is not a ServiceAccount name"},
		},
		"wildcard namespace": {
			args: []string{"--account-id", "111122223333", "--issuer", "https://o.example.com", "--namespace", "*", "--service-account", "*"},
			want: []string{"--namespace: \"*\" is not a namespace name"},
		},
		"provider ARN with conflicting account, partition and issuer": {
			args: []string{"--provider-arn", "arn:aws:iam::111122223333:oidc-provider/o.example.com", "--account-id", "999999999999",
				"--partition", "aws-cn", "--issuer", "https://other.example.com", "--namespace", "ns", "--service-account", "sa"},
			want: []string{"--account-id: \"999999999999\" disagrees", "--partition: \"aws-cn\" disagrees", "--issuer: \"https://other.example.com\" disagrees"},
		},
		"provider ARN with the same values": {
			args: []string{"--provider-arn", "arn:aws:iam::111122223333:oidc-provider/o.example.com", "--account-id", "111122223333",
				"--issuer", "https://o.example.com", "--namespace", "ns", "--service-account", "sa"},
		},
		"issuer with a trailing slash": {
			args: []string{"--account-id", "111122223333", "--issuer", "https://o.example.com/", "--namespace", "ns", "--service-account", "sa"},
			want: []string{"--issuer: \"https://o.example.com/\" must not end with /"},
		},
		"malformed provider ARN": {
			args: []string{"--provider-arn", "arn:aws:iam::111122223333:role/x", "--namespace", "ns", "--service-account", "sa"},
			want: []string{"--provider-arn: \"arn:aws:iam::111122223333:role/x\" is not an IAM OIDC provider ARN"},
		},
		"provider ARN with a scheme": {
			args: []string{"--provider-arn", "arn:aws:iam::111122223333:oidc-provider/https://o.example.com", "--namespace", "ns", "--service-account", "sa"},
			want: []string{"--provider-arn:", "without its https:// scheme"},
		},
		"spiffe with a service account": {
			args: []string{"--account-id", "111122223333", "--issuer", "https://o.example.com", "--spiffe-id", "spiffe://td/x", "--namespace", "ns"},
			want: []string{"--spiffe-id: cannot be combined"},
		},
		"bad spiffe ids": {
			args: []string{"--account-id", "111122223333", "--issuer", "https://o.example.com", "--spiffe-id", "spiffe://TD/x"},
			want: []string{"--spiffe-id:", "trust domain"},
		},
		"bad audience": {
			args: append(append([]string{}, good...), "--audience", "a b"),
			want: []string{"--audience:"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := parseArgs(t, tc.args...).Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted bad flags")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseProviderARN(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    ProviderARN
		wantErr bool
	}{
		"commercial": {in: "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABCDEF",
			want: ProviderARN{Partition: "aws", AccountID: "111122223333", HostPath: "oidc.eks.us-west-2.amazonaws.com/id/ABCDEF"}},
		"iso-b":          {in: "arn:aws-iso-b:iam::111122223333:oidc-provider/o.example", want: ProviderARN{Partition: "aws-iso-b", AccountID: "111122223333", HostPath: "o.example"}},
		"trailing slash": {in: "arn:aws:iam::111122223333:oidc-provider/o.example/", want: ProviderARN{Partition: "aws", AccountID: "111122223333", HostPath: "o.example"}},
		"short account":  {in: "arn:aws:iam::11112222333:oidc-provider/o.example", wantErr: true},
		"role ARN":       {in: "arn:aws:iam::111122223333:role/o", wantErr: true},
		"no host":        {in: "arn:aws:iam::111122223333:oidc-provider/", wantErr: true},
		"quote in host":  {in: "arn:aws:iam::111122223333:oidc-provider/o\".example", wantErr: true},
		"wildcard":       {in: "arn:aws:iam::111122223333:oidc-provider/*", wantErr: true},
		"bad partition":  {in: "arn:gcp:iam::111122223333:oidc-provider/o.example", wantErr: true},
		"region present": {in: "arn:aws:iam:us-east-1:111122223333:oidc-provider/o.example", wantErr: true},
		"not UTF-8":      {in: "arn:aws:iam::111122223333:oidc-provider/o\xc5.example", wantErr: true},
		"unicode host":   {in: "arn:aws:iam::111122223333:oidc-provider/bücher.example", wantErr: true},
		// The path is escaped when checked as a URL; the ARN's text is what
		// the policy carries, so it is checked as it is.
		"not UTF-8 in the path": {in: "arn:aws:iam::111122223333:oidc-provider/o.example/\xa8id/ABC", wantErr: true},
		"unicode in the path":   {in: "arn:aws:iam::111122223333:oidc-provider/o.example/bücher/ABC", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseProviderARN(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted %q as %+v", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(strings.TrimSuffix(tc.in, "/"), got.String()); diff != "" {
				t.Errorf("String() (-want +got):\n%s", diff)
			}
		})
	}
}

// A wildcard subject is allowed but never silent; an exact one is quiet.
func TestTrustPolicyWarnsOnWildcards(t *testing.T) {
	provider := []string{"--account-id", "111122223333", "--issuer", "https://oidc.example.com"}
	tests := map[string]struct {
		args []string
		want []string // each must appear in the one warning; none means no warning
	}{
		"one service account": {args: []string{"--namespace", "team-a", "--service-account", "app"}},
		"one spiffe id":       {args: []string{"--spiffe-id", "spiffe://example.org/ns/team-a/sa/app"}},
		"every service account of a namespace": {
			args: []string{"--namespace", "team-a", "--service-account", "*"},
			want: []string{"warning:", `StringLike "system:serviceaccount:team-a:*"`, "every ServiceAccount", "created later", "StringEquals"},
		},
		"a spiffe path prefix": {
			args: []string{"--spiffe-id", "spiffe://example.org/ns/*"},
			want: []string{"warning:", `StringLike "spiffe://example.org/ns/*"`, "every SPIFFE ID"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := parseArgs(t, append(slices.Clone(provider), tc.args...)...).TrustPolicy()
			if err != nil {
				t.Fatal(err)
			}
			got := res.Warnings()
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Errorf("warnings for an exact subject: %q", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d warnings, want 1: %q", len(got), got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("warning %q does not contain %q", got[0], w)
				}
			}
		})
	}
}
