package identity

import (
	"fmt"
	"path"
	"strings"
)

// AllowedRoleARNs is the Namespace annotation that restricts which IAM
// roles the ServiceAccounts of that namespace may ask for: a comma-separated
// list of ARN glob patterns. Only cluster administrators can annotate
// Namespaces, so tenants cannot widen it. It is a fixed key, not under
// --annotation-prefix: it is this project's policy, not part of the EKS
// annotation set.
//
// Absent: no restriction. Present: a role that matches no valid pattern is
// not injected (an empty value therefore allows no role at all).
const AllowedRoleARNs = "irsa-webhook.io/allowed-role-arns"

// RolePolicy is a parsed AllowedRoleARNs value.
//
// Each pattern is matched against the whole role ARN with path.Match:
// "*" matches any run of characters except "/", "?" one such character, and
// "[...]" a class. So arn:aws:iam::111122223333:role/team-a-* allows the
// role team-a-reader but not a role under a path (role/team-a/x); write
// role/team-a/* for that. The partition is part of the ARN: a pattern for
// arn:aws:... never matches arn:aws-cn:... or arn:aws-us-gov:...; write
// arn:aws*:... to allow every partition.
type RolePolicy struct {
	// Patterns are the valid patterns, in the order given.
	Patterns []string
	// Invalid lists each invalid pattern with the reason; they match
	// nothing.
	Invalid []string
}

const maxPatterns = 64

// ParseRolePolicy parses an AllowedRoleARNs value. It never fails: each
// invalid pattern is kept, with its reason, in Invalid and matches nothing,
// so a typo narrows what is allowed and never widens it.
func ParseRolePolicy(value string) RolePolicy {
	var p RolePolicy
	n := 0
	for item := range strings.SplitSeq(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if n++; n > maxPatterns {
			p.Invalid = append(p.Invalid, fmt.Sprintf("more than %d patterns; the rest are ignored", maxPatterns))
			break
		}
		if err := ValidateRolePattern(item); err != nil {
			p.Invalid = append(p.Invalid, err.Error())
			continue
		}
		p.Patterns = append(p.Patterns, item)
	}
	return p
}

// Allows reports whether roleARN matches one of the valid patterns.
func (p RolePolicy) Allows(roleARN string) bool {
	for _, pat := range p.Patterns {
		if ok, err := path.Match(pat, roleARN); err == nil && ok {
			return true
		}
	}
	return false
}

// ValidateRolePattern reports why s cannot be an AllowedRoleARNs pattern,
// or nil. A pattern has the shape of a role ARN,
// arn:<partition>:iam::<account>:role/<path and name>, where the partition,
// the account and the role part may use glob characters.
func ValidateRolePattern(s string) error {
	if len(s) > maxRoleARNLength {
		return fmt.Errorf("pattern of %d characters is longer than any IAM role ARN", len(s))
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\uFFFD' || r == '"' || r == '\\' {
			return fmt.Errorf("pattern %q contains white space, a quote, a backslash or a control character", s)
		}
	}
	if _, err := path.Match(s, ""); err != nil {
		return fmt.Errorf("pattern %q is not a valid glob (unclosed [ or bad range)", s)
	}
	want := "want arn:<partition>:iam::<account>:role/<name or glob>, e.g. arn:aws:iam::111122223333:role/team-a-*"
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[2] != "iam" || f[3] != "" || !strings.HasPrefix(f[5], "role/") {
		return fmt.Errorf("pattern %q is not shaped like a role ARN (%s)", s, want)
	}
	if !hasGlob(f[1]) && ValidatePartition(f[1]) != nil {
		return fmt.Errorf("pattern %q names partition %q; partitions are aws, aws-cn, aws-us-gov, ... (or a glob such as aws*)", s, f[1])
	}
	if !hasGlob(f[4]) && ValidateAccountID(f[4]) != nil {
		return fmt.Errorf("pattern %q names account %q; an account ID has 12 digits (or use a glob)", s, f[4])
	}
	return nil
}

func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }
