package harness

import (
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// Names of the objects the harness registers.
const (
	WebhookConfigurationName = "irsa-webhook"
	WebhookName              = "pod-identity.irsa-webhook.io"
	webhookUser              = "irsa-webhook"
	discoveryUser            = "irsa-webhook-discovery"
	probeNamespace           = "irsa-e2e-probe"
)

// ExampleRoleARN is a well-formed role ARN; MinIO ignores the role and
// decides by the token's sub claim.
const ExampleRoleARN = "arn:aws:iam::111122223333:role/irsa-e2e"

// setUpRBAC gives the webhook and the discovery server their own users with
// the least they need, so the suite proves that RBAC is enough.
func (s *Stack) setUpRBAC(ctx context.Context) error {
	c := s.APIServer.Client
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "irsa-webhook-e2e"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
			// The namespace role policy (irsa-webhook.io/allowed-role-arns).
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create cluster role %s: %w", role.Name, err)
	}
	for name, bind := range map[string][2]string{
		"irsa-webhook-e2e":           {role.Name, webhookUser},
		"irsa-webhook-discovery-e2e": {"system:service-account-issuer-discovery", discoveryUser},
	} {
		b := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: bind[0]},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: bind[1]}},
		}
		if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create cluster role binding %s: %w", name, err)
		}
	}
	var err error
	if _, s.WebhookKubeconfig, err = s.APIServer.UserConfig("irsa-webhook", webhookUser); err != nil {
		return err
	}
	if _, s.DiscoveryKubeconfig, err = s.APIServer.UserConfig("irsa-webhook-discovery", discoveryUser); err != nil {
		return err
	}
	return nil
}

// RegisterWebhook creates (or replaces) the MutatingWebhookConfiguration the
// install manifests (charts/irsa-webhook) create, in its url form instead of
// a Service reference: Pod CREATE, failurePolicy Fail, reinvocationPolicy
// IfNeeded, the opt-out label excluded by objectSelector.
func RegisterWebhook(ctx context.Context, c kubernetes.Interface, url string, caBundle []byte) error {
	return ApplyWebhookConfiguration(ctx, c, WebhookConfiguration(url, caBundle))
}

// WebhookConfiguration is the configuration RegisterWebhook registers, for a
// caller that registers another webhook the same way (the benchmark's
// floors) or narrows where it applies.
func WebhookConfiguration(url string, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	optOut := identity.Keys{Prefix: identity.DefaultPrefix}.Key(identity.SkipPodIdentityWebhook)
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         WebhookName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: optOut, Operator: metav1.LabelSelectorOpDoesNotExist,
			}}},
			// As the install manifests: never the namespaces that bring the
			// webhook back (its own, kube-system, cert-manager's) or one an
			// admin opted out, never a kubelet's mirror Pod.
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"irsa-system", "kube-system", "cert-manager"}},
				{Key: "irsa-webhook.io/ignore", Operator: metav1.LabelSelectorOpDoesNotExist},
			}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "exclude-mirror-pods",
				Expression: `!has(object.metadata.annotations) || !('kubernetes.io/config.mirror' in object.metadata.annotations)`,
			}},
		}},
	}
}

// ApplyWebhookConfiguration creates cfg, or replaces the configuration of
// its name.
func ApplyWebhookConfiguration(ctx context.Context, c kubernetes.Interface, cfg *admissionregistrationv1.MutatingWebhookConfiguration) error {
	existing, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{})
	case err == nil:
		cfg.ResourceVersion = existing.ResourceVersion
		_, err = c.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, cfg, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("register mutating webhook configuration %s: %w", cfg.Name, err)
	}
	return nil
}

// waitWebhookCalled waits until the API server, having picked up the
// webhook configuration, injects into a dry-run Pod.
func (s *Stack) waitWebhookCalled(ctx context.Context) error {
	c := s.APIServer.Client
	if err := EnsureNamespace(ctx, c, probeNamespace); err != nil {
		return err
	}
	if err := CreateServiceAccount(ctx, c, probeNamespace, "probe", map[string]string{
		identity.Keys{Prefix: identity.DefaultPrefix}.Key(identity.RoleARN): ExampleRoleARN,
	}); err != nil {
		return err
	}
	return WaitFor(ctx, 60*time.Second, "the API server to call the webhook", func(ctx context.Context) error {
		pod := SimplePod("probe", "probe")
		got, err := c.CoreV1().Pods(probeNamespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if !HasTokenVolume(got) {
			return fmt.Errorf("dry-run pod was admitted without volume %s", mutate.VolumeName)
		}
		return nil
	})
}

// EnsureNamespace creates the namespace unless it exists.
func EnsureNamespace(ctx context.Context, c kubernetes.Interface, name string) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// CreateServiceAccount creates a ServiceAccount with the given annotations.
// There is no controller-manager, so even "default" must be created.
func CreateServiceAccount(ctx context.Context, c kubernetes.Interface, namespace, name string, annotations map[string]string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: annotations}}
	if _, err := c.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	return nil
}

// SimplePod is a one-container Pod running as serviceAccount. Nothing runs
// it (there is no kubelet); the scenarios only need what is stored.
func SimplePod(name, serviceAccount string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName: serviceAccount,
			Containers:         []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
		},
	}
}

// HasTokenVolume reports whether the webhook's projected token volume is in
// the Pod.
func HasTokenVolume(pod *corev1.Pod) bool {
	return TokenVolume(pod) != nil
}

// TokenVolume returns the service account token projection of the
// webhook's volume, or nil.
func TokenVolume(pod *corev1.Pod) *corev1.ServiceAccountTokenProjection {
	for _, v := range pod.Spec.Volumes {
		if v.Name != mutate.VolumeName || v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.ServiceAccountToken != nil {
				return src.ServiceAccountToken
			}
		}
	}
	return nil
}

// RequestToken does what kubelet does for the projected volume: a
// TokenRequest for the Pod's ServiceAccount with the volume's audience and
// expiration, bound to the Pod.
func RequestToken(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod) (string, error) {
	proj := TokenVolume(pod)
	if proj == nil {
		return "", fmt.Errorf("request token for pod %s/%s: it has no %s volume", pod.Namespace, pod.Name, mutate.VolumeName)
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{proj.Audience},
		ExpirationSeconds: proj.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	got, err := c.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, tr, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request token for service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err)
	}
	return got.Status.Token, nil
}

// RequestTokenFor requests a token for a ServiceAccount with any audience,
// not bound to a Pod (for negative cases).
func RequestTokenFor(ctx context.Context, c kubernetes.Interface, namespace, serviceAccount, audience string, expirationSeconds int64) (string, error) {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{audience}, ExpirationSeconds: &expirationSeconds,
	}}
	got, err := c.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, tr, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request token for service account %s/%s: %w", namespace, serviceAccount, err)
	}
	return got.Status.Token, nil
}
