package harness

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// APIServer is a kube-apiserver on 127.0.0.1 backed by an Etcd, with RBAC
// authorization, no anonymous access, and client-certificate authentication
// against the Stack's CA.
type APIServer struct {
	*Process
	URL string

	// Admin is a system:masters client; AdminKubeconfig is the same as a file.
	Admin           *rest.Config
	AdminKubeconfig string
	Client          kubernetes.Interface

	pki      *PKI
	dir      string
	port     int
	etcdURL  string
	certDir  string
	issuer   string
	audience []string
	// admissionConfig is --admission-control-config-file, when set.
	admissionConfig string
	kubelets        *KubeletAccess
	serviceCIDR     string

	// SigningKey signs new tokens; VerifyKeys (which should include the
	// signing key's public half) are the keys tokens are accepted with.
	// Change them and call Restart to rotate.
	SigningKey *SigningKey
	VerifyKeys []*SigningKey
}

// APIServerConfig says what tokens the API server issues.
type APIServerConfig struct {
	// Issuer is --service-account-issuer: the discovery server's URL.
	Issuer string
	// Audiences is --api-audiences.
	Audiences []string
	// SigningKey signs service account tokens.
	SigningKey *SigningKey
	// AdmissionConfigFile, when set, is --admission-control-config-file:
	// an AdmissionConfiguration, read once at start (see
	// WriteAdmissionConfig).
	AdmissionConfigFile string
	// Kubelets, when set, serves a node tier: Node and RBAC authorization,
	// NodeRestriction, the client certificate the API server shows a
	// kubelet (for Pod logs), and Services (webhooks among them) reached
	// at their endpoints' Pod addresses (--enable-aggregator-routing): no
	// kube-proxy routes ClusterIPs on this machine.
	Kubelets *KubeletAccess
	// ServiceCIDR is --service-cluster-ip-range (default 10.96.0.0/16);
	// its first address is the kubernetes Service's ClusterIP, which the
	// kubelet gives Pods as KUBERNETES_SERVICE_HOST.
	ServiceCIDR string
	// ExtraIPs are more addresses the serving certificate names (where
	// Pods reach the API server).
	ExtraIPs []net.IP
}

// KubeletAccess is how the API server reaches kubelets: by their
// InternalIP (no DNS names the node), with this client certificate,
// verifying their serving certificates with the Stack's CA.
type KubeletAccess struct {
	ClientCert, ClientKey string
}

func newAPIServer(bin string, pki *PKI, etcd *Etcd, dir, logDir string, cfg APIServerConfig) (*APIServer, error) {
	certDir, err := pki.ServingCert("kube-apiserver", cfg.ExtraIPs...)
	if err != nil {
		return nil, err
	}
	a := &APIServer{
		Process:    &Process{Name: "kube-apiserver", Path: bin, LogPath: filepath.Join(logDir, "kube-apiserver.log")},
		pki:        pki,
		dir:        dir,
		etcdURL:    etcd.ClientURL,
		certDir:    certDir,
		issuer:     cfg.Issuer,
		audience:   cfg.Audiences,
		kubelets:   cfg.Kubelets,
		SigningKey: cfg.SigningKey,
		VerifyKeys: []*SigningKey{cfg.SigningKey},

		admissionConfig: cfg.AdmissionConfigFile,
		serviceCIDR:     cfg.ServiceCIDR,
	}
	certFile, keyFile, err := pki.ClientCert("admin", "e2e-admin", "system:masters")
	if err != nil {
		return nil, err
	}
	a.UsePorts = func(ports []int) error {
		a.port = ports[0]
		a.URL = "https://" + hostPort(a.port)
		a.Process.Args = a.args()
		a.Admin = a.clientConfig(certFile, keyFile)
		var err error
		if a.AdminKubeconfig, err = a.WriteKubeconfig("admin", certFile, keyFile); err != nil {
			return err
		}
		if a.Client, err = kubernetes.NewForConfig(a.Admin); err != nil {
			return fmt.Errorf("admin client: %w", err)
		}
		return nil
	}
	if err := a.listenOn(1); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *APIServer) args() []string {
	extra := make([]string, 0, len(a.VerifyKeys)+1)
	for _, k := range a.VerifyKeys {
		extra = append(extra, "--service-account-key-file="+k.PublicFile)
	}
	if a.admissionConfig != "" {
		extra = append(extra, "--admission-control-config-file="+a.admissionConfig)
	}
	authz := []string{"--authorization-mode=RBAC"}
	if k := a.kubelets; k != nil {
		authz = []string{
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate=" + k.ClientCert,
			"--kubelet-client-key=" + k.ClientKey,
			"--kubelet-certificate-authority=" + a.pki.CAFile,
			"--enable-aggregator-routing=true",
		}
	}
	extra = append(extra, authz...)
	return append([]string{
		"--etcd-servers=" + a.etcdURL,
		"--bind-address=127.0.0.1",
		// Without an advertise address the issuer URLs and the kubernetes
		// Service use the machine's interface IP; 127.0.0.1 then needs the
		// reconciler off.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", a.port),
		"--tls-cert-file=" + filepath.Join(a.certDir, "tls.crt"),
		"--tls-private-key-file=" + filepath.Join(a.certDir, "tls.key"),
		"--client-ca-file=" + a.pki.CAFile,
		"--anonymous-auth=false",
		"--service-cluster-ip-range=" + cmp.Or(a.serviceCIDR, "10.96.0.0/16"),
		"--service-account-issuer=" + a.issuer,
		"--api-audiences=" + strings.Join(a.audience, ","),
		"--service-account-signing-key-file=" + a.SigningKey.PrivateFile,
		"--allow-privileged=true",
		"--profiling=false",
		// Close open watches (the webhook's and the discovery server's) on
		// stop instead of hanging until the request timeout.
		"--shutdown-watch-termination-grace-period=2s",
		"--v=1",
	}, extra...)
}

// Start starts kube-apiserver and waits for /readyz.
func (a *APIServer) Start(ctx context.Context) error {
	a.Process.Args = a.args()
	return a.startAndWait(ctx, a.WaitReady)
}

// Restart stops kube-apiserver and starts it again with the current
// SigningKey and VerifyKeys.
func (a *APIServer) Restart(ctx context.Context) error {
	if err := a.Process.Stop(); err != nil {
		return err
	}
	return a.Start(ctx)
}

// WaitReady polls /readyz (which includes the RBAC bootstrap) until it
// answers ok.
func (a *APIServer) WaitReady(ctx context.Context) error {
	return waitFor(ctx, 120*time.Second, "kube-apiserver /readyz", a.Process, func(ctx context.Context) error {
		body, err := a.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, body)
		}
		return nil
	})
}

func (a *APIServer) clientConfig(certFile, keyFile string) *rest.Config {
	return &rest.Config{
		Host:      a.URL,
		UserAgent: "irsa-webhook-e2e",
		TLSClientConfig: rest.TLSClientConfig{
			CAFile: a.pki.CAFile, CertFile: certFile, KeyFile: keyFile,
		},
		QPS: 100, Burst: 200,
	}
}

// UserConfig issues a client certificate for user in groups and returns a
// client config and a kubeconfig file for it. RBAC decides what it may do.
func (a *APIServer) UserConfig(name, user string, groups ...string) (*rest.Config, string, error) {
	certFile, keyFile, err := a.pki.ClientCert(name, user, groups...)
	if err != nil {
		return nil, "", err
	}
	path, err := a.WriteKubeconfig(name, certFile, keyFile)
	if err != nil {
		return nil, "", err
	}
	return a.clientConfig(certFile, keyFile), path, nil
}

// WriteKubeconfig writes a kubeconfig for the given client certificate.
func (a *APIServer) WriteKubeconfig(name, certFile, keyFile string) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: a.URL, CertificateAuthority: a.pki.CAFile}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = "e2e"
	path := kubeconfigPath(a.dir, name)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("write kubeconfig %s: %w", name, err)
	}
	return path, nil
}

// kubeconfigPath is where WriteKubeconfig writes the kubeconfig called name.
func kubeconfigPath(dir, name string) string {
	return filepath.Join(dir, "kubeconfig-"+name)
}
