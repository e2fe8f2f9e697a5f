package harness

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterDomain is the cluster's DNS domain (the kubelet's clusterDomain).
const ClusterDomain = "cluster.local"

// CoreDNS is the cluster DNS: CoreDNS (built from e2e/build/coredns) on
// the bridge's host address, port 53, the kubelet's clusterDNS. It answers
// the cluster's Service names from the API server (the kubernetes plugin)
// and the public names a test adds (AddHost: an issuer's host, served by
// a stand-in Ingress on the bridge), and forwards nothing, so a Pod
// resolves nothing beyond this machine.
type CoreDNS struct {
	*Process
	// Addr is where Pods send queries, HOSTIP:53.
	Addr string

	readyURL  string
	hostsFile string
	api       *APIServer

	mu    sync.Mutex
	hosts map[string]net.IP
}

// corednsUser is who CoreDNS is to the API server; grantRead gives it
// what its kubernetes plugin reads.
const corednsUser = "irsa-e2e:coredns"

func newCoreDNS(bin string, api *APIServer, ip net.IP, dir, logDir string) (*CoreDNS, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("coredns dir: %w", err)
	}
	_, kubeconfig, err := api.UserConfig("coredns", corednsUser)
	if err != nil {
		return nil, err
	}
	d := &CoreDNS{
		Addr:      net.JoinHostPort(ip.String(), "53"),
		hostsFile: filepath.Join(dir, "hosts"),
		api:       api,
		hosts:     map[string]net.IP{},
		Process: &Process{
			Name:    "coredns",
			Path:    bin,
			Env:     []string{},
			LogPath: filepath.Join(logDir, "coredns.log"),
		},
	}
	if err := d.writeHosts(); err != nil {
		return nil, err
	}
	corefile := filepath.Join(dir, "Corefile")
	d.UsePorts = func(ports []int) error {
		d.readyURL = "http://" + hostPort(ports[0]) + "/ready"
		// hosts first: a name a test added is the answer; the kubernetes
		// plugin owns the cluster domain and the reverse zones; anything
		// else is answered by nobody (no forward).
		conf := fmt.Sprintf(`.:53 {
	bind %s
	ready %s
	errors
	hosts %s {
		reload 1s
		fallthrough
	}
	kubernetes %s in-addr.arpa ip6.arpa {
		kubeconfig %s
		fallthrough in-addr.arpa ip6.arpa
	}
}
`, ip, hostPort(ports[0]), d.hostsFile, ClusterDomain, kubeconfig)
		if err := os.WriteFile(corefile, []byte(conf), 0o644); err != nil {
			return fmt.Errorf("write Corefile: %w", err)
		}
		d.Args = []string{"-conf", corefile}
		return nil
	}
	if err := d.listenOn(1); err != nil {
		return nil, err
	}
	return d, nil
}

// Start gives CoreDNS its read access, starts it and waits for /ready
// (its kubernetes plugin has synced).
func (d *CoreDNS) Start(ctx context.Context) error {
	if err := d.grantRead(ctx); err != nil {
		return err
	}
	return d.startAndWait(ctx, func(ctx context.Context) error {
		return waitFor(ctx, 60*time.Second, "coredns /ready", d.Process, func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, d.readyURL)
		})
	})
}

// grantRead binds corednsUser to reading Services, EndpointSlices and
// Namespaces, what the kubernetes plugin lists and watches.
func (d *CoreDNS) grantRead(ctx context.Context) error {
	c := d.api.Client.RbacV1()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: corednsUser},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: corednsUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: corednsUser},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: corednsUser}},
	}
	if _, err := c.ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("coredns cluster role: %w", err)
	}
	if _, err := c.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("coredns cluster role binding: %w", err)
	}
	return nil
}

// AddHost makes name resolve to ip for every Pod, as a public DNS record
// would, and waits (bounded) until CoreDNS answers it.
func (d *CoreDNS) AddHost(ctx context.Context, name string, ip net.IP) error {
	d.mu.Lock()
	d.hosts[name] = ip
	err := d.writeHosts()
	d.mu.Unlock()
	if err != nil {
		return err
	}
	r := d.Resolver()
	return waitFor(ctx, 30*time.Second, "coredns to answer "+name, d.Process, func(ctx context.Context) error {
		addrs, err := r.LookupHost(ctx, name)
		if err != nil {
			return err
		}
		if !slices.Contains(addrs, ip.String()) {
			return fmt.Errorf("%s resolves to %v, want %s", name, addrs, ip)
		}
		return nil
	})
}

// RemoveHost takes name out again.
func (d *CoreDNS) RemoveHost(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.hosts, name)
	return d.writeHosts()
}

// Resolver asks CoreDNS and nobody else, as a Pod does.
func (d *CoreDNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, network, d.Addr)
	}}
}

// writeHosts replaces the hosts file in one rename, so CoreDNS never reads
// half of it. Called with mu held (or before CoreDNS starts).
func (d *CoreDNS) writeHosts() error {
	var b strings.Builder
	b.WriteString("# Names a test publishes for the node's Pods.\n")
	for _, name := range slices.Sorted(maps.Keys(d.hosts)) {
		fmt.Fprintf(&b, "%s %s\n", d.hosts[name], name)
	}
	tmp := d.hostsFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write coredns hosts: %w", err)
	}
	if err := os.Rename(tmp, d.hostsFile); err != nil {
		return fmt.Errorf("write coredns hosts: %w", err)
	}
	return nil
}
