package awsiam

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// DefaultPartition is the commercial AWS partition.
const DefaultPartition = "aws"

// partition matches "aws" and its suffixed forms: aws-cn, aws-us-gov,
// aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc and any later one of
// the same shape.
var partition = regexp.MustCompile(`^aws(?:-[a-z]+)*$`)

// accountID is an AWS account ID: exactly 12 decimal digits.
var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// providerARN matches arn:<partition>:iam::<account>:oidc-provider/<host/path>.
var providerARN = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):iam::([0-9]{12}):oidc-provider/(.+)$`)

// ValidatePartition reports why p is not an AWS partition name, or nil.
func ValidatePartition(p string) error {
	if !partition.MatchString(p) {
		return fmt.Errorf("%q is not an AWS partition (want aws, aws-cn, aws-us-gov, ...)", p)
	}
	return nil
}

// ValidateAccountID reports why id is not an AWS account ID, or nil.
func ValidateAccountID(id string) error {
	if !accountID.MatchString(id) {
		return fmt.Errorf("%q is not an AWS account ID (want exactly 12 digits, e.g. 111122223333)", id)
	}
	return nil
}

// IssuerHostPath returns the issuer URL without its scheme and trailing
// slash: the form IAM uses in provider ARNs and condition keys
// ("oidc.example.com/cluster"). The issuer must be an https URL with a host,
// no query, fragment or user info, as AWS requires of OIDC issuers.
func IssuerHostPath(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", issuer, err)
	}
	switch {
	case u.Scheme != "https":
		return "", fmt.Errorf("%q is not an https URL; AWS only trusts https issuers", issuer)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", issuer)
	case u.User != nil:
		return "", fmt.Errorf("%q carries user info; an issuer URL must not", issuer)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%q has a query or fragment; an issuer URL must not", issuer)
	}
	hostPath := strings.TrimSuffix(u.Host+u.EscapedPath(), "/")
	if err := validateHostPath(hostPath); err != nil {
		return "", fmt.Errorf("%q: %w", issuer, err)
	}
	return hostPath, nil
}

// validateHostPath refuses what would break the policy's JSON keys or the
// ARN: white space, quotes, wildcards and control characters.
func validateHostPath(hp string) error {
	if hp == "" {
		return fmt.Errorf("has no host")
	}
	for _, r := range hp {
		if r > 0x7e {
			// Invalid UTF-8 would print as U+FFFD: a policy for another
			// provider than the one named. Internationalized hosts are
			// written in their punycode (xn--) form.
			return fmt.Errorf("contains %q; an issuer host must be ASCII (use the xn-- form of an internationalized name)", r)
		}
		if r <= ' ' || r == 0x7f || r == '"' || r == '\\' || r == '*' || r == '?' || r == '$' {
			return fmt.Errorf("contains %q, which an issuer host or path cannot hold", r)
		}
	}
	return nil
}

// ProviderARN is an IAM OIDC identity provider's ARN, split into its parts.
type ProviderARN struct {
	Partition string
	AccountID string
	// HostPath is the issuer without "https://": the provider's name in IAM
	// and the prefix of its condition keys.
	HostPath string
}

// String renders arn:<partition>:iam::<account>:oidc-provider/<host/path>.
func (p ProviderARN) String() string {
	return "arn:" + p.Partition + ":iam::" + p.AccountID + ":oidc-provider/" + p.HostPath
}

// NewProviderARN builds the provider ARN IAM gives the OIDC provider created
// for issuer in the account.
func NewProviderARN(partition, account, issuer string) (ProviderARN, error) {
	if err := ValidatePartition(partition); err != nil {
		return ProviderARN{}, err
	}
	if err := ValidateAccountID(account); err != nil {
		return ProviderARN{}, err
	}
	hp, err := IssuerHostPath(issuer)
	if err != nil {
		return ProviderARN{}, err
	}
	return ProviderARN{Partition: partition, AccountID: account, HostPath: hp}, nil
}

// ParseProviderARN parses arn:<partition>:iam::<account>:oidc-provider/<host/path>.
func ParseProviderARN(s string) (ProviderARN, error) {
	m := providerARN.FindStringSubmatch(s)
	if m == nil {
		return ProviderARN{}, fmt.Errorf("%q is not an IAM OIDC provider ARN (want arn:<partition>:iam::<12-digit account>:oidc-provider/<issuer host/path>)", s)
	}
	hp := strings.TrimSuffix(m[3], "/")
	if strings.Contains(hp, "://") {
		return ProviderARN{}, fmt.Errorf("%q: the part after oidc-provider/ is the issuer without its https:// scheme", s)
	}
	// The host/path must be what an https issuer would give, character for
	// character: IssuerHostPath escapes what a URL path may not hold, so
	// the ARN's own text is checked too.
	if _, err := IssuerHostPath("https://" + hp); err != nil {
		return ProviderARN{}, fmt.Errorf("%q: bad issuer host/path: %w", s, err)
	}
	if err := validateHostPath(hp); err != nil {
		return ProviderARN{}, fmt.Errorf("%q: bad issuer host/path: %w", s, err)
	}
	return ProviderARN{Partition: m[1], AccountID: m[2], HostPath: hp}, nil
}
