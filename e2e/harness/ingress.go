package harness

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Ingress plays the part of the Ingress in front of the installed
// discovery Service (deploy/base/discovery/ingress-example.yaml): it
// terminates TLS for the issuer's host with a certificate of the Stack's
// CA and forwards only the two discovery paths to a ready endpoint of the
// Service, found as the API server finds a webhook's (its EndpointSlices).
// Nothing on this machine resolves the issuer's public host, so clients
// on the host reach it through ProxyURL, an HTTP CONNECT proxy that opens
// tunnels to that one host only (MinIO gets it as HTTPS_PROXY): a client
// still dials https://HOST/..., verifies HOST's certificate and sends
// HOST. On a node tier it also listens on the bridge's host address, port
// 443, and the cluster DNS answers HOST with that address, as public DNS
// would: a Pod reaches the issuer as anyone on the internet does.
type Ingress struct {
	// Host is the issuer's host name the certificate is for.
	Host string
	// ProxyURL is the CONNECT proxy, http://127.0.0.1:PORT.
	ProxyURL string

	node           *Node
	podLn          net.Listener
	tlsLn, proxyLn net.Listener
	tlsSrv, proxy  *http.Server
	wg             sync.WaitGroup
	sem            chan struct{}
}

// ingressPaths are what the example Ingress routes (pathType Exact).
var ingressPaths = []string{"/.well-known/openid-configuration", "/openid/v1/jwks"}

// maxIngressTunnels bounds the tunnels open at once.
const maxIngressTunnels = 32

// StartIngress serves host in front of Service namespace/service's port
// named portName.
func (s *Stack) StartIngress(host, namespace, service, portName string) (*Ingress, error) {
	certDir := filepath.Join(s.PKI.Dir, "ingress-"+host)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: host},
		DNSNames:    []string{host},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := s.PKI.issue(certDir, "tls.crt", "tls.key", tmpl); err != nil {
		return nil, err
	}
	in := &Ingress{Host: host, sem: make(chan struct{}, maxIngressTunnels)}
	var err error
	if in.tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("ingress: %w", err)
	}
	if in.proxyLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		in.tlsLn.Close()
		return nil, fmt.Errorf("ingress: %w", err)
	}
	in.ProxyURL = "http://" + in.proxyLn.Addr().String()
	backend := &serviceBackend{api: s.APIServer, namespace: namespace, service: service, port: portName}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(r.In.Context().Value(backendKey{}).(*url.URL))
			r.Out.Host = host
		},
	}
	in.tlsSrv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !slices.Contains(ingressPaths, r.URL.Path) {
				http.NotFound(w, r)
				return
			}
			u, err := backend.pick(r.Context())
			if err != nil {
				http.Error(w, "no ready endpoint of "+namespace+"/"+service+": "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, u)))
		}),
	}
	in.proxy = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(in.connect)}
	listeners := []net.Listener{in.tlsLn}
	if s.Node != nil && s.Node.DNS != nil {
		if in.podLn, err = net.Listen("tcp", net.JoinHostPort(s.Node.Net.HostIP.String(), "443")); err != nil {
			in.tlsLn.Close()
			in.proxyLn.Close()
			return nil, fmt.Errorf("ingress on the pod network: %w", err)
		}
		listeners = append(listeners, in.podLn)
	}
	for _, ln := range listeners {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			_ = in.tlsSrv.ServeTLS(ln, filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
		}()
	}
	in.wg.Add(1)
	go func() { defer in.wg.Done(); _ = in.proxy.Serve(in.proxyLn) }()
	if in.podLn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Node.DNS.AddHost(ctx, host, s.Node.Net.HostIP); err != nil {
			in.Close()
			return nil, fmt.Errorf("ingress: publish %s in the cluster DNS: %w", host, err)
		}
		in.node = s.Node
	}
	return in, nil
}

type backendKey struct{}

// connect opens a tunnel to the TLS listener for CONNECT Host:443 and
// refuses everything else.
func (in *Ingress) connect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect || r.Host != net.JoinHostPort(in.Host, "443") {
		http.Error(w, "this proxy only tunnels to "+in.Host+":443", http.StatusForbidden)
		return
	}
	select {
	case in.sem <- struct{}{}:
		defer func() { <-in.sem }()
	default:
		http.Error(w, "too many tunnels", http.StatusServiceUnavailable)
		return
	}
	up, err := net.DialTimeout("tcp", in.tlsLn.Addr().String(), 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer up.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	c, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, buf); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// Close stops both servers and every tunnel, and takes the host out of
// the cluster DNS.
func (in *Ingress) Close() {
	if in.node != nil {
		_ = in.node.DNS.RemoveHost(in.Host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = in.proxy.Shutdown(ctx)
	_ = in.tlsSrv.Shutdown(ctx)
	_ = in.proxy.Close()
	_ = in.tlsSrv.Close()
	in.wg.Wait()
}

// serviceBackend finds a ready endpoint of a Service's named port.
type serviceBackend struct {
	api                      *APIServer
	namespace, service, port string
}

func (b *serviceBackend) pick(ctx context.Context) (*url.URL, error) {
	eps, err := ReadyEndpoints(ctx, b.api.Client, b.namespace, b.service, b.port)
	if err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		return nil, errors.New("none ready")
	}
	return &url.URL{Scheme: "http", Host: eps[rand.IntN(len(eps))]}, nil
}

// ReadyEndpoints lists the ready endpoints (ip:port) of Service
// namespace/service's port named port, from its EndpointSlices.
func ReadyEndpoints(ctx context.Context, c kubernetes.Interface, namespace, service, port string) ([]string, error) {
	list, err := c.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sl := range list.Items {
		for _, p := range sl.Ports {
			if ptr.Deref(p.Name, "") != port || p.Port == nil {
				continue
			}
			for _, e := range sl.Endpoints {
				if !ptr.Deref(e.Conditions.Ready, false) {
					continue
				}
				for _, a := range e.Addresses {
					out = append(out, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	return out, nil
}

// UseOpenIDProvider points MinIO at configURL, reached through
// httpsProxy when set (an Ingress's ProxyURL), and restarts it.
func (m *MinIO) UseOpenIDProvider(ctx context.Context, configURL, httpsProxy string) error {
	m.SetOpenIDConfigURL(configURL)
	m.Process.Env = slices.DeleteFunc(m.Process.Env, func(e string) bool { return strings.HasPrefix(e, "HTTPS_PROXY=") })
	if httpsProxy != "" {
		m.Process.Env = append(m.Process.Env, "HTTPS_PROXY="+httpsProxy)
	}
	return m.Restart(ctx)
}
