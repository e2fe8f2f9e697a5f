package manifests_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// chartDir is the chart, the one source of every manifest in deploy/.
const chartDir = "charts/irsa-webhook"

// installDir is the default install, copied to deploy/install.yaml.
const installDir = "deploy/overlays/cert-manager"

// variant is one documented combination of chart values and what the tests
// expect of its render. The expectations are written here, next to the
// values, never read back from the render, so a template that ignores a
// value fails.
type variant struct {
	name   string   // the deploy/ directory, or chart/<what>
	values []string // values files, relative to the repository root, in order
	set    []string // --set-json key=value, after the files

	certSource    string // cert-manager, self-signed or secret
	failurePolicy admissionregistrationv1.FailurePolicyType
	clientAuth    bool
	discovery     string // serve, publish, or "" for no discovery Deployment
	keySource     string // apiserver, keyFiles or spiffe
	ingress       bool
	monitors      bool // ServiceMonitors (and their metrics Services)
	namespace     bool // the Namespace object is rendered
	tests         bool // the helm test hooks are rendered
	replicas      int32
	pdb           bool
	excluded      []string // the namespaces never sent to the webhook; nil: the defaults
	caBundle      []byte   // the caBundle in the registration
}

// deployVariant is a directory of deploy/: the chart with deploy/values.yaml
// and the directory's values.yaml.
func deployVariant(dir string, v variant) *variant {
	v.name = dir
	v.values = []string{"deploy/values.yaml", dir + "/values.yaml"}
	v.namespace, v.replicas, v.pdb = true, 2, true
	if v.certSource == "" {
		v.certSource = "cert-manager"
	}
	if v.failurePolicy == "" {
		v.failurePolicy = admissionregistrationv1.Fail
	}
	if v.discovery == "" {
		v.discovery = "serve"
	}
	v.keySource = "apiserver"
	return &v
}

// chartVariant is "helm install" with --set values over the chart's defaults.
func chartVariant(name string, v variant, set ...string) *variant {
	v.name, v.set = "chart/"+name, set
	if v.certSource == "" {
		v.certSource = "cert-manager"
	}
	if v.failurePolicy == "" {
		v.failurePolicy = admissionregistrationv1.Fail
	}
	if v.discovery == "none" {
		v.discovery = ""
	} else if v.discovery == "" {
		v.discovery = "serve"
	}
	if v.keySource == "" {
		v.keySource = "apiserver"
	}
	if v.replicas == 0 {
		v.replicas = 2
	}
	sets := strings.Join(set, " ")
	v.tests = !strings.Contains(sets, "tests.enabled=false")
	v.pdb = !strings.Contains(sets, "podDisruptionBudget.enabled=false")
	return &v
}

var (
	deployVariants = []*variant{
		deployVariant("deploy/base", variant{certSource: "secret"}),
		deployVariant("deploy/overlays/cert-manager", variant{}),
		deployVariant("deploy/overlays/client-auth", variant{clientAuth: true}),
		deployVariant("deploy/overlays/discovery-s3", variant{discovery: "publish"}),
		deployVariant("deploy/overlays/fail-open", variant{failurePolicy: admissionregistrationv1.Ignore}),
		deployVariant("deploy/overlays/self-signed", variant{certSource: "self-signed"}),
	}
	// Each option of values.yaml on (and, by the defaults, off).
	chartVariants = []*variant{
		chartVariant("defaults", variant{}),
		chartVariant("self-signed-fail-open", variant{certSource: "self-signed", failurePolicy: admissionregistrationv1.Ignore},
			`webhook.certificate.source="self-signed"`, `webhook.failurePolicy="Ignore"`, `webhook.rolePolicyAction="warn"`),
		chartVariant("secret-with-ca-bundle", variant{certSource: "secret", caBundle: []byte("-----BEGIN")},
			`webhook.certificate.source="secret"`, `webhook.certificate.secretName="my-tls"`, `webhook.certificate.caBundle="LS0tLS1CRUdJTg=="`),
		chartVariant("client-auth", variant{clientAuth: true}, `webhook.clientAuth.enabled=true`, `webhook.clientAuth.allowedNames=["a","b"]`),
		chartVariant("no-discovery", variant{discovery: "none"}, `discovery.enabled=false`),
		chartVariant("publish", variant{discovery: "publish"},
			`discovery.mode="publish"`, `discovery.issuer="https://oidc-b.s3.eu-west-1.amazonaws.com/c1"`,
			`discovery.publish={"bucket":"oidc-b","prefix":"c1","region":"eu-west-1","endpointURL":"https://s3.example.com","pathStyle":true,"credentialsSecret":"aws"}`),
		chartVariant("ingress-and-monitors", variant{ingress: true, monitors: true},
			`discovery.issuer="https://oidc.example.com/cluster-1"`, `discovery.ingress={"enabled":true,"className":"nginx","tlsSecretName":"public-tls","annotations":{"a":"b"}}`,
			`webhook.metrics.serviceMonitor={"enabled":true,"interval":"15s","labels":{"release":"prom"}}`,
			`discovery.metrics.serviceMonitor={"enabled":true,"interval":"15s","labels":{}}`,
			`tests.caBundle="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"`),
		chartVariant("metrics-off", variant{}, `webhook.metrics.enabled=false`, `discovery.metrics.enabled=false`),
		chartVariant("key-files", variant{keySource: "keyFiles"},
			`discovery.keySource="keyFiles"`, `discovery.keyFiles={"secretName":"sa-keys","keys":["old.pub","new.pub"]}`),
		chartVariant("spiffe", variant{keySource: "spiffe"},
			`webhook.spiffe.enabled=true`, `discovery.keySource="spiffe"`, `discovery.spiffe.trustDomain="example.org"`),
		chartVariant("namespace-and-no-tests", variant{namespace: true}, `createNamespace=true`, `tests.enabled=false`),
		chartVariant("placement-and-extras", variant{replicas: 3, excluded: []string{namespace, "kube-system", "cert-manager", "kyverno"}}, placementAndExtras...),
		chartVariant("no-pdb", variant{}, `webhook.podDisruptionBudget.enabled=false`, `discovery.podDisruptionBudget.enabled=false`),
	}
	variants = append(append([]*variant{}, deployVariants...), chartVariants...)
)

// placementAndExtras sets every value that only passes through to the Pods.
var placementAndExtras = []string{
	`webhook.replicas=3`, `discovery.replicas=3`,
	`image.repository="registry.example.com/irsa"`, `image.tag="v9.9.9"`,
	`image.digest="sha256:` + strings.Repeat("ab", 32) + `"`, `imagePullSecrets=["pull-a"]`,
	`webhook.priorityClassName="irsa-critical"`, `discovery.priorityClassName="irsa-low"`,
	`webhook.nodeSelector={"kubernetes.io/os":"linux"}`, `discovery.nodeSelector={"kubernetes.io/os":"linux"}`,
	`webhook.tolerations=[{"key":"infra","operator":"Exists","effect":"NoSchedule"}]`,
	`discovery.tolerations=[{"key":"infra","operator":"Exists","effect":"NoSchedule"}]`,
	`webhook.affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"infra","operator":"Exists"}]}]}}}`,
	`webhook.topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app.kubernetes.io/name":"irsa-webhook","app.kubernetes.io/component":"webhook"}}}]`,
	`discovery.topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app.kubernetes.io/name":"irsa-webhook","app.kubernetes.io/component":"discovery"}}}]`,
	`webhook.podAnnotations={"example.com/a":"b"}`,
	`webhook.extraArgs=["--v=1"]`, `discovery.extraArgs=["--v=1"]`,
	`webhook.extraEnv=[{"name":"EXTRA","value":"1"}]`, `discovery.extraEnv=[{"name":"EXTRA","value":"1"}]`,
	`webhook.extraVolumes=[{"name":"extra","emptyDir":{}}]`, `webhook.extraVolumeMounts=[{"name":"extra","mountPath":"/extra"}]`,
	`webhook.resources={"requests":{"cpu":"100m","memory":"200Mi"},"limits":{"cpu":"2","memory":"300Mi"}}`,
	`webhook.tokenExpiration=3600`, `webhook.stsRegionalEndpoints=true`, `webhook.awsDefaultRegion="eu-west-1"`,
	`webhook.roleSessionName="pod"`, `webhook.tlsMinVersion="1.3"`, `webhook.logFormat="console"`,
	`webhook.excludedNamespaces=["kube-system","cert-manager","kyverno"]`,
	`webhook.spiffe={"enabled":true,"helperImage":"registry.example.com/helper:v1","socketHostPath":"","socketName":"agent.sock"}`,
}

func variantNamed(t *testing.T, name string) *variant {
	t.Helper()
	for _, v := range variants {
		if v.name == name {
			return v
		}
	}
	t.Fatalf("no variant %s", name)
	return nil
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(certmanagerv1.AddToScheme(s))
	utilruntime.Must(monitoringv1.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s)) // cert-manager's CRDs, for the apply test
	return s
}()

// strict refuses unknown and duplicate fields, as kubectl apply's
// server-side field validation does.
var strict = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

// repoRoot is the product module's root: e2e/manifests/../..
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, chartDir, "Chart.yaml")); err != nil {
		t.Fatalf("repository root not found from the test directory: %v", err)
	}
	return root
}

var (
	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

// helm runs the helm binary (built from its module into the binary cache)
// in the repository root.
func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	helmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		helmBin, helmErr = harness.BuildHelm(ctx, "", os.Stderr)
	})
	if helmErr != nil {
		t.Fatalf("build helm: %v", helmErr)
	}
	cmd := harness.HelmCommand(context.Background(), helmBin, repoRoot(t), t.TempDir(), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.Bytes(), out)
	}
	return out, nil
}

// valueArgs are v's values as helm arguments.
func (v *variant) valueArgs() []string {
	args := []string{"--namespace", namespace}
	for _, f := range v.values {
		args = append(args, "-f", f)
	}
	for _, s := range v.set {
		args = append(args, "--set-json", s)
	}
	return args
}

var (
	renderMu    sync.Mutex
	renderCache = map[string][]byte{}
)

// render is "helm template" of the chart with v's values, as "make
// manifests" runs it for deploy/.
func render(t *testing.T, v *variant) []byte {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if out, ok := renderCache[v.name]; ok {
		return out
	}
	out, err := helm(t, append([]string{"template", "irsa-webhook", chartDir}, v.valueArgs()...)...)
	if err != nil {
		t.Fatalf("%s: %v", v.name, err)
	}
	renderCache[v.name] = out
	return out
}

// objects is v's render decoded strictly.
func objects(t *testing.T, v *variant) []object {
	t.Helper()
	return decode(t, v.name, render(t, v))
}

// kustomize builds dir with kustomize's library, as kubectl apply -k does.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // the kustomize CLI's default
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: encode: %v", dir, err)
	}
	return out
}

// object is one decoded manifest with the text it came from.
type object struct {
	obj  runtime.Object
	gvk  schema.GroupVersionKind
	kind string
	name string // namespace/name, or name for cluster-scoped objects
	raw  []byte
}

// isTestHook: rendered for "helm test" only.
func (o object) isTestHook() bool {
	acc, err := meta.Accessor(o.obj)
	return err == nil && acc.GetAnnotations()["helm.sh/hook"] == "test"
}

// withoutTestHooks drops the "helm test" objects: what helm install applies.
func withoutTestHooks(objs []object) []object {
	var out []object
	for _, o := range objs {
		if !o.isTestHook() {
			out = append(out, o)
		}
	}
	return out
}

// decode splits a multi-document YAML stream and decodes each document
// strictly into its registered Go type.
func decode(t *testing.T, what string, data []byte) []object {
	t.Helper()
	var objs []object
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: read document %d: %v", what, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, gvk, err := strict.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("%s: document %d does not decode strictly: %v\n%s", what, i, err, doc)
			continue
		}
		acc, err := meta.Accessor(obj)
		if err != nil {
			t.Errorf("%s: document %d: %v", what, i, err)
			continue
		}
		name := acc.GetName()
		if ns := acc.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
		objs = append(objs, object{obj: obj, gvk: *gvk, kind: gvk.Kind, name: name, raw: doc})
	}
	if len(objs) == 0 {
		t.Fatalf("%s: no objects", what)
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func TestEveryVariantRendersAndDecodesStrictly(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, o := range objects(t, v) {
				key := o.kind + " " + o.name
				if seen[key] {
					t.Errorf("%s appears twice", key)
				}
				seen[key] = true
			}
		})
	}
}

// The chart passes helm lint --strict with its defaults and with every
// variant's values (the schema included).
func TestHelmLintStrict(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			if out, err := helm(t, append([]string{"lint", "--strict", chartDir}, v.valueArgs()...)...); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
		})
	}
}

// The schema refuses a typo, a value outside its set and a missing bucket,
// with a message that names the value.
func TestSchemaRefusesBadValues(t *testing.T) {
	for name, c := range map[string]struct{ set, want string }{
		"unknown key":              {`webhook.replica=3`, "replica"},
		"unknown top-level key":    {`imagee={}`, "imagee"},
		"failure policy":           {`webhook.failurePolicy="fail"`, "failurePolicy"},
		"certificate source":       {`webhook.certificate.source="vault"`, "source"},
		"token expiration":         {`webhook.tokenExpiration=60`, "tokenExpiration"},
		"issuer not https":         {`discovery.issuer="http://oidc.example.com"`, "issuer"},
		"publish without a bucket": {`discovery.mode="publish"`, "bucket"},
		"digest":                   {`image.digest="latest"`, "digest"},
		"pull policy Always":       {`image.pullPolicy="Always"`, "pullPolicy"},
		"resources typo":           {`webhook.resources={"limit":{"cpu":"1"}}`, "limit"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, "template", "irsa-webhook", chartDir, "--namespace", namespace, "--set-json", c.set)
			if err == nil {
				t.Fatalf("--set-json %s rendered:\n%.300s", c.set, out)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("--set-json %s: error does not name the schema and %q: %v", c.set, c.want, err)
			}
		})
	}
}

// Every directory of deploy/ is the chart's render with its values, and
// kustomize builds it to exactly those objects; deploy/install.yaml is the
// default install's.
func TestDeployIsAFreshRenderOfTheChart(t *testing.T) {
	for _, v := range deployVariants {
		t.Run(v.name, func(t *testing.T) {
			header := fmt.Sprintf("# Generated by \"make manifests\" from %s with deploy/values.yaml and %s/values.yaml; do not edit.\n", chartDir, v.name)
			want := append([]byte(header), render(t, v)...)
			got, err := os.ReadFile(filepath.Join(repoRoot(t), v.name, "manifests.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("%s/manifests.yaml is not a fresh render of the chart: run make manifests\n%s", v.name, firstDiff(want, got))
			}
			fromKustomize := decode(t, v.name+" (kustomize)", kustomize(t, v.name))
			rendered := objects(t, v)
			names := func(objs []object) []string {
				var out []string
				for _, o := range objs {
					out = append(out, o.kind+" "+o.name)
				}
				slices.Sort(out)
				return out
			}
			if diff := cmp.Diff(names(rendered), names(fromKustomize)); diff != "" {
				t.Errorf("kustomize build %s: objects (-render +kustomize):\n%s", v.name, diff)
			}
			if v.name == installDir {
				install, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "install.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(install, got) {
					t.Errorf("deploy/install.yaml is not %s/manifests.yaml: run make manifests\n%s", installDir, firstDiff(got, install))
				}
			}
		})
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("first difference at line %d:\n-want: %s\n+got:  %s", i+1, w, g)
		}
	}
	return ""
}
