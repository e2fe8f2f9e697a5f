package harness

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/irsa-webhook/irsa-webhook/internal/image"
)

// The generated overlay changes the image reference and nothing else: the
// rendered install equals the overlay's own rendering with that one
// string replaced.
func TestRenderInstallChangesOnlyTheImage(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const overlay, ref = "deploy/overlays/self-signed", "irsa-webhook.local/irsa-webhook:e2e"
	in, err := RenderInstall(root, t.TempDir(), overlay, ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := yaml.Marshal(in.Objects)
	if err != nil {
		t.Fatal(err)
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), filepath.Join(root, overlay))
	if err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	plain, err := yaml.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	shipped := image.WebhookRepository + ":"
	if n := strings.Count(string(plain), shipped); n != 2 {
		t.Fatalf("the overlay names %s %d times, want 2 (webhook and discovery)", shipped, n)
	}
	want := strings.NewReplacer(shipped+"v0.1.0", ref).Replace(string(plain))
	if d := cmp.Diff(want, string(got)); d != "" {
		t.Errorf("rendered install differs from the overlay beyond the image (-want +got):\n%s", d)
	}
	if got := in.ContainerArg(InstallNamespace, "irsa-discovery", "issuer"); got == "" {
		t.Errorf("no --issuer found in the discovery Deployment")
	}
}

// The Service range's first address, the kubernetes Service's ClusterIP,
// is the bridge's host address; no Pod address is in the range.
func TestServiceCIDRStartsAtTheHostAddress(t *testing.T) {
	_, subnet, _ := net.ParseCIDR("10.213.7.0/24")
	n := &podNetwork{HostIP: net.IPv4(10, 213, 7, 1).To4(), Subnet: subnet}
	_, svc, err := net.ParseCIDR(n.ServiceCIDR())
	if err != nil {
		t.Fatal(err)
	}
	first := net.IPv4(svc.IP[0], svc.IP[1], svc.IP[2], svc.IP[3]+1)
	if !first.Equal(n.HostIP) {
		t.Errorf("first service IP %s, want the host address %s", first, n.HostIP)
	}
	if svc.Contains(net.IPv4(10, 213, 7, podRangeStart)) || !svc.Contains(net.IPv4(10, 213, 7, podRangeStart-1)) {
		t.Errorf("service range %s overlaps the pod range from .%d or leaves a gap", svc, podRangeStart)
	}
}

// The Ingress's proxy tunnels only to the issuer's host on 443.
func TestIngressProxyRefusesOtherHosts(t *testing.T) {
	s := &Stack{}
	var err error
	if s.PKI, err = NewPKI(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	in, err := s.StartIngress("oidc.example.com", "irsa-system", "irsa-discovery", "http")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	proxy, _ := url.Parse(in.ProxyURL)
	for _, target := range []string{"example.org:443", "oidc.example.com:80", "127.0.0.1:22"} {
		c, err := net.Dial("tcp", proxy.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("CONNECT %s: %v", target, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("CONNECT %s: %s, want 403", target, resp.Status)
		}
	}
}
