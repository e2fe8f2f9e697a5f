package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kubelet is the node's kubelet: registered as NodeName, serving on the
// bridge's host address (the node IP), its root and Pod logs in the node's
// directory.
type Kubelet struct {
	*Process
	// RootDir is --root-dir: Pods' volumes (the projected token among
	// them) are under RootDir/pods/UID/volumes.
	RootDir string
	// PodLogsDir holds the containers' logs.
	PodLogsDir string

	api *APIServer
}

func newKubelet(bin string, api *APIServer, pki *PKI, dir, logDir, socket string, pn *podNetwork) (*Kubelet, error) {
	nodeIP := pn.HostIP
	k := &Kubelet{RootDir: filepath.Join(dir, "root"), PodLogsDir: filepath.Join(dir, "pod-logs"), api: api}
	for _, d := range []string{k.RootDir, k.PodLogsDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("kubelet dir: %w", err)
		}
	}
	_, kubeconfig, err := api.UserConfig("kubelet", "system:node:"+NodeName, "system:nodes")
	if err != nil {
		return nil, err
	}
	serving, err := pki.ServingCert("kubelet", nodeIP)
	if err != nil {
		return nil, err
	}
	k.Process = &Process{
		Name:    "kubelet",
		Path:    bin,
		Env:     []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		LogPath: filepath.Join(logDir, "kubelet.log"),
	}
	k.UsePorts = func(ports []int) error {
		cfg := filepath.Join(dir, "kubelet-config.json")
		data, err := json.MarshalIndent(kubeletConfig(pki.CAFile, serving, socket, k.PodLogsDir, nodeIP, pn.DNSServiceIP(), ports[0], ports[1]), "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg, data, 0o644); err != nil {
			return fmt.Errorf("write kubelet config: %w", err)
		}
		k.Args = []string{
			"--config=" + cfg,
			"--kubeconfig=" + kubeconfig,
			"--root-dir=" + k.RootDir,
			"--hostname-override=" + NodeName,
			"--node-ip=" + nodeIP.String(),
			"--v=2",
		}
		return nil
	}
	if err := k.listenOn(2); err != nil {
		return nil, err
	}
	return k, nil
}

// kubeletConfig is the KubeletConfiguration. cgroup v1 needs failCgroupV1
// false since Kubernetes 1.35; eviction and image GC are off, so that a
// full disk of a shared machine does not evict the test's Pods; the sync
// period is short, so that a projected token is rewritten soon after it is
// due. Pods resolve names through the cluster DNS only (resolvConf empty:
// none of the host's resolvers or search domains).
func kubeletConfig(caFile, servingDir, socket, podLogs string, nodeIP, clusterDNS net.IP, port, healthzPort int) map[string]any {
	return map[string]any{
		"apiVersion":   "kubelet.config.k8s.io/v1beta1",
		"kind":         "KubeletConfiguration",
		"failCgroupV1": false,
		"cgroupDriver": "cgroupfs",
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": caFile},
		},
		"authorization":               map[string]any{"mode": "Webhook"},
		"readOnlyPort":                0,
		"address":                     nodeIP.String(),
		"port":                        port,
		"healthzBindAddress":          "127.0.0.1",
		"healthzPort":                 healthzPort,
		"tlsCertFile":                 filepath.Join(servingDir, "tls.crt"),
		"tlsPrivateKeyFile":           filepath.Join(servingDir, "tls.key"),
		"containerRuntimeEndpoint":    "unix://" + socket,
		"podLogsDir":                  podLogs,
		"failSwapOn":                  false,
		"makeIPTablesUtilChains":      false,
		"evictionHard":                map[string]string{"memory.available": "0%", "nodefs.available": "0%", "imagefs.available": "0%", "nodefs.inodesFree": "0%"},
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"syncFrequency":               "10s",
		"nodeStatusUpdateFrequency":   "5s",
		"serializeImagePulls":         false,
		"staticPodPath":               "",
		"resolvConf":                  "",
		"clusterDNS":                  []string{clusterDNS.String()},
		"clusterDomain":               ClusterDomain,
		"enableServer":                true,
	}
}

// Start starts the kubelet and waits until its Node is Ready (which needs
// the CNI config: Pods on the Pod network wait for it).
func (k *Kubelet) Start(ctx context.Context) error {
	return k.startAndWait(ctx, func(ctx context.Context) error {
		return waitFor(ctx, 120*time.Second, "node "+NodeName+" Ready", k.Process, func(ctx context.Context) error {
			n, err := k.api.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					if c.Status == corev1.ConditionTrue {
						return nil
					}
					return fmt.Errorf("node %s not Ready: %s: %s", NodeName, c.Reason, c.Message)
				}
			}
			return fmt.Errorf("node %s has no Ready condition yet", NodeName)
		})
	})
}
