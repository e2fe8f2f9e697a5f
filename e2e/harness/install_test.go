package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
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

// The Service range is apart from the Pod subnet, its first address is the
// kubernetes Service's ClusterIP, and the CNI config routes the whole
// range from every Pod to the host (and nothing else: no default route).
func TestServiceRangeRoutedToTheHost(t *testing.T) {
	_, subnet, _ := net.ParseCIDR("10.213.7.0/24")
	_, services, _ := net.ParseCIDR("10.214.7.0/24")
	n := &podNetwork{Bridge: "irsae2e0001", HostIP: net.IPv4(10, 213, 7, 1).To4(), Subnet: subnet, Services: services}
	if subnet.Contains(n.APIServiceIP()) || !services.Contains(n.APIServiceIP()) {
		t.Errorf("kubernetes ClusterIP %s: want it in %s and out of the pod subnet %s", n.APIServiceIP(), services, subnet)
	}
	if got := n.APIServiceIP().String(); got != "10.214.7.1" {
		t.Errorf("kubernetes ClusterIP %s, want the range's first address 10.214.7.1", got)
	}
	dir := t.TempDir()
	if err := n.writeConfig(dir, filepath.Join(dir, "ipam")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "10-irsa-e2e.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			Type      string `json:"type"`
			IsGateway bool   `json:"isGateway"`
			IPAM      struct {
				Routes []struct{ Dst, GW string } `json:"routes"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatal(err)
	}
	if len(conf.Plugins) == 0 || conf.Plugins[0].Type != "bridge" {
		t.Fatalf("conflist plugins %+v, want the bridge first", conf.Plugins)
	}
	br := conf.Plugins[0]
	want := []struct{ Dst, GW string }{{"10.214.7.0/24", "10.213.7.1"}}
	if br.IsGateway || !slices.Equal(br.IPAM.Routes, want) {
		t.Errorf("bridge: isGateway %v, routes %+v; want no default route and only %+v", br.IsGateway, br.IPAM.Routes, want)
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
