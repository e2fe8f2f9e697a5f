package manifests_test

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
	"github.com/irsa-webhook/irsa-webhook/pkg/selfsigned"
	"github.com/irsa-webhook/irsa-webhook/pkg/serving"
	"github.com/irsa-webhook/irsa-webhook/pkg/webhook"
)

const (
	namespace         = "irsa-system"
	webhookDeployment = namespace + "/irsa-webhook"
	discoveryDeploy   = namespace + "/irsa-discovery"
	webhookConfigName = "irsa-webhook"
)

// webhookFlags parses the webhook container's args with the real flags of
// irsa-webhook serve.
type webhookFlags struct {
	cfg        *webhook.Config
	selfSigned *selfsigned.Config
	clientAuth *serving.ClientAuthConfig
}

func parseWebhookArgs(t *testing.T, c *corev1.Container) webhookFlags {
	t.Helper()
	f := webhookFlags{cfg: webhook.NewConfig(), selfSigned: selfsigned.NewConfig(), clientAuth: serving.NewClientAuthConfig()}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	f.cfg.AddFlags(fs)
	f.selfSigned.AddFlags(fs)
	f.clientAuth.AddFlags(fs)
	// The logging flags every long-running command has (cmd/irsa-webhook/logging.go).
	fs.String("log-format", "json", "")
	fs.IntP("v", "v", 0, "")
	parseArgs(t, c, []string{"serve"}, fs)
	if err := f.cfg.Validate(); err != nil {
		t.Errorf("webhook args %v: %v", c.Args, err)
	}
	if err := f.selfSigned.Validate(); err != nil {
		t.Errorf("webhook args %v: %v", c.Args, err)
	}
	// The client CA file is the cluster's, mounted in the Pod (see
	// TestClientAuthOverlayWiring); the other flags are checked with a
	// stand-in.
	ca := *f.clientAuth
	if ca.CAFile != "" {
		ca.CAFile = standInCAFile(t)
	}
	if err := ca.Validate(); err != nil {
		t.Errorf("webhook args %v: %v", c.Args, err)
	}
	return f
}

// standInCAFile writes a CA certificate and returns its path.
func standInCAFile(t *testing.T) string {
	t.Helper()
	ca, err := harness.NewPKI(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	return ca.CAFile
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("bind address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("bind address %q: %v", addr, err)
	}
	return int32(n)
}

// wantWebhook is issue 5's specification of the registration.
func wantWebhook(v *variant) admissionregistrationv1.MutatingWebhook {
	excluded := []string{namespace, "kube-system", "cert-manager"}
	if v.excluded != nil {
		excluded = v.excluded
	}
	return admissionregistrationv1.MutatingWebhook{
		Name:                    "pod-identity.irsa-webhook.io",
		AdmissionReviewVersions: []string{"v1"},
		ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Namespace: namespace, Name: "irsa-webhook", Path: ptr.To(webhook.MutatePath), Port: ptr.To[int32](443),
		}, CABundle: v.caBundle},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				Scope: ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}},
		FailurePolicy:      ptr.To(v.failurePolicy),
		MatchPolicy:        ptr.To(admissionregistrationv1.Equivalent),
		ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
		SideEffects:        ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:     ptr.To[int32](10),
		ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "eks.amazonaws.com/skip-pod-identity-webhook", Operator: metav1.LabelSelectorOpDoesNotExist},
		}},
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excluded},
			{Key: "irsa-webhook.io/ignore", Operator: metav1.LabelSelectorOpDoesNotExist},
		}},
		MatchConditions: []admissionregistrationv1.MatchCondition{{
			Name:       "exclude-mirror-pods",
			Expression: "!has(object.metadata.annotations) || !('kubernetes.io/config.mirror' in object.metadata.annotations)",
		}},
	}
}

func TestWebhookRegistration(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			conf := get[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, webhookConfigName)
			if len(conf.Webhooks) != 1 {
				t.Fatalf("%d webhooks, want 1", len(conf.Webhooks))
			}
			got := conf.Webhooks[0]
			// The caBundle belongs to cert-manager or --self-signed-ca, unless
			// the admin brings the certificate (and so its CA).
			_, injected := conf.Annotations["cert-manager.io/inject-ca-from"]
			if injected != (v.certSource == "cert-manager") {
				t.Errorf("cert-manager.io/inject-ca-from present %v with certificate source %s", injected, v.certSource)
			}
			if diff := cmp.Diff(wantWebhook(v), got); diff != "" {
				t.Errorf("webhook (-want +got):\n%s", diff)
			}

			// The selectors do what their comments say: with failurePolicy
			// Fail, the namespaces that bring a node, the cluster's DNS and
			// CNI, the webhook and its certificate back are never sent to it.
			for ns, want := range map[string]map[string]string{
				"called for an ordinary namespace": {"kubernetes.io/metadata.name": "default"},
				"skips the webhook's namespace":    {"kubernetes.io/metadata.name": namespace},
				"skips kube-system":                {"kubernetes.io/metadata.name": "kube-system"},
				"skips cert-manager's namespace":   {"kubernetes.io/metadata.name": "cert-manager"},
				"skips an ignored namespace":       {"kubernetes.io/metadata.name": "batch", "irsa-webhook.io/ignore": "true"},
			} {
				if match, wantMatch := selectorMatches(t, got.NamespaceSelector, want), ns == "called for an ordinary namespace"; match != wantMatch {
					t.Errorf("namespaceSelector %s: matches=%v", ns, match)
				}
			}
			if selectorMatches(t, got.ObjectSelector, map[string]string{"eks.amazonaws.com/skip-pod-identity-webhook": "true"}) {
				t.Error("objectSelector calls the webhook for an opted-out Pod")
			}
			if !selectorMatches(t, got.ObjectSelector, map[string]string{"app": "x"}) {
				t.Error("objectSelector skips an ordinary Pod")
			}
			// The API server must give up on us before its own 30s limit, and
			// only after our live ServiceAccount lookup could have answered.
			d := get[*appsv1.Deployment](t, objs, webhookDeployment)
			flags := parseWebhookArgs(t, container(t, d, "webhook"))
			if timeout := int64(*got.TimeoutSeconds); timeout > 30 || float64(timeout) <= flags.cfg.ServiceAccountLookupTimeout.Seconds() {
				t.Errorf("timeoutSeconds %d is not in (--service-account-lookup-timeout %s, 30]", timeout, flags.cfg.ServiceAccountLookupTimeout)
			}
			// The Deployment's namespace is the one the namespaceSelector skips.
			if selectorMatches(t, got.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": d.Namespace}) {
				t.Errorf("the webhook is called for Pods in its own namespace %s: with failurePolicy Fail it could never start", d.Namespace)
			}
		})
	}
}

// The path the API server dials, Service → targetPort → containerPort →
// --port, leads to the webhook container.
func TestWebhookServiceReachesTheContainer(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			ref := get[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, webhookConfigName).Webhooks[0].ClientConfig.Service
			svc := get[*corev1.Service](t, objs, ref.Namespace+"/"+ref.Name)
			i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == *ref.Port })
			if i < 0 {
				t.Fatalf("service %s has no port %d", nameOf(svc), *ref.Port)
			}
			deps := selected(objs, svc.Namespace, svc.Spec.Selector)
			if len(deps) != 1 || nameOf(deps[0]) != webhookDeployment {
				t.Fatalf("service %s selects %d deployments, want exactly %s", nameOf(svc), len(deps), webhookDeployment)
			}
			c := container(t, deps[0], "webhook")
			flags := parseWebhookArgs(t, c)
			if got := containerPort(t, c, svc.Spec.Ports[i].TargetPort); got != int32(flags.cfg.Port) {
				t.Errorf("service targets container port %d, webhook listens on --port %d", got, flags.cfg.Port)
			}
			if got := *ref.Path; got != webhook.MutatePath {
				t.Errorf("path %q, the webhook serves %q", got, webhook.MutatePath)
			}
			checkProbes(t, c, flags.cfg.HealthProbeBindAddress, "/readyz")
		})
	}
}

// checkProbes: readiness on readyPath, liveness on /healthz, both on the
// port of --health-probe-bind-address.
func checkProbes(t *testing.T, c *corev1.Container, healthAddr, readyPath string) {
	t.Helper()
	for name, probe := range map[string]*corev1.Probe{readyPath: c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("container %s: no HTTP probe for %s", c.Name, name)
			continue
		}
		if probe.HTTPGet.Path != name {
			t.Errorf("container %s: probe path %s, want %s", c.Name, probe.HTTPGet.Path, name)
		}
		if got, want := containerPort(t, c, probe.HTTPGet.Port), portOf(t, healthAddr); got != want {
			t.Errorf("container %s: %s probe on port %d, --health-probe-bind-address is %s", c.Name, name, got, healthAddr)
		}
	}
}

func TestCertManagerCertificateMatchesServiceAndDeployment(t *testing.T) {
	for _, v := range variants {
		if v.certSource != "cert-manager" {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			conf := get[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, webhookConfigName)
			ref := conf.Annotations["cert-manager.io/inject-ca-from"]
			cert := get[*certmanagerv1.Certificate](t, objs, ref) // namespace/name

			// DNS names: exactly what the API server dials for the Service.
			svcRef := conf.Webhooks[0].ClientConfig.Service
			wantNames := []string{
				svcRef.Name + "." + svcRef.Namespace + ".svc",
				svcRef.Name + "." + svcRef.Namespace + ".svc.cluster.local",
			}
			if diff := cmp.Diff(wantNames, cert.Spec.DNSNames); diff != "" {
				t.Errorf("certificate %s dnsNames (-want +got):\n%s", ref, diff)
			}
			if cert.Namespace != svcRef.Namespace {
				t.Errorf("certificate in %s, service in %s", cert.Namespace, svcRef.Namespace)
			}

			// The Secret it writes is the volume mounted at --cert-dir.
			d := get[*appsv1.Deployment](t, objs, webhookDeployment)
			c := container(t, d, "webhook")
			flags := parseWebhookArgs(t, c)
			if flags.selfSigned.Enabled {
				t.Fatal("--self-signed-ca is on in a cert-manager install")
			}
			mount := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == flags.cfg.CertDir })
			if mount < 0 {
				t.Fatalf("nothing mounted at --cert-dir %s", flags.cfg.CertDir)
			}
			vol := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mount].Name })
			if vol < 0 || d.Spec.Template.Spec.Volumes[vol].Secret == nil {
				t.Fatalf("volume %s at --cert-dir is not a Secret volume", c.VolumeMounts[mount].Name)
			}
			if got := d.Spec.Template.Spec.Volumes[vol].Secret.SecretName; got != cert.Spec.SecretName || d.Namespace != cert.Namespace {
				t.Errorf("deployment mounts secret %s/%s at --cert-dir, certificate writes %s/%s", d.Namespace, got, cert.Namespace, cert.Spec.SecretName)
			}

			// The issuer chain: serving Certificate ← CA Issuer ← CA
			// Certificate ← self-signed Issuer, all in the namespace.
			issuer := get[*certmanagerv1.Issuer](t, objs, cert.Namespace+"/"+cert.Spec.IssuerRef.Name)
			if cert.Spec.IssuerRef.Kind != "Issuer" || issuer.Spec.CA == nil {
				t.Fatalf("serving certificate's issuer %s is not a CA Issuer", nameOf(issuer))
			}
			var caCert *certmanagerv1.Certificate
			for _, c := range all[*certmanagerv1.Certificate](objs) {
				if c.Namespace == issuer.Namespace && c.Spec.SecretName == issuer.Spec.CA.SecretName {
					caCert = c
				}
			}
			if caCert == nil || !caCert.Spec.IsCA {
				t.Fatalf("no CA Certificate writes the CA Issuer's secret %s", issuer.Spec.CA.SecretName)
			}
			root := get[*certmanagerv1.Issuer](t, objs, caCert.Namespace+"/"+caCert.Spec.IssuerRef.Name)
			if root.Spec.SelfSigned == nil {
				t.Errorf("CA certificate's issuer %s is not self-signed", nameOf(root))
			}
			if caCert.Spec.SecretName == cert.Spec.SecretName {
				t.Error("the CA and the serving certificate share a Secret")
			}
			if !slices.Contains(cert.Spec.Usages, certmanagerv1.UsageServerAuth) {
				t.Error("serving certificate lacks the server auth usage")
			}
		})
	}
}

func TestSelfSignedWiring(t *testing.T) {
	for _, v := range variants {
		if v.certSource == "self-signed" {
			t.Run(v.name, func(t *testing.T) { checkSelfSigned(t, withoutTestHooks(objects(t, v))) })
		}
	}
}

func checkSelfSigned(t *testing.T, objs []object) {
	d := get[*appsv1.Deployment](t, objs, webhookDeployment)
	c := container(t, d, "webhook")
	flags := parseWebhookArgs(t, c)
	ss := flags.selfSigned
	if !ss.Enabled {
		t.Fatal("--self-signed-ca is not set")
	}
	conf := get[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, ss.WebhookConfigurationName)
	if _, ok := conf.Annotations["cert-manager.io/inject-ca-from"]; ok {
		t.Error("cert-manager would fight --self-signed-ca over the caBundle")
	}
	svcRef := conf.Webhooks[0].ClientConfig.Service
	if svcRef.Name != ss.ServiceName || svcRef.Namespace != ss.SecretNamespace {
		t.Errorf("certificate is for service %s/%s, the webhook is registered at %s/%s", ss.SecretNamespace, ss.ServiceName, svcRef.Namespace, svcRef.Name)
	}
	secret := get[*corev1.Secret](t, objs, ss.SecretNamespace+"/"+ss.SecretName)
	if len(secret.Data) != 0 || len(secret.StringData) != 0 {
		t.Error("the shipped Secret carries data; the webhook writes it")
	}
	if secret.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret type %s, want Opaque (a kubernetes.io/tls Secret cannot ship empty)", secret.Type)
	}
	if len(all[*certmanagerv1.Certificate](objs))+len(all[*certmanagerv1.Issuer](objs)) != 0 {
		t.Error("cert-manager objects in the overlay for clusters without cert-manager")
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			t.Errorf("volume %s mounts a Secret; the Pod would wait for it", v.Name)
		}
	}

	// Exactly the base rights plus get/update on those two objects by name
	// (ClusterRoleBindings' rules first, then RoleBindings').
	rules, builtIn := rulesOf(t, objs, d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{ss.WebhookConfigurationName}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{ss.SecretName}, Verbs: []string{"get", "update"}},
	}
	if diff := cmp.Diff(want, rules); diff != "" || len(builtIn) != 0 {
		t.Errorf("webhook rights (-want +got):\n%s\nbuilt-in roles: %v", diff, builtIn)
	}
	for _, b := range all[*rbacv1.RoleBinding](objs) {
		if b.Namespace != ss.SecretNamespace {
			t.Errorf("RoleBinding %s is not in the Secret's namespace", nameOf(b))
		}
	}
}

// --client-ca-file is a file of a ConfigMap volume without subPath (so the
// kubelet updates it and the webhook reloads it); the overlay leaves the
// ConfigMap to the cluster, so that applying it again keeps the cluster's CA.
func TestClientAuthWiring(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			c := container(t, get[*appsv1.Deployment](t, objs, webhookDeployment), "webhook")
			if ca := parseWebhookArgs(t, c).clientAuth; ca.Enabled() != v.clientAuth {
				t.Fatalf("client authentication on %v, want %v", ca.Enabled(), v.clientAuth)
			}
			if v.clientAuth {
				checkClientAuth(t, objs)
			}
		})
	}
}

func checkClientAuth(t *testing.T, objs []object) {
	d := get[*appsv1.Deployment](t, objs, webhookDeployment)
	c := container(t, d, "webhook")
	ca := parseWebhookArgs(t, c).clientAuth
	if !ca.Enabled() || len(ca.AllowedNames) == 0 {
		t.Fatalf("--client-ca-file %q, --client-allowed-names %v: want both set", ca.CAFile, ca.AllowedNames)
	}
	dir, file := path.Split(ca.CAFile)
	mount := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return path.Clean(m.MountPath) == path.Clean(dir) })
	if mount < 0 {
		t.Fatalf("nothing mounted at %s, the directory of --client-ca-file", dir)
	}
	if m := c.VolumeMounts[mount]; m.SubPath != "" || m.SubPathExpr != "" || !m.ReadOnly {
		t.Errorf("mount %s: subPath %q, subPathExpr %q, readOnly %v; want no subPath (it would never be updated), read-only", m.Name, m.SubPath, m.SubPathExpr, m.ReadOnly)
	}
	vol := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mount].Name })
	if vol < 0 || d.Spec.Template.Spec.Volumes[vol].ConfigMap == nil {
		t.Fatalf("volume %s at %s is not a ConfigMap volume", c.VolumeMounts[mount].Name, dir)
	}
	cm := d.Spec.Template.Spec.Volumes[vol].ConfigMap
	if !slices.ContainsFunc(cm.Items, func(k corev1.KeyToPath) bool { return k.Path == file }) {
		t.Errorf("ConfigMap volume %s has no item at %s: %v", cm.Name, file, cm.Items)
	}
	if cm.Optional != nil && *cm.Optional {
		t.Error("the client CA ConfigMap is optional: a webhook without it would not start anyway")
	}
	for _, o := range all[*corev1.ConfigMap](objs) {
		if o.Namespace == d.Namespace && o.Name == cm.Name {
			t.Errorf("the overlay ships ConfigMap %s; applying it again would replace the cluster's CA", nameOf(o))
		}
	}
}

// The webhook reads ServiceAccounts (their role annotations) and Namespaces
// (the allowed-role-arns policy), and nothing else.
func TestWebhookRightsAreReadOnlyServiceAccountsAndNamespaces(t *testing.T) {
	for _, v := range variants {
		if v.certSource == "self-signed" {
			continue // TestSelfSignedWiring
		}
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			d := get[*appsv1.Deployment](t, objs, webhookDeployment)
			rules, builtIn := rulesOf(t, objs, d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
			want := []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
			}
			if diff := cmp.Diff(want, rules); diff != "" || len(builtIn) != 0 {
				t.Errorf("webhook rights (-want +got):\n%s\nbuilt-in roles: %v", diff, builtIn)
			}
			get[*corev1.ServiceAccount](t, objs, d.Namespace+"/"+d.Spec.Template.Spec.ServiceAccountName)
		})
	}
}

func TestDiscoveryWiring(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			if v.discovery == "" {
				for _, o := range objs {
					if strings.HasPrefix(o.name, namespace+"/irsa-discovery") || o.name == "irsa-discovery" {
						t.Errorf("discovery is off, but %s %s is rendered", o.kind, o.name)
					}
				}
				return
			}
			d := get[*appsv1.Deployment](t, objs, discoveryDeploy)
			c := container(t, d, "discovery")
			var src discovery.SourceConfig
			if v.discovery == "publish" {
				src = checkPublisher(t, objs, c)
			} else {
				src = checkDiscoveryServer(t, objs, c, v)
			}
			checkKeySource(t, d, c, src, v.keySource)

			rules, builtIn := rulesOf(t, objs, d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
			wantBuiltIn := []string{"ClusterRole/system:service-account-issuer-discovery"}
			if v.keySource != "apiserver" {
				wantBuiltIn = nil // it reads nothing from the API server
			}
			if len(rules) != 0 || !slices.Equal(builtIn, wantBuiltIn) {
				t.Errorf("discovery rights: rules %v, built-in roles %v; want only %v", rules, builtIn, wantBuiltIn)
			}
			ings := all[*networkingv1.Ingress](objs)
			if len(ings) != map[bool]int{false: 0, true: 1}[v.ingress] {
				t.Fatalf("%d Ingresses, want ingress %v", len(ings), v.ingress)
			}
			for _, o := range objs {
				if _, ok := o.obj.(*networkingv1.Ingress); ok {
					checkIngress(t, o, objs, src.Issuer)
				}
			}
		})
	}
}

// checkKeySource: the key source's flags and what they read is mounted.
func checkKeySource(t *testing.T, d *appsv1.Deployment, c *corev1.Container, src discovery.SourceConfig, want string) {
	t.Helper()
	got := map[bool]string{true: "apiserver"}[src.FromAPIServer]
	if len(src.KeyFiles) > 0 {
		got += "keyFiles"
	}
	if src.FromSPIFFE {
		got += "spiffe"
	}
	if got != want {
		t.Fatalf("key source %q, want %q", got, want)
	}
	mounted := func(path string) *corev1.Volume {
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				for i, v := range d.Spec.Template.Spec.Volumes {
					if v.Name == m.Name {
						return &d.Spec.Template.Spec.Volumes[i]
					}
				}
			}
		}
		t.Errorf("nothing mounted at %s", path)
		return nil
	}
	for _, f := range src.KeyFiles {
		if v := mounted(f); v != nil && v.Secret == nil {
			t.Errorf("--key-file %s is not in a Secret volume", f)
		}
	}
	if src.FromSPIFFE {
		if v := mounted(strings.TrimPrefix(src.WorkloadAPIAddr, "unix://")); v != nil && (v.CSI == nil || v.CSI.Driver != "csi.spiffe.io") {
			t.Errorf("--workload-api-addr %s is not on the SPIFFE CSI driver's volume", src.WorkloadAPIAddr)
		}
	}
}

// checkDiscoveryServer: `discovery serve` from the API server's keys,
// behind its Service, ready once keys are loaded.
func checkDiscoveryServer(t *testing.T, objs []object, c *corev1.Container, v *variant) discovery.SourceConfig {
	t.Helper()
	cfg := discovery.NewConfig()
	fs := pflag.NewFlagSet("discovery serve", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	fs.String("log-format", "json", "")
	fs.IntP("v", "v", 0, "")
	parseArgs(t, c, []string{"discovery", "serve"}, fs)
	if err := cfg.Validate(); err != nil {
		t.Errorf("discovery args %v: %v", c.Args, err)
	}

	svc := get[*corev1.Service](t, objs, discoveryDeploy)
	deps := selected(objs, svc.Namespace, svc.Spec.Selector)
	if len(deps) != 1 || nameOf(deps[0]) != discoveryDeploy {
		t.Fatalf("service %s selects %d deployments, want exactly %s", nameOf(svc), len(deps), discoveryDeploy)
	}
	if got := containerPort(t, c, svc.Spec.Ports[0].TargetPort); got != int32(cfg.Port) {
		t.Errorf("service targets container port %d, discovery listens on --port %d", got, cfg.Port)
	}
	// Only "keys loaded": a stale replica keeps serving the last good
	// documents (see the manifest's comment).
	checkProbes(t, c, cfg.HealthProbeBindAddress, "/readyz/keys")
	return cfg.SourceConfig
}

// checkPublisher: `discovery publish` from the API server's keys, with
// valid flags, no Service (AWS reads the bucket), ready once the bucket
// holds the keys, and its credentials from a Secret file.
func checkPublisher(t *testing.T, objs []object, c *corev1.Container) discovery.SourceConfig {
	t.Helper()
	cfg := discovery.NewPublishConfig()
	fs := pflag.NewFlagSet("discovery publish", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	fs.String("log-format", "json", "")
	fs.IntP("v", "v", 0, "")
	parseArgs(t, c, []string{"discovery", "publish"}, fs)
	if err := cfg.Validate(); err != nil {
		t.Errorf("publish args %v: %v", c.Args, err)
	}
	if cfg.Once {
		t.Error("publisher: --once; want a long-running publisher")
	}
	for _, s := range all[*corev1.Service](objs) {
		if s.Name == discoveryDeploy {
			t.Errorf("service %s is left with nothing to serve", s.Name)
		}
	}
	checkProbes(t, c, cfg.HealthProbeBindAddress, "/readyz/bucket")
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "AWS_SHARED_CREDENTIALS_FILE" }) {
		t.Error("publisher has no AWS_SHARED_CREDENTIALS_FILE for its bootstrap credentials")
	}
	return cfg.SourceConfig
}

// checkIngress: the issuer's host, and only its two documents, to the
// discovery Service.
func checkIngress(t *testing.T, o object, base []object, issuer string) {
	t.Helper()
	ing, ok := o.obj.(*networkingv1.Ingress)
	if !ok {
		t.Fatalf("%T is not an Ingress", o.obj)
	}
	svc := get[*corev1.Service](t, base, discoveryDeploy)
	if ing.Namespace != svc.Namespace {
		t.Errorf("ingress in %s, service in %s", ing.Namespace, svc.Namespace)
	}
	var paths []string
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			paths = append(paths, p.Path)
			b := p.Backend.Service
			if b == nil || b.Name != svc.Name || !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == b.Port.Name }) {
				t.Errorf("path %s: backend %v is not a port of service %s", p.Path, b, nameOf(svc))
			}
		}
	}
	u, err := url.Parse(issuer)
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(u.Path, "/")
	if diff := cmp.Diff([]string{prefix + discovery.ConfigPath, prefix + "/openid/v1/jwks"}, paths); diff != "" {
		t.Errorf("ingress paths (-want +got):\n%s", diff)
	}
	for _, rule := range ing.Spec.Rules {
		if rule.Host != u.Host {
			t.Errorf("ingress host %q, the issuer's is %q", rule.Host, u.Host)
		}
	}
}

func TestAvailability(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			deployments := []string{webhookDeployment}
			if v.discovery != "" {
				deployments = append(deployments, discoveryDeploy)
			}
			if got := len(all[*policyv1.PodDisruptionBudget](objs)); got != map[bool]int{false: 0, true: len(deployments)}[v.pdb] {
				t.Errorf("%d PodDisruptionBudgets, want pdb %v for %d deployments", got, v.pdb, len(deployments))
			}
			for _, name := range deployments {
				d := get[*appsv1.Deployment](t, objs, name)
				pod := d.Spec.Template
				if !selectorMatches(t, d.Spec.Selector, pod.Labels) {
					t.Errorf("%s: selector does not match its own Pods", name)
				}
				if got := ptr.Deref(d.Spec.Replicas, 1); got != v.replicas {
					t.Errorf("%s: %d replicas, want %d", name, got, v.replicas)
				}
				pdbs := 0
				for _, pdb := range all[*policyv1.PodDisruptionBudget](objs) {
					if pdb.Namespace == d.Namespace && selectorMatches(t, pdb.Spec.Selector, pod.Labels) {
						pdbs++
						if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
							t.Errorf("%s: PodDisruptionBudget %s minAvailable %v, want 1", name, pdb.Name, pdb.Spec.MinAvailable)
						}
					}
				}
				if v.pdb && pdbs != 1 {
					t.Errorf("%s: %d PodDisruptionBudgets cover it, want 1", name, pdbs)
				}
				spread := pod.Spec.TopologySpreadConstraints
				wantKey := "kubernetes.io/hostname"
				if v.name == "chart/placement-and-extras" {
					wantKey = "topology.kubernetes.io/zone" // the constraints it sets
				}
				if len(spread) != 1 || spread[0].TopologyKey != wantKey || !selectorMatches(t, spread[0].LabelSelector, pod.Labels) {
					t.Errorf("%s: no topology spread across nodes over its own Pods: %v", name, spread)
				}
				for _, c := range pod.Spec.Containers {
					for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
						if _, ok := c.Resources.Requests[res]; !ok {
							t.Errorf("%s/%s: no %s request", name, c.Name, res)
						}
						if _, ok := c.Resources.Limits[res]; !ok {
							t.Errorf("%s/%s: no %s limit", name, c.Name, res)
						}
					}
				}
			}
			if v.name == "chart/placement-and-extras" {
				return // its own placement: TestValuesReachThePods
			}
			// The webhook is on every Pod creation's path: critical priority,
			// and never both replicas on one node while another could take
			// one (DoNotSchedule, which still places both on a single node).
			// Cordoned nodes do not count as a domain, so a drain can move one.
			web := get[*appsv1.Deployment](t, objs, webhookDeployment).Spec.Template.Spec
			if got := web.PriorityClassName; got != "system-cluster-critical" {
				t.Errorf("webhook priorityClassName %q, want system-cluster-critical", got)
			}
			if spread := web.TopologySpreadConstraints; len(spread) == 1 {
				got := spread[0]
				if got.MaxSkew != 1 || got.WhenUnsatisfiable != corev1.DoNotSchedule || ptr.Deref(got.NodeTaintsPolicy, corev1.NodeInclusionPolicyIgnore) != corev1.NodeInclusionPolicyHonor {
					t.Errorf("webhook spread maxSkew %d whenUnsatisfiable %s nodeTaintsPolicy %v, want 1, DoNotSchedule, Honor",
						got.MaxSkew, got.WhenUnsatisfiable, ptr.Deref(got.NodeTaintsPolicy, ""))
				}
			}
			// Discovery is not on that path (AWS caches its documents): it
			// must not preempt workloads or wait Pending for a node of its own.
			if v.discovery == "" {
				return
			}
			disc := get[*appsv1.Deployment](t, objs, discoveryDeploy).Spec.Template.Spec
			if disc.PriorityClassName != "" {
				t.Errorf("discovery priorityClassName %q, want none", disc.PriorityClassName)
			}
			if spread := disc.TopologySpreadConstraints; len(spread) == 1 && spread[0].WhenUnsatisfiable != corev1.ScheduleAnyway {
				t.Errorf("discovery spread whenUnsatisfiable %s, want ScheduleAnyway", spread[0].WhenUnsatisfiable)
			}
		})
	}
}

func TestEverythingIsLabelledAndNamespaced(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			namespaces, hooks := 0, 0
			for _, o := range objs {
				acc := o.obj.(metav1.Object)
				if acc.GetLabels()["app.kubernetes.io/part-of"] != "irsa-webhook" {
					t.Errorf("%s %s lacks app.kubernetes.io/part-of=irsa-webhook", o.kind, o.name)
				}
				// Only the ServiceAccount doctor checks (and its rights) live in
				// a namespace the webhook is called for.
				want := namespace
				if o.isTestHook() {
					hooks++
					if o.kind == "ServiceAccount" && o.name == "default/irsa-webhook-test" || o.kind == "Role" || o.kind == "RoleBinding" {
						want = "default"
					}
				}
				clusterScoped := slices.Contains([]string{"Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}, o.kind)
				if ns := acc.GetNamespace(); clusterScoped != (ns == "") || (!clusterScoped && ns != want) {
					t.Errorf("%s %s: namespace %q, want %q", o.kind, o.name, ns, want)
				}
				if o.kind == "Namespace" {
					namespaces++
				}
			}
			if (namespaces == 1) != v.namespace || namespaces > 1 {
				t.Errorf("%d Namespace objects, want createNamespace %v", namespaces, v.namespace)
			}
			if (hooks > 0) != v.tests {
				t.Errorf("%d helm test objects, want tests %v", hooks, v.tests)
			}
		})
	}
}

func TestRBACHasNoWildcardsOrDangerousVerbs(t *testing.T) {
	dangerous := []string{"*", "create", "delete", "deletecollection", "patch", "escalate", "bind", "impersonate"}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			var rules []struct {
				role string
				rule rbacv1.PolicyRule
			}
			for _, r := range all[*rbacv1.ClusterRole](objs) {
				for _, rule := range r.Rules {
					rules = append(rules, struct {
						role string
						rule rbacv1.PolicyRule
					}{nameOf(r), rule})
				}
			}
			for _, r := range all[*rbacv1.Role](objs) {
				for _, rule := range r.Rules {
					rules = append(rules, struct {
						role string
						rule rbacv1.PolicyRule
					}{nameOf(r), rule})
				}
			}
			for _, r := range rules {
				where := fmt.Sprintf("role %s rule %v", r.role, r.rule)
				// One token for one ServiceAccount, named: doctor's (helm test).
				tokenRequest := slices.Equal(r.rule.Resources, []string{"serviceaccounts/token"}) && len(r.rule.ResourceNames) > 0
				for _, verb := range r.rule.Verbs {
					if slices.Contains(dangerous, verb) && !(verb == "create" && tokenRequest) {
						t.Errorf("%s: verb %s", where, verb)
					}
				}
				if slices.Contains(r.rule.Resources, "*") || slices.Contains(r.rule.APIGroups, "*") {
					t.Errorf("%s: wildcard", where)
				}
				if slices.Contains(r.rule.Resources, "secrets") && len(r.rule.ResourceNames) == 0 {
					t.Errorf("%s: Secrets without resourceNames", where)
				}
				if len(r.rule.ResourceNames) > 0 && (slices.Contains(r.rule.Verbs, "list") || slices.Contains(r.rule.Verbs, "watch")) {
					t.Errorf("%s: list/watch with resourceNames only works with a name field selector; say so or drop it", where)
				}
			}
		})
	}
}
