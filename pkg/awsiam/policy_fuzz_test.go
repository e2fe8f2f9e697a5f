package awsiam

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzTrustPolicy feeds arbitrary flag values through validation and
// building. Invariants: no panic; whatever is built binds sub, is valid
// JSON, and carries the subject and audience verbatim (no value can break
// out of its JSON string or add a condition).
func FuzzTrustPolicy(f *testing.F) {
	f.Add("https://oidc.example.com/c", "team-a", "app", "", "sts.amazonaws.com")
	f.Add("https://oidc.example.com", "team-a", "*", "", "sts.amazonaws.com")
	f.Add("https://oidc.example.org", "", "", "spiffe://example.org/ns/*", "sts.amazonaws.com")
	f.Add("https://o\".example.com", "a\"b", "*\",\"x", "spiffe://x/*", "\",\"sub\":\"*")
	f.Fuzz(func(t *testing.T, issuer, ns, sa, spiffe, aud string) {
		cfg := NewTrustPolicyConfig()
		cfg.AccountID, cfg.Issuer, cfg.Namespace, cfg.ServiceAccount, cfg.SPIFFEID, cfg.Audience = "111122223333", issuer, ns, sa, spiffe, aud
		res, err := cfg.TrustPolicy()
		if err != nil {
			return
		}
		if err := CheckSubjectBound(res.Document); err != nil {
			t.Fatalf("built a policy not bound to sub: %v", err)
		}
		b, err := res.Document.MarshalIndent()
		if err != nil {
			t.Fatal(err)
		}
		var doc PolicyDocument
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("output is not JSON: %v", err)
		}
		n := 0
		for op, kv := range doc.Statement[0].Condition {
			for k, v := range kv {
				n++
				switch {
				case strings.HasSuffix(k, ":sub"):
					if v != res.Subject.Value || (op == StringLike) != res.Subject.Pattern {
						t.Fatalf("sub condition %s %q, want subject %+v", op, v, res.Subject)
					}
				case strings.HasSuffix(k, ":aud"):
					if v != aud || op != StringEquals {
						t.Fatalf("aud condition %s %q, want StringEquals %q", op, v, aud)
					}
				default:
					t.Fatalf("unexpected condition key %q", k)
				}
			}
		}
		if n != 2 {
			t.Fatalf("%d condition keys, want sub and aud", n)
		}
	})
}
