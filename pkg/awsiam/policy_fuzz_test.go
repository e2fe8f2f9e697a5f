package awsiam

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/internal/testcorpus"
)

// FuzzTrustPolicy feeds arbitrary flag values through validation and
// building. Invariants: no panic; whatever is built has exactly one
// statement, trusts the provider the flags name, binds sub (never an
// audience-only condition), is valid JSON, and carries the subject and
// audience verbatim (no value can break out of its JSON string or add a
// condition). Seeds: testdata/fuzz/FuzzTrustPolicy (TestFuzzCorpus).
func FuzzTrustPolicy(f *testing.F) {
	f.Fuzz(func(t *testing.T, issuer, partition, providerARN, ns, sa, spiffe, aud string) {
		cfg := NewTrustPolicyConfig()
		cfg.AccountID, cfg.Issuer, cfg.Namespace, cfg.ServiceAccount, cfg.SPIFFEID, cfg.Audience = "111122223333", issuer, ns, sa, spiffe, aud
		if partition != "" {
			cfg.Partition = partition
		}
		if providerARN != "" {
			cfg.ProviderARN, cfg.AccountID = providerARN, ""
		}
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
		if len(doc.Statement) != 1 {
			t.Fatalf("%d statements, want 1", len(doc.Statement))
		}
		st := doc.Statement[0]
		if st.Effect != EffectAllow || st.Action != ActionAssumeRoleWithWebIdentity {
			t.Fatalf("statement %s %s", st.Effect, st.Action)
		}
		provider, err := cfg.provider()
		if err != nil {
			t.Fatalf("policy built for flags whose provider does not resolve: %v", err)
		}
		if st.Principal.Federated != provider.String() {
			t.Fatalf("principal %q, want %q", st.Principal.Federated, provider.String())
		}
		n := 0
		for op, kv := range st.Condition {
			for k, v := range kv {
				n++
				if !strings.HasPrefix(k, provider.HostPath+":") {
					t.Fatalf("condition key %q is not under the issuer %q", k, provider.HostPath)
				}
				switch strings.TrimPrefix(k, provider.HostPath+":") {
				case "sub":
					if v != res.Subject.Value || (op == StringLike) != res.Subject.Pattern {
						t.Fatalf("sub condition %s %q, want subject %+v", op, v, res.Subject)
					}
				case "aud":
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

// TestFuzzCorpus keeps testdata/fuzz/FuzzTrustPolicy in step with these
// seeds: -update rewrites them.
func TestFuzzCorpus(t *testing.T) {
	seeds := map[string][]string{
		//                          issuer, partition, provider ARN, namespace, service account, SPIFFE ID, audience
		"service-account":      {"https://oidc.example.com/c", "", "", "team-a", "app", "", "sts.amazonaws.com"},
		"whole-namespace":      {"https://oidc.example.com", "", "", "team-a", "*", "", "sts.amazonaws.com"},
		"spiffe-prefix":        {"https://oidc.example.org", "", "", "", "", "spiffe://example.org/ns/*", "sts.amazonaws.com"},
		"china":                {"https://oidc.example.cn/", "aws-cn", "", "default", "default", "", "irsa.example.cn"},
		"gov-provider-arn":     {"", "", "arn:aws-us-gov:iam::111122223333:oidc-provider/oidc.example.com/id/ABC", "kube-system", "ebs-csi", "", "sts.amazonaws.com"},
		"quote-injection":      {"https://o\".example.com", "", "", "a\"b", "*\",\"x", "spiffe://x/*", "\",\"sub\":\"*"},
		"audience-only-try":    {"https://oidc.example.com", "", "", "", "", "", "sts.amazonaws.com"},
		"star-everything":      {"https://oidc.example.com", "*", "", "*", "*", "*", "*"},
		"provider-disagrees":   {"https://other.example.com", "aws-cn", "arn:aws:iam::111122223333:oidc-provider/oidc.example.com", "ns", "sa", "", "sts.amazonaws.com"},
		"control-characters":   {"https://oidc.example.com/\n", "aws\x00", "", "team-a\r", "app\t", "", "sts.amazonaws.com\x7f"},
		"spiffe-and-subject":   {"https://oidc.example.com", "", "", "team-a", "app", "spiffe://example.org/app", "sts.amazonaws.com"},
		"issuer-with-query":    {"https://oidc.example.com/c?x=1#f", "", "", "team-a", "app", "", "sts.amazonaws.com"},
		"issuer-http":          {"http://oidc.example.com", "", "", "team-a", "app", "", "sts.amazonaws.com"},
		"non-utf8-namespace":   {"https://oidc.example.com", "", "", "team-\xff", "app", "", "sts.amazonaws.com"},
		"question-mark-sa":     {"https://oidc.example.com", "", "", "team-a", "?", "", "sts.amazonaws.com"},
		"issuer-not-utf8":      {"https://\xc5", "", "", "0", "0", "", "0"},
		"long-service-account": {"https://oidc.example.com", "", "", "team-a", strings.Repeat("a", 300), "", "sts.amazonaws.com"},
	}
	files := map[string][]byte{}
	for name, vs := range seeds {
		args := make([]any, len(vs))
		for i, v := range vs {
			args[i] = v
		}
		files[name] = testcorpus.Encode(args...)
	}
	testcorpus.Check(t, "FuzzTrustPolicy", files, *update)
}
