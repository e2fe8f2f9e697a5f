package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// KubeProxy is kube-proxy in iptables mode, as the node's Service proxy:
// it writes the rules that send a ClusterIP to the Service's ready
// endpoints, so that a Pod reaches a Service by its ClusterIP (and by its
// name, through the cluster DNS). It is told to leave the host's
// conntrack and route_localnet settings as they are, and --cleanup
// removes its rules at teardown.
type KubeProxy struct {
	*Process
	healthURL string
	config    string
}

func newKubeProxy(bin string, api *APIServer, pn *podNetwork, dir, logDir string) (*KubeProxy, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("kube-proxy dir: %w", err)
	}
	// The user the bootstrap policy binds to system:node-proxier.
	_, kubeconfig, err := api.UserConfig("kube-proxy", "system:kube-proxy")
	if err != nil {
		return nil, err
	}
	k := &KubeProxy{
		Process: &Process{
			Name:    "kube-proxy",
			Path:    bin,
			Env:     []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			LogPath: filepath.Join(logDir, "kube-proxy.log"),
		},
		config: filepath.Join(dir, "kube-proxy-config.json"),
	}
	k.UsePorts = func(ports []int) error {
		k.healthURL = "http://" + hostPort(ports[0]) + "/healthz"
		data, err := json.MarshalIndent(kubeProxyConfig(kubeconfig, pn, hostPort(ports[0]), hostPort(ports[1])), "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(k.config, data, 0o644); err != nil {
			return fmt.Errorf("write kube-proxy config: %w", err)
		}
		k.Args = []string{"--config=" + k.config, "--v=1"}
		return nil
	}
	if err := k.listenOn(2); err != nil {
		return nil, err
	}
	return k, nil
}

// kubeProxyConfig is the KubeProxyConfiguration. Zero conntrack values,
// localhostNodePorts false and oomScoreAdj 0 keep kube-proxy from writing
// the host's sysctls and its own OOM score (which root here may not
// lower); the short sync periods let a new endpoint work within a second.
func kubeProxyConfig(kubeconfig string, pn *podNetwork, healthz, metrics string) map[string]any {
	zero := "0s"
	return map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"mode":               "iptables",
		"clientConnection":   map[string]any{"kubeconfig": kubeconfig},
		"hostnameOverride":   NodeName,
		"healthzBindAddress": healthz,
		"metricsBindAddress": metrics,
		"clusterCIDR":        pn.Subnet.String(),
		"detectLocalMode":    "ClusterCIDR",
		"nodePortAddresses":  []string{pn.HostIP.String() + "/32"},
		"oomScoreAdj":        0,
		"iptables": map[string]any{
			"localhostNodePorts": false,
			"syncPeriod":         "30s",
			"minSyncPeriod":      zero,
		},
		"conntrack": map[string]any{
			"maxPerCore":            0,
			"min":                   0,
			"tcpEstablishedTimeout": zero,
			"tcpCloseWaitTimeout":   zero,
		},
	}
}

// Start starts kube-proxy and waits until it has synced its rules once.
func (k *KubeProxy) Start(ctx context.Context) error {
	return k.startAndWait(ctx, func(ctx context.Context) error {
		return waitFor(ctx, 60*time.Second, "kube-proxy /healthz", k.Process, func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, k.healthURL)
		})
	})
}

// Cleanup removes every rule and chain kube-proxy made (kube-proxy
// --cleanup); call it after Stop.
func (k *KubeProxy) Cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.Path, "--cleanup", "--config="+k.config, "--v=1")
	cmd.Env = k.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kube-proxy --cleanup: %w: %s", err, tail(strings.TrimSpace(string(out)), 10))
	}
	return nil
}
