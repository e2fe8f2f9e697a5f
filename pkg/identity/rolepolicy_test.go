package identity

import (
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/irsa-webhook/irsa-webhook/internal/testcorpus"
)

func TestRolePolicyAllows(t *testing.T) {
	const (
		teamReader = "arn:aws:iam::111122223333:role/team-a-reader"
		teamPath   = "arn:aws:iam::111122223333:role/team-a/reader"
		other      = "arn:aws:iam::111122223333:role/admin"
		otherAcct  = "arn:aws:iam::444455556666:role/team-a-reader"
		china      = "arn:aws-cn:iam::111122223333:role/team-a-reader"
		gov        = "arn:aws-us-gov:iam::111122223333:role/team-a-reader"
	)
	all := []string{teamReader, teamPath, other, otherAcct, china, gov}
	tests := map[string]struct {
		policy string
		want   []string // the ARNs of all that are allowed
	}{
		"exact ARN":                      {teamReader, []string{teamReader}},
		"name prefix":                    {"arn:aws:iam::111122223333:role/team-a-*", []string{teamReader}},
		"star does not cross a path":     {"arn:aws:iam::111122223333:role/*", []string{teamReader, other}},
		"path prefix":                    {"arn:aws:iam::111122223333:role/team-a/*", []string{teamPath}},
		"any account":                    {"arn:aws:iam::*:role/team-a-reader", []string{teamReader, otherAcct}},
		"aws partition only":             {"arn:aws:iam::111122223333:role/team-a-reader", []string{teamReader}},
		"china partition":                {"arn:aws-cn:iam::111122223333:role/team-a-*", []string{china}},
		"gov partition":                  {"arn:aws-us-gov:iam::111122223333:role/team-a-*", []string{gov}},
		"every partition":                {"arn:aws*:iam::111122223333:role/team-a-reader", []string{teamReader, china, gov}},
		"two patterns with spaces":       {" arn:aws:iam::111122223333:role/admin , arn:aws-cn:iam::111122223333:role/* ", []string{other, china}},
		"empty value allows nothing":     {"", nil},
		"only commas allow nothing":      {" , ,", nil},
		"character class":                {"arn:aws:iam::[14]1112222333[3]:role/team-a-reader", []string{teamReader}},
		"invalid pattern matches none":   {"arn:aws:iam::111122223333:role/[team", nil},
		"invalid beside valid":           {"role/*, arn:aws:iam::111122223333:role/admin", []string{other}},
		"bare star is invalid":           {"*", nil},
		"case matters":                   {"ARN:AWS:IAM::111122223333:ROLE/TEAM-A-READER", nil},
		"question mark is one character": {"arn:aws:iam::111122223333:role/team-a-reade?", []string{teamReader}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := ParseRolePolicy(tc.policy)
			var got []string
			for _, arn := range all {
				if p.Allows(arn) {
					got = append(got, arn)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("allowed ARNs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRolePattern(t *testing.T) {
	tests := map[string]struct {
		pattern string
		want    string // substring of the error; "" for valid
	}{
		"exact":              {"arn:aws:iam::111122223333:role/app", ""},
		"glob name":          {"arn:aws:iam::111122223333:role/app-*", ""},
		"glob partition":     {"arn:aws*:iam::111122223333:role/app", ""},
		"glob account":       {"arn:aws:iam::*:role/app", ""},
		"iso partition":      {"arn:aws-iso-b:iam::111122223333:role/app", ""},
		"unclosed class":     {"arn:aws:iam::111122223333:role/[app", "not a valid glob"},
		"not an ARN":         {"team-a-*", "not shaped like a role ARN"},
		"bare star":          {"*", "not shaped like a role ARN"},
		"user not role":      {"arn:aws:iam::111122223333:user/app", "not shaped like a role ARN"},
		"other service":      {"arn:aws:s3:::bucket/role/x", "not shaped like a role ARN"},
		"region set":         {"arn:aws:iam:us-east-1:111122223333:role/app", "not shaped like a role ARN"},
		"bad partition":      {"arn:amazon:iam::111122223333:role/app", "partitions are aws, aws-cn, aws-us-gov"},
		"short account":      {"arn:aws:iam::1234:role/app", "12 digits"},
		"newline":            {"arn:aws:iam::111122223333:role/app\n", "control character"},
		"quote":              {`arn:aws:iam::111122223333:role/app"`, "a quote"},
		"backslash escape":   {`arn:aws:iam::111122223333:role/\*`, "backslash"},
		"too long":           {"arn:aws:iam::111122223333:role/" + strings.Repeat("a", 3000), "longer than any IAM role ARN"},
		"invalid UTF-8 name": {"arn:aws:iam::111122223333:role/\xff", "control character"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateRolePattern(tc.pattern)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseRolePolicyReportsInvalid(t *testing.T) {
	p := ParseRolePolicy("arn:aws:iam::111122223333:role/ok, role/*, arn:aws:iam::111122223333:role/[x")
	if diff := cmp.Diff([]string{"arn:aws:iam::111122223333:role/ok"}, p.Patterns); diff != "" {
		t.Errorf("patterns (-want +got):\n%s", diff)
	}
	if len(p.Invalid) != 2 || !strings.Contains(p.Invalid[0], `"role/*"`) || !strings.Contains(p.Invalid[1], "not a valid glob") {
		t.Errorf("invalid = %q, want the two bad patterns with reasons", p.Invalid)
	}
	many := strings.Repeat("arn:aws:iam::111122223333:role/a,", maxPatterns+5)
	if p := ParseRolePolicy(many); len(p.Patterns) != maxPatterns || len(p.Invalid) != 1 {
		t.Errorf("%d patterns, %d invalid; want %d and a note", len(p.Patterns), len(p.Invalid), maxPatterns)
	}
}

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// TestFuzzCorpus keeps testdata/fuzz/FuzzRolePolicy in step with these
// seeds: -update rewrites them.
func TestFuzzCorpus(t *testing.T) {
	seeds := map[string][2]string{ // policy, role ARN
		"name-prefix":       {"arn:aws:iam::111122223333:role/team-a-*", "arn:aws:iam::111122223333:role/team-a-reader"},
		"path":              {"arn:aws:iam::111122223333:role/team-a/*", "arn:aws:iam::111122223333:role/team-a/x/y"},
		"every-partition":   {"arn:aws*:iam::*:role/*", "arn:aws-cn:iam::111122223333:role/x"},
		"gov":               {"arn:aws-us-gov:iam::111122223333:role/app", "arn:aws-us-gov:iam::111122223333:role/app"},
		"invalid-and-valid": {"[, role/*, arn:aws:iam::111122223333:role/admin", "arn:aws:iam::111122223333:role/admin"},
		"empty":             {"", "arn:aws:iam::111122223333:role/x"},
		"injection":         {"arn:aws:iam::111122223333:role/*\n,\"*\"", "arn:aws:iam::111122223333:role/x\n"},
		"classes":           {"arn:aws:iam::[0-9][0-9]*:role/[!a]*", "arn:aws:iam::111122223333:role/b"},
	}
	files := map[string][]byte{}
	for name, s := range seeds {
		files[name] = testcorpus.Encode(s[0], s[1])
	}
	testcorpus.Check(t, "FuzzRolePolicy", files, *update)
}

// FuzzRolePolicy: no panic; an allowed ARN matches one of the valid
// patterns; a policy with no valid pattern allows nothing.
func FuzzRolePolicy(f *testing.F) {
	f.Fuzz(func(t *testing.T, policy, arn string) {
		p := ParseRolePolicy(policy)
		if !p.Allows(arn) {
			return
		}
		if len(p.Patterns) == 0 {
			t.Fatal("allowed with no valid pattern")
		}
		for _, pat := range p.Patterns {
			if ValidateRolePattern(pat) != nil {
				t.Fatalf("invalid pattern %q kept", pat)
			}
		}
	})
}
