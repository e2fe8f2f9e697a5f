package identity

import (
	"strings"
	"testing"
)

func TestValidateRoleARN(t *testing.T) {
	valid := []string{
		"arn:aws:iam::111122223333:role/app",
		"arn:aws-cn:iam::111122223333:role/app",
		"arn:aws-us-gov:iam::111122223333:role/path/to/app",
		"arn:aws-iso-b:iam::111122223333:role/a+b=c,d.e@f-g_h",
		"arn:aws:iam::111122223333:role/" + strings.Repeat("n", 64),
	}
	for _, s := range valid {
		if err := ValidateRoleARN(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	invalid := map[string]string{
		"":                                                                   "empty",
		" arn:aws:iam::111122223333:role/app":                                "white space",
		"arn:aws:iam::1111:role/app":                                         "not an IAM role ARN",
		"arn:aws:iam::111122223333:user/app":                                 "not an IAM role ARN",
		"arn:aws:s3:::bucket":                                                "not an IAM role ARN",
		"arn:gcp:iam::111122223333:role/app":                                 "not an IAM role ARN",
		"arn:aws:iam::111122223333:role/":                                    "not an IAM role ARN",
		"arn:aws:iam::111122223333:role/*":                                   "not an IAM role ARN",
		"arn:aws:iam::111122223333:role/a\nb":                                "not an IAM role ARN",
		"arn:aws:iam::111122223333:role/a\"b":                                "not an IAM role ARN",
		"arn:aws:iam::111122223333:role/app\n":                               "white space",
		"arn:aws:iam::111122223333:role/" + strings.Repeat("n", 65):          "not an IAM role ARN",
		"arn:aws:iam::111122223333:role/" + strings.Repeat("p/", 1100) + "n": "longer than any",
	}
	for s, want := range invalid {
		err := ValidateRoleARN(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error mentioning %q", s, err, want)
		}
	}
}

func TestValidateAudience(t *testing.T) {
	for s, ok := range map[string]bool{
		"sts.amazonaws.com": true, "minio": true, "https://example.com/aud": true,
		"": false, "a b": false, "a\tb": false, "\x00": false, strings.Repeat("a", 257): false,
	} {
		if err := ValidateAudience(s); (err == nil) != ok {
			t.Errorf("%q: got %v, want ok=%t", s, err, ok)
		}
	}
}

// TestValidateSPIFFEID holds both SPIFFE rules: an ID (annotations, the SVID
// helper) and an ID pattern (trust policies), which adds only a final "/*".
func TestValidateSPIFFEID(t *testing.T) {
	tests := map[string]struct{ id, pattern bool }{
		"spiffe://example.org/ns/a/sa/b":                    {id: true, pattern: true},
		"spiffe://example.org/a.b-c_d/E":                    {id: true, pattern: true},
		"spiffe://example.org/ns/*":                         {pattern: true},
		"spiffe://example.org/ns/a/*":                       {pattern: true},
		"spiffe://example.org":                              {},
		"spiffe://example.org/":                             {},
		"spiffe://example.org/*":                            {},
		"spiffe://example.org/a/*/b":                        {},
		"spiffe://example.org/a/**":                         {},
		"spiffe://example.org/a/*/*":                        {},
		"spiffe://example.org/a//b":                         {},
		"spiffe://example.org/a/":                           {},
		"spiffe://example.org/a/..":                         {},
		"spiffe://example.org/a/.":                          {},
		"spiffe://Example.org/a":                            {},
		"spiffe://example.org/a b":                          {},
		"spiffe://example.org/a\"b":                         {},
		"spiffe://example.org/a\nb":                         {},
		"https://example.org/a":                             {},
		"not-an-id":                                         {},
		"":                                                  {},
		"spiffe://u@example.org/a":                          {},
		"spiffe://example.org:8443/a":                       {},
		"spiffe://example.org/" + strings.Repeat("a", 2048): {},
	}
	for s, want := range tests {
		if err := ValidateSPIFFEID(s); (err == nil) != want.id {
			t.Errorf("ValidateSPIFFEID(%q) = %v, want ok=%t", s, err, want.id)
		}
		if err := ValidateSPIFFEIDPattern(s); (err == nil) != want.pattern {
			t.Errorf("ValidateSPIFFEIDPattern(%q) = %v, want ok=%t", s, err, want.pattern)
		}
	}
}

func TestValidateNames(t *testing.T) {
	tests := map[string]struct{ namespace, serviceAccount bool }{
		"team-a":                  {namespace: true, serviceAccount: true},
		"a":                       {namespace: true, serviceAccount: true},
		"ebs-csi.controller":      {serviceAccount: true},
		strings.Repeat("a", 63):   {namespace: true, serviceAccount: true},
		strings.Repeat("a", 64):   {serviceAccount: true},
		strings.Repeat("a", 254):  {},
		"":                        {},
		"Team_A":                  {},
		"app:x":                   {},
		"*":                       {},
		"-a":                      {},
		"a-":                      {},
		"..":                      {},
		"a/b":                     {},
		"system:serviceaccount:a": {},
	}
	for name, want := range tests {
		if err := ValidateNamespaceName(name); (err == nil) != want.namespace {
			t.Errorf("ValidateNamespaceName(%q) = %v, want ok=%t", name, err, want.namespace)
		}
		if err := ValidateServiceAccountName(name); (err == nil) != want.serviceAccount {
			t.Errorf("ValidateServiceAccountName(%q) = %v, want ok=%t", name, err, want.serviceAccount)
		}
	}
}
