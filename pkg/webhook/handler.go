package webhook

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/irsa-webhook/irsa-webhook/internal/admissionjson"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// ServiceAccounts looks up a ServiceAccount's annotations. An error means the
// answer is unknown, and the Pod is denied rather than guessed about.
type ServiceAccounts interface {
	Get(ctx context.Context, namespace, name string) (metacache.Entry, error)
}

// Handler is the Pod mutating admission handler.
type Handler struct {
	Defaults        identity.Defaults
	ServiceAccounts ServiceAccounts
	// Namespaces, when not nil, enables the namespace role policy (see
	// identity.AllowedRoleARNs); RolePolicyAction says what a role outside
	// it earns: identity.RolePolicyDeny (also when empty) or identity.RolePolicyWarn.
	Namespaces       Namespaces
	RolePolicyAction string
	// LookupTimeout, when not 0, bounds the lookups of one admission
	// together (the ServiceAccount, then the namespace policy), so the
	// webhook answers before the API server stops waiting for it.
	LookupTimeout time.Duration
	// Metrics may be nil.
	Metrics *Metrics

	// apply is mutate.Apply unless a test puts a faulty mutation there.
	apply func(*corev1.Pod, identity.Plan) (*corev1.Pod, []string)
}

var _ admission.Handler = (*Handler)(nil)

// scratches hold the memory of the mutation's copies of Pods between
// admissions (mutate.Scratch).
var scratches = sync.Pool{New: func() any { return new(mutate.Scratch) }}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// Handle answers one AdmissionRequest. ServeHTTP, which the server mounts,
// decodes the review straight into a request instead.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	r := &admissionjson.Request{UID: req.UID, Resource: req.Resource, SubResource: req.SubResource, Namespace: req.Namespace, Operation: req.Operation}
	if len(req.Object.Raw) > 0 {
		r.Object = admissionjson.DecodePodObject(req.Object.Raw)
	}
	return h.handle(ctx, r, start)
}

// handle decides req and counts and logs the decision; start is when the
// Pod began to be decoded, so the latency metric covers the decode as well.
func (h *Handler) handle(ctx context.Context, req *admissionjson.Request, start time.Time) admission.Response {
	r := h.decide(ctx, req)
	h.Metrics.observe(r.outcome, time.Since(start))
	if r.outcome != outcomeIgnored {
		log.FromContext(ctx).Info("admission decision",
			"namespace", req.Namespace, "pod", r.podName, "serviceAccount", r.serviceAccount,
			"outcome", r.outcome, "reason", r.reason, "warnings", len(r.response.Warnings))
	}
	return r.response
}

// result is one decision: the response and what to log and count about it.
type result struct {
	outcome        outcome
	reason         string
	podName        string
	serviceAccount string
	response       admission.Response
}

func (h *Handler) decide(ctx context.Context, req *admissionjson.Request) result {
	if req.UID == "" {
		return errored(http.StatusBadRequest, fmt.Errorf("admission request has no uid"))
	}
	if req.Resource != podResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		return result{outcome: outcomeIgnored, response: admission.Allowed("")}
	}
	if !req.Object.Present {
		return errored(http.StatusBadRequest, fmt.Errorf("admission request for a pod has no object"))
	}
	if req.Object.Err != nil {
		return errored(http.StatusBadRequest, fmt.Errorf("decode pod: %w", req.Object.Err))
	}
	pod := req.Object.Pod

	r := result{podName: podName(pod), serviceAccount: pod.Spec.ServiceAccountName}
	if r.serviceAccount == "" {
		r.serviceAccount = "default"
	}
	namespace := req.Namespace
	if namespace == "" {
		namespace = pod.Namespace
	}

	if h.LookupTimeout > 0 {
		bound := newLookupBound(ctx, h.LookupTimeout)
		defer bound.stop()
		ctx = bound
	}
	d := identity.Decide(identity.Request{
		Defaults:       h.Defaults,
		Namespace:      namespace,
		ServiceAccount: r.serviceAccount,
		PodLabels:      pod.Labels,
		PodAnnotations: pod.Annotations,
		PolicyAction:   h.RolePolicyAction,
		LookupServiceAccount: func() (map[string]string, error) {
			sa, err := h.ServiceAccounts.Get(ctx, namespace, r.serviceAccount)
			return sa.Annotations, err
		},
		LookupNamespacePolicy: h.namespacePolicy(ctx, namespace),
	})
	switch {
	case d.Refusal != nil && d.Refusal.Retry:
		return r.with(outcomeDenied, d.Reason, denied(d.Refusal.Message))
	case d.Refusal != nil:
		return r.with(outcomeRefused, d.Reason, admission.Denied(d.Refusal.Message).WithWarnings(d.Warnings...))
	case d.Plan == nil:
		return r.with(outcomeSkipped, d.Reason, admission.Allowed("").WithWarnings(d.Warnings...))
	}

	apply := h.apply
	if apply == nil {
		// The copy lives until the patch is made from it.
		s := scratches.Get().(*mutate.Scratch)
		defer func() {
			s.Reset()
			scratches.Put(s)
		}()
		apply = s.Apply
	}
	mutated, warnings := apply(pod, *d.Plan)
	ops, err := req.Object.Patch(mutated)
	if err != nil {
		// Our own fault: a patch that left the change out would admit a
		// Pod other than the one the mutation meant.
		err = fmt.Errorf("irsa-webhook could not express its mutation of the pod as a patch, so the pod was not admitted: %w", err)
		return r.with(outcomeError, err.Error(), admission.Errored(http.StatusInternalServerError, err))
	}
	resp := admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true}}
	if ops != nil {
		resp.Patch, resp.PatchType = ops, ptr.To(admissionv1.PatchTypeJSONPatch)
	}
	return r.with(outcomeMutated, "", resp.WithWarnings(append(d.Warnings, warnings...)...))
}

func (r result) with(o outcome, reason string, resp admission.Response) result {
	r.outcome, r.reason, r.response = o, reason, resp
	return r
}

func errored(code int32, err error) result {
	return result{outcome: outcomeError, reason: err.Error(), response: admission.Errored(code, err)}
}

// denied refuses the Pod with 503, which tells clients the refusal is
// temporary. It is an answer, not a failure to answer, so it holds even
// under failurePolicy Ignore (which only covers a webhook that cannot be
// reached or answers with an error).
func denied(message string) admission.Response {
	resp := admission.Denied(message)
	resp.Result.Code = http.StatusServiceUnavailable
	resp.Result.Reason = metav1.StatusReasonServiceUnavailable
	return resp
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName
}
