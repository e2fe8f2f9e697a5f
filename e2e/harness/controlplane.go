package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ControllerManager is kube-controller-manager: Deployments, ReplicaSets,
// EndpointSlices, the ServiceAccount token controller and the root CA
// publisher (the kube-root-ca.crt ConfigMap every Pod's API access volume
// needs). It serves no port of its own.
type ControllerManager struct {
	*Process
	api *APIServer
}

func newControllerManager(bin string, api *APIServer, pki *PKI, key *SigningKey, logDir string) (*ControllerManager, error) {
	// system:masters: without per-controller ServiceAccount credentials
	// every controller acts as the controller manager itself.
	_, kubeconfig, err := api.UserConfig("kube-controller-manager", "system:kube-controller-manager", "system:masters")
	if err != nil {
		return nil, err
	}
	return &ControllerManager{api: api, Process: &Process{
		Name: "kube-controller-manager",
		Path: bin,
		Args: []string{
			"--kubeconfig=" + kubeconfig,
			"--secure-port=0",
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--service-account-private-key-file=" + key.PrivateFile,
			"--root-ca-file=" + pki.CAFile,
			"--controllers=*,-node-ipam-controller,-certificatesigningrequest-signing-controller,-certificatesigningrequest-approving-controller,-bootstrap-signer-controller,-token-cleaner-controller",
			"--concurrent-deployment-syncs=2",
			"--v=1",
		},
		LogPath: filepath.Join(logDir, "kube-controller-manager.log"),
	}}, nil
}

// Start starts the controller manager and waits until it published
// kube-root-ca.crt in the default namespace.
func (c *ControllerManager) Start(ctx context.Context) error {
	return c.startAndWait(ctx, func(ctx context.Context) error {
		return waitFor(ctx, 120*time.Second, "kube-controller-manager (kube-root-ca.crt in default)", c.Process, func(ctx context.Context) error {
			_, err := c.api.Client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			return err
		})
	})
}

// Scheduler is kube-scheduler, with /healthz on 127.0.0.1 (with no
// authentication or authorization kubeconfig it answers nothing else).
type Scheduler struct {
	*Process
	healthURL string
}

func newScheduler(bin string, api *APIServer, logDir string) (*Scheduler, error) {
	_, kubeconfig, err := api.UserConfig("kube-scheduler", "system:kube-scheduler")
	if err != nil {
		return nil, err
	}
	s := &Scheduler{Process: &Process{Name: "kube-scheduler", Path: bin, LogPath: filepath.Join(logDir, "kube-scheduler.log")}}
	s.UsePorts = func(ports []int) error {
		s.healthURL = "https://" + hostPort(ports[0]) + "/healthz"
		s.Args = []string{
			"--kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--leader-elect=false",
			"--v=1",
		}
		return nil
	}
	if err := s.listenOn(1); err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the scheduler and waits for its /healthz.
func (s *Scheduler) Start(ctx context.Context) error {
	// Its serving certificate is self-signed in memory; /healthz says
	// nothing secret.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	return s.startAndWait(ctx, func(ctx context.Context) error {
		return waitFor(ctx, 120*time.Second, "kube-scheduler /healthz", s.Process, func(ctx context.Context) error {
			if err := httpOK(ctx, client, s.healthURL); err != nil {
				return fmt.Errorf("kube-scheduler: %w", err)
			}
			return nil
		})
	})
}
