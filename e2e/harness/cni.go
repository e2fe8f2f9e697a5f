package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// bridgePrefix names a node tier's bridge (with 4 hex digits, within
// Linux's 15 characters).
const bridgePrefix = "irsae2e"

// cniNetwork is the name of the Pod network in the CNI config and in the
// CNI plugins' caches.
const cniNetwork = "irsa-e2e"

// cniBinDir is where Debian's containernetworking-plugins installs them.
const cniBinDir = "/usr/lib/cni"

// podNetwork is the node's bridge and its /24, and the Service range: the
// host holds .1 on the bridge, Pods get addresses from podRangeStart on,
// and the Service range is a /24 of its own, routed from every Pod to the
// host (where kube-proxy's rules send a ClusterIP to its endpoints).
// Nothing routes beyond them.
type podNetwork struct {
	Bridge string
	HostIP net.IP
	Subnet *net.IPNet
	// Services is --service-cluster-ip-range.
	Services *net.IPNet
}

// podRangeStart is the last octet of the first Pod address.
const podRangeStart = 16

// ServiceCIDR is the API server's --service-cluster-ip-range.
func (n *podNetwork) ServiceCIDR() string { return n.Services.String() }

// APIServiceIP is the kubernetes Service's ClusterIP, the range's first
// address: every Pod's KUBERNETES_SERVICE_HOST, so it is in the API
// server's certificate.
func (n *podNetwork) APIServiceIP() net.IP {
	ip := slices.Clone(n.Services.IP.To4())
	ip[3]++
	return ip
}

// DNSServiceIP is the cluster DNS's address, the kubelet's clusterDNS: the
// bridge's host address, where CoreDNS listens.
func (n *podNetwork) DNSServiceIP() net.IP { return n.HostIP }

// choosePodNetwork picks a bridge name, a 10.213.x.0/24 for Pods and
// 10.214.x.0/24 for Services that no interface address or route of the
// machine overlaps.
func choosePodNetwork() (*podNetwork, error) {
	used, err := usedNetworks()
	if err != nil {
		return nil, err
	}
	start := rand.IntN(256)
	for i := range 256 {
		x := (start + i) % 256
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.213.%d.0/24", x))
		_, services, _ := net.ParseCIDR(fmt.Sprintf("10.214.%d.0/24", x))
		if overlapsAny(subnet, used) || overlapsAny(services, used) {
			continue
		}
		name := fmt.Sprintf("%s%04x", bridgePrefix, rand.IntN(1<<16))
		if linkExists(name) {
			continue
		}
		return &podNetwork{Bridge: name, HostIP: net.IPv4(10, 213, byte(x), 1).To4(), Subnet: subnet, Services: services}, nil
	}
	return nil, errors.New("choose a pod network: every 10.213.x.0/24 or 10.214.x.0/24 overlaps an address or route of this machine")
}

func overlapsAny(n *net.IPNet, used []*net.IPNet) bool {
	for _, u := range used {
		if u.Contains(n.IP) || n.Contains(u.IP) {
			return true
		}
	}
	return false
}

// usedNetworks are the machine's interface networks and IPv4 routes.
func usedNetworks() ([]*net.IPNet, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var used []*net.IPNet
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			used = append(used, n)
		}
	}
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return used, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1] == "Destination" {
			continue
		}
		dst, err1 := strconv.ParseUint(fields[1], 16, 32)
		mask, err2 := strconv.ParseUint(fields[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue // the default route overlaps everything and routes nowhere of ours
		}
		// /proc/net/route is little-endian on x86.
		ip := net.IPv4(byte(dst), byte(dst>>8), byte(dst>>16), byte(dst>>24))
		m := net.IPv4Mask(byte(mask), byte(mask>>8), byte(mask>>16), byte(mask>>24))
		used = append(used, &net.IPNet{IP: ip.To4(), Mask: m})
	}
	return used, nil
}

// create makes the bridge with the host address before anything else
// runs: MinIO's proxy and the kubelet bind that address, and the bridge
// plugin then only attaches Pods to it.
func (n *podNetwork) create() error {
	ones, _ := n.Subnet.Mask.Size()
	for _, args := range [][]string{
		{"link", "add", "name", n.Bridge, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", n.HostIP, ones), "dev", n.Bridge},
		{"link", "set", n.Bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("create bridge %s: ip %s: %w: %s", n.Bridge, strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// writeConfig writes the CNI conflist: bridge (no default route, no
// masquerade: Pods reach the bridge, the host's bridge address and the
// Service range through it, and nothing else), host-local IPAM keeping its
// state in dir, loopback.
func (n *podNetwork) writeConfig(confDir, ipamDir string) error {
	ones, _ := n.Subnet.Mask.Size()
	base := n.Subnet.IP.To4()
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       cniNetwork,
		"plugins": []map[string]any{
			{
				"type":      "bridge",
				"bridge":    n.Bridge,
				"isGateway": false,
				"ipMasq":    false,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": ipamDir,
					"ranges": [][]map[string]string{{{
						"subnet":     fmt.Sprintf("%s/%d", base, ones),
						"rangeStart": net.IPv4(base[0], base[1], base[2], podRangeStart).String(),
						"rangeEnd":   net.IPv4(base[0], base[1], base[2], 250).String(),
						"gateway":    n.HostIP.String(),
					}}},
					"routes": []map[string]string{{"dst": n.Services.String(), "gw": n.HostIP.String()}},
				},
			},
			{"type": "loopback"},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return fmt.Errorf("cni config dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-irsa-e2e.conflist"), data, 0o644); err != nil {
		return fmt.Errorf("write cni config: %w", err)
	}
	return nil
}

// tcpProxy forwards connections from a listener on the bridge address to a
// loopback server (MinIO), which a Pod's network namespace cannot reach.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// maxProxyConns bounds the connections a proxy carries at once.
const maxProxyConns = 64

func newTCPProxy(listen, target string) (*tcpProxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: listen on %s: %w", target, listen, err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is where the proxy listens.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			if !p.track(u) {
				u.Close()
				return
			}
			defer p.untrack(u)
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.conns) >= 2*maxProxyConns {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Close stops listening, closes every connection and waits for the
// goroutines.
func (p *tcpProxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
