package awsiam

import (
	"fmt"
	"strings"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/issuer"
)

// DefaultPartition is the commercial AWS partition.
const DefaultPartition = "aws"

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
// for iss in the account.
func NewProviderARN(partition, account, iss string) (ProviderARN, error) {
	if err := identity.ValidatePartition(partition); err != nil {
		return ProviderARN{}, err
	}
	if err := identity.ValidateAccountID(account); err != nil {
		return ProviderARN{}, err
	}
	hp, err := issuer.HostPath(iss)
	if err != nil {
		return ProviderARN{}, err
	}
	return ProviderARN{Partition: partition, AccountID: account, HostPath: hp}, nil
}

// ParseProviderARN parses arn:<partition>:iam::<account>:oidc-provider/<host/path>.
func ParseProviderARN(s string) (ProviderARN, error) {
	f := strings.SplitN(s, ":", 6)
	hp, ok := "", len(f) == 6 && f[0] == "arn" && f[2] == "iam" && f[3] == ""
	if ok {
		hp, ok = strings.CutPrefix(f[5], "oidc-provider/")
	}
	if !ok || identity.ValidatePartition(f[1]) != nil || identity.ValidateAccountID(f[4]) != nil || hp == "" {
		return ProviderARN{}, fmt.Errorf("%q is not an IAM OIDC provider ARN (want arn:<partition>:iam::<12-digit account>:oidc-provider/<issuer host/path>)", s)
	}
	// Some tools print the provider's name with a trailing slash; IAM's
	// name for it has none.
	hp = strings.TrimSuffix(hp, "/")
	if strings.Contains(hp, "://") {
		return ProviderARN{}, fmt.Errorf("%q: the part after oidc-provider/ is the issuer without its https:// scheme", s)
	}
	// The host/path must be what an https issuer would give, character for
	// character: issuer.HostPath escapes what a URL path may not hold, so
	// the ARN's own text is checked too.
	if _, err := issuer.HostPath("https://" + hp); err != nil {
		return ProviderARN{}, fmt.Errorf("%q: bad issuer host/path: %w", s, err)
	}
	if err := issuer.ValidateHostPath(hp); err != nil {
		return ProviderARN{}, fmt.Errorf("%q: bad issuer host/path: %w", s, err)
	}
	return ProviderARN{Partition: f[1], AccountID: f[4], HostPath: hp}, nil
}
