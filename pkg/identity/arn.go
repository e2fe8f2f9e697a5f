package identity

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// partitionExpr matches "aws" and its suffixed forms: aws-cn, aws-us-gov,
// aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc and any later one of
// the same shape. accountExpr is an AWS account ID: exactly 12 decimal
// digits. Every ARN rule here is built from these two.
const (
	partitionExpr = `aws(?:-[a-z]+)*`
	accountExpr   = `[0-9]{12}`
)

var (
	partition = regexp.MustCompile(`^` + partitionExpr + `$`)
	accountID = regexp.MustCompile(`^` + accountExpr + `$`)
)

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

// roleARN matches arn:<partition>:iam::<12 digits>:role/<path/><name>.
// Path segments and the name use the characters IAM allows in role
// names; IAM would accept more punctuation in paths, but nothing that a real
// path needs and a quote, "*" or a newline only ever means an injection
// attempt or a typo.
var roleARN = regexp.MustCompile(`^arn:` + partitionExpr + `:iam::` + accountExpr + `:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)

// maxRoleARNLength bounds the whole ARN: IAM paths are at most 512
// characters and names 64.
const maxRoleARNLength = 2048

// ValidateRoleARN reports why s is not an IAM role ARN, or nil.
func ValidateRoleARN(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case len(s) > maxRoleARNLength:
		return fmt.Errorf("is %d characters long, longer than any IAM role ARN", len(s))
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%q has leading or trailing white space", s)
	case !roleARN.MatchString(s):
		return fmt.Errorf("%q is not an IAM role ARN (want arn:<partition>:iam::<12-digit account>:role/[<path>/]<name>)", s)
	}
	return nil
}

// ValidateAudience reports why s cannot be a token audience, or nil. Any
// printable string without white space works for the API server; the limit
// keeps a pasted document out of the token.
func ValidateAudience(s string) error {
	if s == "" {
		return fmt.Errorf("is empty")
	}
	if len(s) > 256 {
		return fmt.Errorf("is %d characters long (at most 256)", len(s))
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\uFFFD' {
			return fmt.Errorf("%q contains white space or a control character", s)
		}
	}
	return nil
}

// maxSPIFFEIDLength is the SPIFFE standard's limit on a whole ID.
const maxSPIFFEIDLength = 2048

// ValidateSPIFFEID reports why s is not a workload's SPIFFE ID
// (spiffe://<trust domain>/<path>), or nil. The syntax is go-spiffe's; the
// path must not be empty, since an ID without one names the whole trust
// domain, which no SVID is issued for.
func ValidateSPIFFEID(s string) error {
	if len(s) > maxSPIFFEIDLength {
		return fmt.Errorf("is %d characters long (at most %d)", len(s), maxSPIFFEIDLength)
	}
	id, err := spiffeid.FromString(s)
	if err != nil {
		return fmt.Errorf("%q is not a SPIFFE ID (want spiffe://<trust domain>/<path>): %w", s, err)
	}
	if id.Path() == "" {
		return fmt.Errorf("%q names a whole trust domain; give a workload path (spiffe://%s/...)", s, id.TrustDomain())
	}
	return nil
}

// ValidateSPIFFEIDPattern reports why s is neither a SPIFFE ID nor one
// followed by a final "/*" segment, or nil. The "/*" form, for trust
// policies, stands for every ID below that path, so what precedes it must
// itself be a workload's SPIFFE ID: spiffe://td/* (the whole trust domain)
// is refused.
func ValidateSPIFFEIDPattern(s string) error {
	base, ok := strings.CutSuffix(s, "/*")
	if !ok {
		return ValidateSPIFFEID(s)
	}
	if err := ValidateSPIFFEID(base); err != nil {
		return fmt.Errorf("%q: '*' is only accepted as the last segment below a workload path, as in spiffe://<trust domain>/ns/*: %w", s, err)
	}
	return nil
}

// region is the shape of an AWS region name: us-west-2, eu-central-1,
// us-gov-west-1, cn-north-1, us-iso-east-1, ...
var region = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// ValidateRegion reports why s is not shaped like an AWS region name, or nil.
func ValidateRegion(s string) error {
	if len(s) > 32 || !region.MatchString(s) {
		return fmt.Errorf("%q does not look like an AWS region (e.g. us-west-2)", Shorten(s, 64))
	}
	return nil
}
