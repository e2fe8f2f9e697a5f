package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/kubernetes"
)

// DefaultAudience is the token audience the webhook injects by default and
// the client ID MinIO accepts.
const DefaultAudience = "sts.amazonaws.com"

// Options configure a Stack. Only Dir and Binaries are required.
type Options struct {
	// Dir holds everything the Stack writes; LogDir is Dir/logs.
	Dir string
	// Binaries come from Build.
	Binaries *Binaries
	// Audience is the token audience (default DefaultAudience).
	Audience string
	// DiscoveryFromAPIServer runs the discovery server with --from-apiserver
	// instead of --key-file with the signing key.
	DiscoveryFromAPIServer bool
	// DiscoveryArgs are appended to `irsa-webhook discovery serve`.
	DiscoveryArgs []string
	// WebhookArgs are appended to `irsa-webhook serve`.
	WebhookArgs []string
	// WebhookClientAuth runs the webhook with --client-ca-file (the Stack's
	// CA) and --client-allowed-names WebhookClientName, and the API server
	// with an AdmissionConfiguration that presents such a certificate to it
	// (WriteAdmissionConfig). The webhook's ports then cannot move.
	WebhookClientAuth bool
	// Progress receives one line per phase with its duration; may be nil.
	Progress io.Writer
	// Node adds the node tier (see Node): Binaries must come from a Build
	// with Node set, and the machine must pass NodeUnsupported.
	Node bool
	// ServiceAccountIssuer, when set, is the API server's
	// --service-account-issuer instead of the discovery server's URL: the
	// issuer an installed discovery Deployment is configured with.
	ServiceAccountIssuer string
	// NoWebhook starts no webhook process and registers none: the test
	// installs the webhook itself (Install).
	NoWebhook bool
}

// Stack is a running set of real parts: etcd, kube-apiserver, the discovery
// server, MinIO and the webhook, registered with the API server. Each part
// is a handle that can be stopped and started again.
type Stack struct {
	Dir    string
	LogDir string
	PKI    *PKI

	Etcd      *Etcd
	APIServer *APIServer
	Discovery *Discovery
	MinIO     *MinIO
	Webhook   *Webhook
	// Node is the node tier, when Options.Node asked for one.
	Node *Node

	Binaries *Binaries
	Audience string
	// SigningKey is the key the API server signs tokens with at start.
	SigningKey *SigningKey
	// DiscoveryKubeconfig is a kubeconfig whose user is bound only to the
	// system:service-account-issuer-discovery ClusterRole.
	DiscoveryKubeconfig string
	// WebhookKubeconfig is the webhook's: get/list/watch ServiceAccounts only.
	WebhookKubeconfig string
	// WebhookCertDir holds the webhook's serving tls.crt and tls.key.
	WebhookCertDir string

	progress *progress
}

// Start brings up the whole stack in dependency order and returns once every
// part is ready and the API server is calling the webhook. On error every
// process already started is stopped again, and the returned Stack (never
// nil once Dir exists) still lets the caller dump the logs.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Dir == "" || o.Binaries == nil {
		return nil, errors.New("start stack: Dir and Binaries are required")
	}
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	s := &Stack{Dir: o.Dir, LogDir: filepath.Join(o.Dir, "logs"), Binaries: o.Binaries, Audience: o.Audience, progress: &progress{w: o.Progress}}
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	if err := s.start(ctx, o); err != nil {
		_ = s.Stop()
		return s, err
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context, o Options) (err error) {
	total := time.Now()
	if s.PKI, err = NewPKI(filepath.Join(o.Dir, "pki")); err != nil {
		return err
	}
	if s.SigningKey, err = NewSigningKey(filepath.Join(o.Dir, "pki"), "sa-signing-1"); err != nil {
		return err
	}
	if s.Discovery, err = newDiscovery(o.Binaries.IrsaWebhook, s.PKI, s.LogDir); err != nil {
		return err
	}

	var kubelets *KubeletAccess
	var nodeIPs []net.IP
	if o.Node {
		if o.Binaries.Node == nil {
			return errors.New("node tier: the binaries were built without BuildOptions.Node")
		}
		if err := s.phase("node host", func() (err error) { s.Node, err = planNode(ctx, o.Dir); return err }); err != nil {
			return err
		}
		nodeIPs = []net.IP{s.Node.Net.HostIP}
		kubelets = &KubeletAccess{}
		if kubelets.ClientCert, kubelets.ClientKey, err = s.PKI.ClientCert("kube-apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"); err != nil {
			return err
		}
	}

	if s.Etcd, err = newEtcd(o.Binaries.Etcd, o.Dir, s.LogDir); err != nil {
		return err
	}
	if err := s.phase("etcd", func() error { return s.Etcd.Start(ctx) }); err != nil {
		return err
	}
	apiCfg := APIServerConfig{
		Issuer:     cmp.Or(o.ServiceAccountIssuer, s.Discovery.Issuer),
		Audiences:  []string{o.Audience},
		SigningKey: s.SigningKey,
		Kubelets:   kubelets,
		ExtraIPs:   nodeIPs,
	}
	if s.Node != nil {
		apiCfg.ServiceCIDR = s.Node.Net.ServiceCIDR()
		// In-cluster clients verify the API server at the kubernetes
		// Service's ClusterIP.
		apiCfg.ExtraIPs = append(slices.Clone(nodeIPs), s.Node.Net.APIServiceIP())
	}
	if o.WebhookClientAuth {
		if apiCfg.AdmissionConfigFile, err = s.prepareWebhookClientAuth(o); err != nil {
			return err
		}
	}
	s.APIServer, err = newAPIServer(o.Binaries.KubeAPIServer, s.PKI, s.Etcd, o.Dir, s.LogDir, apiCfg)
	if err != nil {
		return err
	}
	if err := s.phase("kube-apiserver", func() error { return s.APIServer.Start(ctx) }); err != nil {
		return err
	}
	if err := s.phase("rbac", func() error { return s.setUpRBAC(ctx) }); err != nil {
		return err
	}

	src := DiscoverySource{KeyFiles: []string{s.SigningKey.PublicFile}, ExtraArgs: o.DiscoveryArgs}
	if o.DiscoveryFromAPIServer {
		src = DiscoverySource{Kubeconfig: s.DiscoveryKubeconfig, ExtraArgs: o.DiscoveryArgs}
	}
	s.Discovery.Configure(src)
	if err := s.phase("discovery", func() error { return s.Discovery.Start(ctx) }); err != nil {
		return err
	}

	if s.MinIO, err = newMinIO(o.Binaries.MinIO, s.PKI, o.Dir, s.LogDir,
		s.Discovery.Issuer+"/.well-known/openid-configuration", o.Audience, nodeIPs...); err != nil {
		return err
	}
	if err := s.phase("minio", func() error {
		if err := s.MinIO.Start(ctx); err != nil {
			return err
		}
		return s.MinIO.PutObject(ctx, Bucket, ObjectKey, ObjectContent)
	}); err != nil {
		return err
	}

	if o.NoWebhook {
		return s.startNode(ctx, total)
	}
	if s.Webhook == nil {
		if s.WebhookCertDir, err = s.PKI.ServingCert("irsa-webhook"); err != nil {
			return err
		}
		if s.Webhook, err = newWebhook(o.Binaries.IrsaWebhook, s.WebhookKubeconfig, s.WebhookCertDir, s.LogDir, o.Audience, o.WebhookArgs); err != nil {
			return err
		}
	}
	if err := s.phase("irsa-webhook", func() error {
		if err := s.Webhook.Start(ctx); err != nil {
			return err
		}
		if err := RegisterWebhook(ctx, s.APIServer.Client, s.Webhook.URL, s.PKI.CAPEM); err != nil {
			return err
		}
		return s.waitWebhookCalled(ctx)
	}); err != nil {
		return err
	}
	return s.startNode(ctx, total)
}

// startNode starts the node tier, if any: the last part of a Stack.
func (s *Stack) startNode(ctx context.Context, total time.Time) error {
	if s.Node != nil {
		if err := s.Node.start(ctx, s); err != nil {
			return fmt.Errorf("node tier: %w", err)
		}
	}
	s.progress.printf("stack: ready in %s (logs in %s)", since(total), s.LogDir)
	return nil
}

func (s *Stack) phase(name string, f func() error) error {
	start := time.Now()
	if err := f(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	s.progress.printf("stack: %s ready in %s", name, since(start))
	return nil
}

// Processes lists every started part, in start order.
func (s *Stack) Processes() []*Process {
	var ps []*Process
	if s.Etcd != nil {
		ps = append(ps, s.Etcd.Process)
	}
	if s.APIServer != nil {
		ps = append(ps, s.APIServer.Process)
	}
	if s.Discovery != nil {
		ps = append(ps, s.Discovery.Process)
	}
	if s.MinIO != nil {
		ps = append(ps, s.MinIO.Process)
	}
	if s.Webhook != nil {
		ps = append(ps, s.Webhook.Process)
	}
	if s.Node != nil {
		ps = append(ps, s.Node.Processes()...)
	}
	return ps
}

// Stop stops every process in reverse start order and reports every
// failure to stop. A node tier goes first, while the API server can still
// tell its kubelet to stop the Pods, and the host is put back last.
func (s *Stack) Stop() error {
	var errs []error
	if s.Node != nil {
		var c kubernetes.Interface
		if s.APIServer != nil && s.APIServer.Running() {
			c = s.APIServer.Client
		}
		if err := s.Node.stop(context.Background(), c); err != nil {
			errs = append(errs, err)
		}
	}
	ps := s.Processes()
	for i := len(ps) - 1; i >= 0; i-- {
		if err := ps[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Node != nil {
		if err := s.Node.restore(); err != nil {
			errs = append(errs, fmt.Errorf("restore the host after the node tier: %w", err))
		}
	}
	return errors.Join(errs...)
}

// DumpLogs writes the last lines of every process's log to w.
func (s *Stack) DumpLogs(w io.Writer, lines int) {
	for _, p := range s.Processes() {
		fmt.Fprintf(w, "===== %s (%s), last %d lines =====\n%s\n", p.Name, p.LogPath, lines, p.LogTail(lines))
	}
}
