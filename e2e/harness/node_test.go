package harness

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitRule(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"-A INPUT -j KUBE-FIREWALL", []string{"-A", "INPUT", "-j", "KUBE-FIREWALL"}},
		{`-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -j DROP`,
			[]string{"-A", "KUBE-FIREWALL", "!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-m", "comment", "--comment", "block incoming localnet connections", "-j", "DROP"}},
		{`-A X -m comment --comment "say \"hi\"" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", `say "hi"`, "-j", "Y"}},
		{`-A X --comment ""  -j Y`, []string{"-A", "X", "--comment", "", "-j", "Y"}},
	} {
		if d := cmp.Diff(tc.want, splitRule(tc.line)); d != "" {
			t.Errorf("splitRule(%q) (-want +got):\n%s", tc.line, d)
		}
	}
}

func TestJumpsTo(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want bool
	}{
		{"-A INPUT -j KUBE-FIREWALL", true},
		{"-A INPUT -g KUBE-FIREWALL", true},
		{"-A INPUT -j ACCEPT", false},
		{"-A INPUT -m comment --comment KUBE-FIREWALL -j ACCEPT", false},
	} {
		if got := jumpsTo(splitRule(tc.rule), []string{"KUBE-FIREWALL"}); got != tc.want {
			t.Errorf("jumpsTo(%q) = %v, want %v", tc.rule, got, tc.want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/a":              "/tmp/a",
		`/tmp/with\040space`:  "/tmp/with space",
		`/tmp/tab\011end`:     "/tmp/tab\tend",
		`/tmp/back\134slash`:  `/tmp/back\slash`,
		`/tmp/trailing\04`:    `/tmp/trailing\04`,
		`/tmp/not\09octal/ok`: `/tmp/not\09octal/ok`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOverlapsAny(t *testing.T) {
	cidr := func(s string) *net.IPNet {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	used := []*net.IPNet{cidr("10.213.5.0/24"), cidr("10.0.0.0/8"), cidr("192.168.1.7/32")}
	for _, tc := range []struct {
		n    string
		used []*net.IPNet
		want bool
	}{
		{"10.213.5.0/24", used[:1], true},
		{"10.213.6.0/24", used[:1], false},
		{"10.213.6.0/24", used[:2], true}, // inside a /8 route
		{"192.168.1.0/24", used, true},    // holds an address
		{"172.16.0.0/24", used, false},
	} {
		if got := overlapsAny(cidr(tc.n), tc.used); got != tc.want {
			t.Errorf("overlapsAny(%s, %v) = %v, want %v", tc.n, tc.used, got, tc.want)
		}
	}
}

func TestServingCertExtraIPs(t *testing.T) {
	p, err := NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := p.ServingCert("minio", net.IPv4(10, 213, 7, 1))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "10.213.7.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.CertPool(), DNSName: host}); err != nil {
			t.Errorf("does not verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.CertPool(), DNSName: "10.213.7.2"}); err == nil {
		t.Error("verifies for an address it was not issued for")
	}
}
