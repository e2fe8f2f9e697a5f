package manifests_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
)

// chartImage is the image the chart runs by default: its appVersion.
func chartImage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "appVersion:"); ok {
			return "ghcr.io/irsa-webhook/irsa-webhook:" + strings.TrimSpace(v)
		}
	}
	t.Fatal("Chart.yaml has no appVersion")
	return ""
}

func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// Every value that only passes through to the Pods gets there, and the
// webhook's flags parse with the real flag set to what was asked.
func TestValuesReachThePods(t *testing.T) {
	v := variantNamed(t, "chart/placement-and-extras")
	objs := objects(t, v)
	const wantImage = "registry.example.com/irsa:v9.9.9@sha256:abababababababababababababababababababababababababababababababab"
	web := get[*appsv1.Deployment](t, objs, webhookDeployment)
	disc := get[*appsv1.Deployment](t, objs, discoveryDeploy)
	for _, d := range []*appsv1.Deployment{web, disc} {
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		if c.Image != wantImage {
			t.Errorf("%s: image %s, want %s", nameOf(d), c.Image, wantImage)
		}
		if diff := cmp.Diff([]corev1.LocalObjectReference{{Name: "pull-a"}}, pod.ImagePullSecrets); diff != "" {
			t.Errorf("%s: imagePullSecrets (-want +got):\n%s", nameOf(d), diff)
		}
		if pod.NodeSelector["kubernetes.io/os"] != "linux" || len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "infra" {
			t.Errorf("%s: nodeSelector %v tolerations %v", nameOf(d), pod.NodeSelector, pod.Tolerations)
		}
		if len(pod.TopologySpreadConstraints) != 1 || pod.TopologySpreadConstraints[0].TopologyKey != "topology.kubernetes.io/zone" {
			t.Errorf("%s: topology spread %v, want the one set", nameOf(d), pod.TopologySpreadConstraints)
		}
		if e := envVar(&c, "EXTRA"); e == nil || e.Value != "1" {
			t.Errorf("%s: extraEnv EXTRA missing", nameOf(d))
		}
		if c.Args[len(c.Args)-1] != "--v=1" {
			t.Errorf("%s: extraArgs not last: %v", nameOf(d), c.Args)
		}
	}
	if web.Spec.Template.Spec.Affinity == nil || web.Spec.Template.Spec.Affinity.NodeAffinity == nil {
		t.Error("webhook affinity missing")
	}
	if got := web.Spec.Template.Spec.PriorityClassName; got != "irsa-critical" {
		t.Errorf("webhook priorityClassName %q", got)
	}
	if got := disc.Spec.Template.Spec.PriorityClassName; got != "irsa-low" {
		t.Errorf("discovery priorityClassName %q", got)
	}
	if web.Spec.Template.Annotations["example.com/a"] != "b" {
		t.Errorf("webhook pod annotations %v", web.Spec.Template.Annotations)
	}
	c := container(t, web, "webhook")
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "extra" && m.MountPath == "/extra" }) ||
		!slices.ContainsFunc(web.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "extra" && v.EmptyDir != nil }) {
		t.Error("webhook extra volume or mount missing")
	}
	if got := c.Resources.Limits.Memory().String(); got != "300Mi" {
		t.Errorf("webhook memory limit %s, want 300Mi", got)
	}
	f := parseWebhookArgs(t, c)
	got := []any{f.cfg.TokenExpiration, f.cfg.STSRegionalEndpoints, f.cfg.AWSDefaultRegion, f.cfg.RoleSessionName, f.cfg.TLSMinVersion, f.cfg.SPIFFEHelperImage, f.cfg.SPIFFESocketName}
	want := []any{int64(3600), true, "eu-west-1", "pod", "1.3", "registry.example.com/helper:v1", "agent.sock"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhook flags (-want +got):\n%s", diff)
	}
}

// GOMEMLIMIT follows each container's memory limit, as the kubelet sees it.
func TestGOMEMLIMITFollowsTheMemoryLimit(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, d := range all[*appsv1.Deployment](objects(t, v)) {
				c := d.Spec.Template.Spec.Containers[0]
				e := envVar(&c, "GOMEMLIMIT")
				if e == nil || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil || e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
					t.Errorf("%s: GOMEMLIMIT %v, want from resourceFieldRef limits.memory", nameOf(d), e)
				}
				if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
					t.Errorf("%s: no memory limit for GOMEMLIMIT to follow", nameOf(d))
				}
			}
		})
	}
}

// The SVID helper defaults to the chart's own image, and is off unless asked.
func TestSPIFFEHelperImage(t *testing.T) {
	for name, want := range map[string]string{"chart/defaults": "", "chart/spiffe": chartImage(t), "deploy/overlays/cert-manager": ""} {
		t.Run(name, func(t *testing.T) {
			c := container(t, get[*appsv1.Deployment](t, objects(t, variantNamed(t, name)), webhookDeployment), "webhook")
			if got := parseWebhookArgs(t, c).cfg.SPIFFEHelperImage; got != want || (want != "" && c.Image != want) {
				t.Errorf("--spiffe-helper-image %q (container image %s), want %q", got, c.Image, want)
			}
		})
	}
}

// metrics.enabled false turns the endpoint off, not just the port.
func TestMetricsOff(t *testing.T) {
	objs := objects(t, variantNamed(t, "chart/metrics-off"))
	for _, d := range all[*appsv1.Deployment](objs) {
		c := d.Spec.Template.Spec.Containers[0]
		if slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }) {
			t.Errorf("%s: metrics port with metrics off", nameOf(d))
		}
		if !slices.Contains(c.Args, "--metrics-bind-address=0") {
			t.Errorf("%s: args %v do not turn metrics off", nameOf(d), c.Args)
		}
	}
}

// A ServiceMonitor selects exactly a Service that leads to its component's
// metrics port, and carries the labels Prometheus selects it by.
func TestServiceMonitors(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			monitors := all[*monitoringv1.ServiceMonitor](objs)
			if want := map[bool]int{false: 0, true: 2}[v.monitors]; len(monitors) != want {
				t.Fatalf("%d ServiceMonitors, want %d", len(monitors), want)
			}
			for _, sm := range monitors {
				var svcs []*corev1.Service
				for _, s := range all[*corev1.Service](objs) {
					if s.Namespace == sm.Namespace && selectorMatches(t, &sm.Spec.Selector, s.Labels) {
						svcs = append(svcs, s)
					}
				}
				if len(svcs) != 1 {
					t.Fatalf("ServiceMonitor %s selects %d Services, want 1", nameOf(sm), len(svcs))
				}
				deps := selected(objs, svcs[0].Namespace, svcs[0].Spec.Selector)
				if len(deps) != 1 {
					t.Fatalf("metrics Service %s selects %d Deployments", nameOf(svcs[0]), len(deps))
				}
				c := &deps[0].Spec.Template.Spec.Containers[0]
				if len(sm.Spec.Endpoints) != 1 || len(svcs[0].Spec.Ports) != 1 || sm.Spec.Endpoints[0].Port != svcs[0].Spec.Ports[0].Name {
					t.Fatalf("ServiceMonitor %s endpoints %v do not name the Service's port", nameOf(sm), sm.Spec.Endpoints)
				}
				port := containerPort(t, c, svcs[0].Spec.Ports[0].TargetPort)
				var addr string
				if deps[0].Name == "irsa-webhook" {
					addr = parseWebhookArgs(t, c).cfg.MetricsBindAddress
				} else {
					cfg := discovery.NewConfig()
					fs := pflag.NewFlagSet("discovery serve", pflag.ContinueOnError)
					cfg.AddFlags(fs)
					fs.String("log-format", "json", "")
					fs.IntP("v", "v", 0, "")
					parseArgs(t, c, []string{"discovery", "serve"}, fs)
					addr = cfg.MetricsBindAddress
				}
				if port != portOf(t, addr) {
					t.Errorf("ServiceMonitor %s scrapes port %d, --metrics-bind-address is %s", nameOf(sm), port, addr)
				}
				if deps[0].Name == "irsa-webhook" && sm.Labels["release"] != "prom" {
					t.Errorf("ServiceMonitor %s labels %v lack the ones set", nameOf(sm), sm.Labels)
				}
			}
		})
	}
}

// Off means no PodDisruptionBudget at all; on, each covers its component.
func TestPodDisruptionBudgetsFollowTheValues(t *testing.T) {
	objs := objects(t, variantNamed(t, "chart/no-pdb"))
	if pdbs := all[*policyv1.PodDisruptionBudget](objs); len(pdbs) != 0 {
		t.Errorf("%d PodDisruptionBudgets with both off", len(pdbs))
	}
	if d := get[*appsv1.Deployment](t, objs, webhookDeployment); d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Error("the webhook's rollout may take a replica away before its replacement is ready")
	}
}
