package awsiam

import (
	"errors"
	"fmt"
	"strings"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/issuer"
)

// TrustPolicyConfig is what a trust policy is built from, as
// `irsa-webhook trust-policy` is told it by flags (errors name them).
//
// The provider is named either by ProviderARN or by AccountID and Issuer
// (with Partition). The subject is either Namespace and ServiceAccount, or
// SPIFFEID; exactly one of the two.
type TrustPolicyConfig struct {
	AccountID      string
	Issuer         string
	Partition      string
	ProviderARN    string
	Namespace      string
	ServiceAccount string
	SPIFFEID       string
	Audience       string
}

// NewTrustPolicyConfig returns the defaults, which the command shows in --help.
func NewTrustPolicyConfig() *TrustPolicyConfig {
	return &TrustPolicyConfig{
		Partition: DefaultPartition,
		Audience:  identity.DefaultAudience,
	}
}

// Validate reports every bad flag at once, each by its name.
func (c *TrustPolicyConfig) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}

	if _, err := c.provider(); err != nil {
		errs = append(errs, err)
	}

	if c.SPIFFEID != "" {
		if c.Namespace != "" || c.ServiceAccount != "" {
			bad("spiffe-id", "cannot be combined with --namespace or --service-account; give one kind of subject")
		}
		if err := identity.ValidateSPIFFEIDPattern(c.SPIFFEID); err != nil {
			bad("spiffe-id", "%v", err)
		}
	} else {
		if c.Namespace == "" {
			bad("namespace", "is required: the namespace of the ServiceAccount that may assume the role")
		} else if err := identity.ValidateNamespaceName(c.Namespace); err != nil {
			bad("namespace", "%v", err)
		}
		if c.ServiceAccount == "" {
			bad("service-account", "is required: a ServiceAccount name, or '*' for every ServiceAccount of --namespace")
		} else if err := ValidateServiceAccountName(c.ServiceAccount); err != nil {
			bad("service-account", "%v", err)
		}
	}

	if err := identity.ValidateAudience(c.Audience); err != nil {
		bad("audience", "%v", err)
	}
	return errors.Join(errs...)
}

// provider resolves the provider ARN from the flags, naming the flag at
// fault.
func (c *TrustPolicyConfig) provider() (ProviderARN, error) {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.ProviderARN != "" {
		p, err := ParseProviderARN(c.ProviderARN)
		if err != nil {
			bad("provider-arn", "%v", err)
			return ProviderARN{}, errors.Join(errs...)
		}
		if c.AccountID != "" && c.AccountID != p.AccountID {
			bad("account-id", "%q disagrees with --provider-arn's account %s; drop --account-id", c.AccountID, p.AccountID)
		}
		if c.Partition != DefaultPartition && c.Partition != p.Partition {
			bad("partition", "%q disagrees with --provider-arn's partition %s; drop --partition", c.Partition, p.Partition)
		}
		if c.Issuer != "" {
			if hp, err := issuer.HostPath(c.Issuer); err != nil {
				bad("issuer", "%v", err)
			} else if hp != p.HostPath {
				bad("issuer", "%q disagrees with --provider-arn, which names issuer https://%s; drop --issuer", c.Issuer, p.HostPath)
			}
		}
		return p, errors.Join(errs...)
	}

	if err := identity.ValidatePartition(c.Partition); err != nil {
		bad("partition", "%v", err)
	}
	if c.AccountID == "" {
		bad("account-id", "is required unless --provider-arn is given")
	} else if err := identity.ValidateAccountID(c.AccountID); err != nil {
		bad("account-id", "%v", err)
	}
	var hp string
	if c.Issuer == "" {
		bad("issuer", "is required unless --provider-arn is given: the https URL in the tokens' iss claim")
	} else {
		var err error
		if hp, err = issuer.HostPath(c.Issuer); err != nil {
			bad("issuer", "%v", err)
		}
	}
	if len(errs) > 0 {
		return ProviderARN{}, errors.Join(errs...)
	}
	return ProviderARN{Partition: c.Partition, AccountID: c.AccountID, HostPath: hp}, nil
}

// Subject returns the sub condition the flags ask for. Call Validate first.
func (c *TrustPolicyConfig) Subject() Subject {
	if c.SPIFFEID != "" {
		return SPIFFESubject(c.SPIFFEID)
	}
	return ServiceAccountSubject(c.Namespace, c.ServiceAccount)
}

// TrustPolicyResult is a trust policy and what it was built from.
type TrustPolicyResult struct {
	Provider ProviderARN
	Subject  Subject
	Audience string
	Document *PolicyDocument
}

// TrustPolicy validates the flags and builds the policy they describe.
func (c *TrustPolicyConfig) TrustPolicy() (*TrustPolicyResult, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p, err := c.provider()
	if err != nil {
		return nil, err
	}
	doc, err := TrustPolicy(p, c.Subject(), c.Audience)
	if err != nil {
		return nil, err
	}
	return &TrustPolicyResult{Provider: p, Subject: c.Subject(), Audience: c.Audience, Document: doc}, nil
}

// Warnings says, one sentence each, what a wildcard subject lets in beyond
// one workload: a pattern's matches are decided by IAM at AssumeRole time,
// so every ServiceAccount (or SPIFFE ID) created later that matches it may
// assume the role too, and nothing in the cluster can stop one that holds a
// token for the audience from asking. None for an exact subject.
func (r *TrustPolicyResult) Warnings() []string {
	if !r.Subject.Pattern {
		return nil
	}
	who := "every ServiceAccount"
	if strings.HasPrefix(r.Subject.Value, "spiffe://") {
		who = "every SPIFFE ID"
	}
	return []string{fmt.Sprintf("warning: sub %s %q lets %s that matches it assume this role, including ones created later; "+
		"the trust policy is the only boundary (the webhook's namespace role policy cannot stop a Pod from asking STS itself), "+
		"so prefer one policy per ServiceAccount with StringEquals", StringLike, r.Subject.Value, who)}
}

// ValidateServiceAccountName reports why name is neither a ServiceAccount
// name nor AllServiceAccounts, or nil.
func ValidateServiceAccountName(name string) error {
	if name == AllServiceAccounts {
		return nil
	}
	if err := identity.ValidateServiceAccountName(name); err != nil {
		return fmt.Errorf("%w (or '*')", err)
	}
	return nil
}
