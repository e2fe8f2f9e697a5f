package manifests_test

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/doctor"
)

// "helm test" runs irsa-webhook doctor with flags the real command accepts,
// for a ServiceAccount the webhook is called for, with the webhook's own
// prefix, audience and token lifetime, and with exactly the rights doctor
// needs to read that chain.
func TestHelmTestRunsDoctor(t *testing.T) {
	for _, v := range variants {
		if !v.tests {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			objs := objects(t, v)
			pods := all[*corev1.Pod](objs)
			if len(pods) != 1 {
				t.Fatalf("%d test Pods, want 1", len(pods))
			}
			pod := pods[0]
			if pod.Annotations["helm.sh/hook"] != "test" || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("test Pod: hook %q restartPolicy %s, want a test hook that runs once", pod.Annotations["helm.sh/hook"], pod.Spec.RestartPolicy)
			}
			c := &pod.Spec.Containers[0]
			cfg := doctor.NewConfig()
			fs := pflag.NewFlagSet("doctor", pflag.ContinueOnError)
			cfg.AddFlags(fs)
			parseArgs(t, c, []string{"doctor"}, fs)
			if err := cfg.Validate(); err != nil {
				t.Errorf("doctor args %v: %v", c.Args, err)
			}

			// A private CA for the issuer: in the hook's ConfigMap, mounted
			// where --ca-file points.
			wantCA := slices.ContainsFunc(v.set, func(s string) bool { return strings.HasPrefix(s, "tests.caBundle=") })
			if (cfg.CAFile != "") != wantCA {
				t.Errorf("doctor --ca-file %q with tests.caBundle set %v", cfg.CAFile, wantCA)
			}
			if wantCA {
				cm := get[*corev1.ConfigMap](t, objs, pod.Namespace+"/irsa-webhook-test-ca")
				if cm.Annotations["helm.sh/hook"] != "test" || !strings.Contains(cm.Data[path.Base(cfg.CAFile)], "-----BEGIN CERTIFICATE-----") {
					t.Errorf("CA ConfigMap: hook %q, data %v; want a test hook holding %s", cm.Annotations["helm.sh/hook"], cm.Data, path.Base(cfg.CAFile))
				}
				mounted := false
				for _, m := range c.VolumeMounts {
					for _, vol := range pod.Spec.Volumes {
						if vol.Name == m.Name && vol.ConfigMap != nil && vol.ConfigMap.Name == cm.Name && m.MountPath == path.Dir(cfg.CAFile) {
							mounted = true
						}
					}
				}
				if !mounted {
					t.Errorf("--ca-file %s is not the ConfigMap %s mounted: mounts %+v, volumes %+v", cfg.CAFile, cm.Name, c.VolumeMounts, pod.Spec.Volumes)
				}
			}

			// The same image and the webhook's settings.
			web := get[*appsv1.Deployment](t, objs, webhookDeployment)
			wc := container(t, web, "webhook")
			wf := parseWebhookArgs(t, wc)
			if c.Image != wc.Image {
				t.Errorf("doctor runs %s, the webhook %s", c.Image, wc.Image)
			}
			if got, want := []any{cfg.AnnotationPrefix, cfg.TokenAudience, cfg.TokenExpiration}, []any{wf.cfg.AnnotationPrefix, wf.cfg.TokenAudience, wf.cfg.TokenExpiration}; !cmp.Equal(got, want) {
				t.Errorf("doctor prefix, audience, expiration %v; the webhook's %v", got, want)
			}
			conf := get[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, webhookConfigName)
			if cfg.WebhookConfiguration != conf.Name {
				t.Errorf("doctor checks webhook configuration %q, the chart's is %q", cfg.WebhookConfiguration, conf.Name)
			}
			if !selectorMatches(t, conf.Webhooks[0].NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": cfg.Namespace}) {
				t.Errorf("doctor checks namespace %s, which the webhook is never called for", cfg.Namespace)
			}
			sa := get[*corev1.ServiceAccount](t, objs, cfg.Namespace+"/"+cfg.ServiceAccount)
			if sa.Annotations[wf.cfg.AnnotationPrefix+"/role-arn"] == "" {
				t.Errorf("ServiceAccount %s has no %s/role-arn to check", nameOf(sa), wf.cfg.AnnotationPrefix)
			}
			if v.discovery == "serve" {
				d := get[*appsv1.Deployment](t, objs, discoveryDeploy)
				var issuer string
				for _, a := range container(t, d, "discovery").Args {
					if v, ok := strings.CutPrefix(a, "--issuer="); ok {
						issuer = v
					}
				}
				if cfg.Issuer != issuer {
					t.Errorf("doctor checks issuer %q, discovery serves %q", cfg.Issuer, issuer)
				}
			}

			// Doctor's rights: read the chain, one token for its subject.
			rules, builtIn := rulesOf(t, objs, pod.Namespace, pod.Spec.ServiceAccountName)
			want := []rbacv1.PolicyRule{
				{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, Verbs: []string{"list"}},
				{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{cfg.Namespace}, Verbs: []string{"get"}},
				{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, ResourceNames: []string{cfg.ServiceAccount}, Verbs: []string{"get"}},
				{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, ResourceNames: []string{cfg.ServiceAccount}, Verbs: []string{"create"}},
			}
			if diff := cmp.Diff(want, rules); diff != "" || !slices.Equal(builtIn, []string{"ClusterRole/system:service-account-issuer-discovery"}) {
				t.Errorf("doctor's rights (-want +got):\n%s\nbuilt-in roles: %v", diff, builtIn)
			}
			for _, o := range objs {
				if o.kind != "Pod" && o.isTestHook() && o.obj.(interface{ GetAnnotations() map[string]string }).GetAnnotations()["helm.sh/hook-weight"] != "-1" {
					t.Errorf("%s %s is not created before the test Pod", o.kind, o.name)
				}
			}
		})
	}
}
