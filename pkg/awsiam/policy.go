package awsiam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// PolicyVersion is the current IAM policy language version.
const PolicyVersion = "2012-10-17"

// Values of the trust policy's fixed elements.
const (
	EffectAllow                     = "Allow"
	ActionAssumeRoleWithWebIdentity = "sts:AssumeRoleWithWebIdentity"
)

// Condition operators a trust policy built here uses.
const (
	StringEquals = "StringEquals"
	StringLike   = "StringLike"
)

// PolicyDocument is an IAM policy document. Field order is the order IAM
// documents them in, so the JSON reads like AWS's own examples.
type PolicyDocument struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a trust policy.
type Statement struct {
	Effect    string    `json:"Effect"`
	Principal Principal `json:"Principal"`
	Action    string    `json:"Action"`
	// Condition maps an operator (StringEquals, StringLike) to its
	// condition keys and values. encoding/json sorts map keys, so the output
	// is stable.
	Condition map[string]map[string]string `json:"Condition"`
}

// Principal of a web identity trust policy: the OIDC provider's ARN.
type Principal struct {
	Federated string `json:"Federated"`
}

// Subject is what the token's "sub" claim must be for the role to be
// assumed. Pattern true means Value holds IAM wildcards ("*") and is matched
// with StringLike; false means an exact StringEquals match.
type Subject struct {
	Value   string
	Pattern bool
}

// ServiceAccountSubject is the "sub" the Kubernetes API server puts in a
// ServiceAccount's tokens: system:serviceaccount:<namespace>:<name>. Name "*"
// stands for every ServiceAccount of the namespace. Both must have been
// validated (identity.ValidateNamespaceName, ValidateServiceAccountName).
func ServiceAccountSubject(namespace, name string) Subject {
	return Subject{Value: "system:serviceaccount:" + namespace + ":" + name, Pattern: name == AllServiceAccounts}
}

// AllServiceAccounts as a ServiceAccount name asks for a policy that trusts
// every ServiceAccount of one namespace.
const AllServiceAccounts = "*"

// TrustPolicy returns the trust policy that lets tokens for subject and
// audience, signed by the issuer of provider, assume a role.
//
// The policy always holds a condition on "<issuer host/path>:sub": an empty
// subject is an error, never an audience-only policy.
func TrustPolicy(provider ProviderARN, subject Subject, audience string) (*PolicyDocument, error) {
	if subject.Value == "" {
		return nil, fmt.Errorf("trust policy: empty subject; a policy without a sub condition would trust every identity of the issuer")
	}
	if audience == "" {
		return nil, fmt.Errorf("trust policy: empty audience")
	}
	if subject.Pattern && strings.Trim(subject.Value, "*?") == "" {
		return nil, fmt.Errorf("trust policy: subject pattern %q matches every identity of the issuer", subject.Value)
	}
	subKey := provider.HostPath + ":sub"
	audKey := provider.HostPath + ":aud"
	cond := map[string]map[string]string{StringEquals: {audKey: audience}}
	if subject.Pattern {
		cond[StringLike] = map[string]string{subKey: subject.Value}
	} else {
		cond[StringEquals][subKey] = subject.Value
	}
	doc := &PolicyDocument{
		Version: PolicyVersion,
		Statement: []Statement{{
			Effect:    EffectAllow,
			Principal: Principal{Federated: provider.String()},
			Action:    ActionAssumeRoleWithWebIdentity,
			Condition: cond,
		}},
	}
	if err := CheckSubjectBound(doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// CheckSubjectBound reports an error unless every statement of doc that
// allows AssumeRoleWithWebIdentity holds a non-empty condition on the
// provider's ":sub" key. It is the last step of TrustPolicy and is exported
// so that tests and reviewers can run it on any policy.
func CheckSubjectBound(doc *PolicyDocument) error {
	if doc == nil || len(doc.Statement) == 0 {
		return fmt.Errorf("trust policy has no statement")
	}
	for i, st := range doc.Statement {
		p, err := ParseProviderARN(st.Principal.Federated)
		if err != nil {
			return fmt.Errorf("statement %d: principal: %w", i, err)
		}
		bound := false
		for _, kv := range st.Condition {
			if v, ok := kv[p.HostPath+":sub"]; ok && strings.Trim(v, "*?") != "" {
				bound = true
			}
		}
		if !bound {
			return fmt.Errorf("statement %d has no condition on %s:sub; it would let every identity of the issuer assume the role", i, p.HostPath)
		}
	}
	return nil
}

// MarshalIndent renders doc as indented JSON with a trailing newline,
// without HTML escaping (so "<" and "&" stay readable).
func (doc *PolicyDocument) MarshalIndent() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("render trust policy: %w", err)
	}
	return buf.Bytes(), nil
}
