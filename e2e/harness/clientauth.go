package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WebhookClientName is the subject CN of the client certificate the API
// server presents to the webhook with Options.WebhookClientAuth, and the
// webhook's --client-allowed-names (as in deploy/overlays/client-auth).
const WebhookClientName = "kube-apiserver-webhook-client"

// WriteAdmissionConfig writes, under dir, an AdmissionConfiguration for
// --admission-control-config-file whose MutatingAdmissionWebhook plugin
// presents certFile and keyFile to the webhook at hostPort, and returns its
// path. The API server picks a webhook's credentials by the kubeconfig user
// named after what it dials: host:port for a webhook registered by URL
// (name.namespace.svc:port for one registered by Service; docs/install.md).
func WriteAdmissionConfig(dir, hostPort, certFile, keyFile string) (string, error) {
	dir, err := filepath.Abs(dir) // the API server wants absolute paths
	if err != nil {
		return "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.AuthInfos[hostPort] = &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}
	kubeconfig := filepath.Join(dir, "admission-kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		return "", fmt.Errorf("write admission kubeconfig: %w", err)
	}
	// JSON strings are YAML strings: the path needs no escaping rules of
	// its own.
	conf := `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: MutatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: ` + strconv.Quote(kubeconfig) + "\n"
	path := filepath.Join(dir, "admission-configuration.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return "", fmt.Errorf("write admission configuration: %w", err)
	}
	return path, nil
}

// prepareWebhookClientAuth creates the webhook before the API server, with
// --client-ca-file (the Stack's CA) and --client-allowed-names
// WebhookClientName, and returns the AdmissionConfiguration that has the API
// server present such a certificate to it. The API server reads it once at
// start, so the webhook's ports are fixed from here on.
func (s *Stack) prepareWebhookClientAuth(o Options) (string, error) {
	certFile, keyFile, err := s.PKI.ClientCert("kube-apiserver-webhook-client", WebhookClientName)
	if err != nil {
		return "", err
	}
	if s.WebhookCertDir, err = s.PKI.ServingCert("irsa-webhook"); err != nil {
		return "", err
	}
	args := append([]string{"--client-ca-file=" + s.PKI.CAFile, "--client-allowed-names=" + WebhookClientName}, o.WebhookArgs...)
	if s.Webhook, err = newWebhook(o.Binaries.IrsaWebhook, kubeconfigPath(o.Dir, "irsa-webhook"), s.WebhookCertDir, s.LogDir, o.Audience, args); err != nil {
		return "", err
	}
	s.Webhook.UsePorts = nil
	return WriteAdmissionConfig(o.Dir, hostPort(s.Webhook.Port), certFile, keyFile)
}
