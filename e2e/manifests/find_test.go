package manifests_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// get returns the object of type T called name (namespace/name for
// namespaced objects), failing the test when there is none.
func get[T any](t *testing.T, objs []object, name string) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.obj.(T); ok && o.name == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %s", zero, name)
	return zero
}

// all returns every object of type T.
func all[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func nameOf(obj any) string {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Sprint(obj)
	}
	if acc.GetNamespace() == "" {
		return acc.GetName()
	}
	return acc.GetNamespace() + "/" + acc.GetName()
}

// selected returns the Deployments in namespace whose Pods a selector picks.
func selected(objs []object, namespace string, selector map[string]string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range all[*appsv1.Deployment](objs) {
		if d.Namespace == namespace && labels.SelectorFromSet(selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func container(t *testing.T, d *appsv1.Deployment, name string) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == name {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("deployment %s has no container %s", nameOf(d), name)
	return nil
}

// containerPort resolves a Service targetPort or probe port in c.
func containerPort(t *testing.T, c *corev1.Container, port intstr.IntOrString) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port %s", c.Name, port.String())
	return 0
}

// parseArgs parses a container's args after the subcommand words into fs,
// which holds the real flags of that command.
func parseArgs(t *testing.T, c *corev1.Container, subcommand []string, fs *pflag.FlagSet) {
	t.Helper()
	if len(c.Args) < len(subcommand) || !slices.Equal(c.Args[:len(subcommand)], subcommand) {
		t.Fatalf("container %s args %v do not start with %v", c.Name, c.Args, subcommand)
	}
	if err := fs.Parse(c.Args[len(subcommand):]); err != nil {
		t.Fatalf("container %s: %s %v: %v", c.Name, strings.Join(subcommand, " "), c.Args, err)
	}
	if fs.NArg() != 0 {
		t.Fatalf("container %s: stray arguments %v", c.Name, fs.Args())
	}
}

// rulesOf returns every rule bound to ServiceAccount namespace/name, by
// ClusterRoleBindings and RoleBindings, with the role that grants it. A
// binding to a role the manifests do not define (a built-in one) is
// returned in builtIn.
func rulesOf(t *testing.T, objs []object, namespace, name string) (rules []rbacv1.PolicyRule, builtIn []string) {
	t.Helper()
	isSubject := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Namespace == namespace && s.Name == name
		})
	}
	clusterRole := func(ref string) []rbacv1.PolicyRule {
		for _, r := range all[*rbacv1.ClusterRole](objs) {
			if r.Name == ref {
				return r.Rules
			}
		}
		builtIn = append(builtIn, "ClusterRole/"+ref)
		return nil
	}
	for _, b := range all[*rbacv1.ClusterRoleBinding](objs) {
		if isSubject(b.Subjects) {
			if b.RoleRef.Kind != "ClusterRole" {
				t.Errorf("ClusterRoleBinding %s refers to a %s", b.Name, b.RoleRef.Kind)
			}
			rules = append(rules, clusterRole(b.RoleRef.Name)...)
		}
	}
	for _, b := range all[*rbacv1.RoleBinding](objs) {
		if !isSubject(b.Subjects) {
			continue
		}
		switch b.RoleRef.Kind {
		case "Role":
			rules = append(rules, get[*rbacv1.Role](t, objs, b.Namespace+"/"+b.RoleRef.Name).Rules...)
		case "ClusterRole":
			rules = append(rules, clusterRole(b.RoleRef.Name)...)
		}
	}
	return rules, builtIn
}

func selectorMatches(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(set))
}
