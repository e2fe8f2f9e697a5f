package admissionjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// This file measures what kube-apiserver does with our patch, to compare
// patch shapes that give the same Pod. kube-apiserver v1.37
// (k8s.io/apiserver v0.37.2, pkg/admission/plugin/webhook/mutating,
// callAttrMutatingHook) takes a webhook's answer through these steps:
// it decodes the AdmissionReview answer, decodes the patch
// (jsonpatch.DecodePatch, gopkg.in/evanphx/json-patch.v4), encodes the Pod
// it holds with its JSON serializer, applies the patch with Patch.Apply (no
// options: v4 has none besides its package defaults), decodes the result
// into a new Pod with the same serializer, and marshals the patch again for
// the audit annotation patch.webhook.admission.k8s.io/round_0_index_0.
// apiserverSteps repeats them with the same libraries.

var (
	apiserverScheme = func() *runtime.Scheme {
		s := runtime.NewScheme()
		utilruntime.Must(corev1.AddToScheme(s))
		utilruntime.Must(admissionv1.AddToScheme(s))
		return s
	}()
	// apiserverJSON is the serializer the dispatcher builds for the patch.
	apiserverJSON = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, apiserverScheme, apiserverScheme, kjson.SerializerOptions{})
)

// patchAuditAnnotation is the dispatcher's PatchAuditAnnotation, which it
// marshals with encoding/json for every patch it applies.
type patchAuditAnnotation struct {
	Configuration string `json:"configuration"`
	Webhook       string `json:"webhook"`
	Patch         any    `json:"patch,omitempty"`
	PatchType     string `json:"patchType,omitempty"`
}

// harnessPlan is the plan the e2e harness's flags give a Pod of a
// ServiceAccount annotated with a role: the default audience, expiration
// and mount path, --aws-default-region and --sts-regional-endpoints=true.
var harnessPlan = identity.Plan{RoleARN: testARN, Audience: identity.DefaultAudience, ExpirationSeconds: identity.DefaultTokenExpiration,
	Region: "us-east-1", RegionalSTS: true, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount",
	TokenSource: identity.TokenSourceServiceAccount}

// heldPod is the benchmark harness's typical Pod (e2e/bench TypicalPod)
// as kube-apiserver holds it when it calls webhooks: defaulted, with the
// field manager's managedFields, the ServiceAccount admission plugin's
// token volume and mounts, DefaultTolerationSeconds' tolerations and the
// Priority plugin's priority. Its defaults are written out rather than
// computed, since the defaulting functions live in k8s.io/kubernetes.
func heldPod(tb testing.TB) *corev1.Pod {
	const tokenVolume = "kube-api-access-7xk2p"
	container := func(name string) corev1.Container {
		c := corev1.Container{
			Name:  name,
			Image: "registry.example/" + name + ":1.0",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/app"},
				{Name: "cache", MountPath: "/cache"},
				{Name: tokenVolume, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"},
			},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
		}
		for i := range 5 {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", i), Value: fmt.Sprintf("value-%d", i)})
		}
		return c
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "app-7d9c5b-",
			Namespace:    "bench",
			Labels:       map[string]string{"app": "web", "pod-template-hash": "7d9c5b"},
		},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To[int32](420)}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: tokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
							Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
							{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
					},
					DefaultMode: ptr.To[int32](420),
				}}},
			},
			InitContainers:                []corev1.Container{container("init")},
			Containers:                    []corev1.Container{container("app"), container("sidecar")},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "app",
			DeprecatedServiceAccount:      "app",
			SecurityContext:               &corev1.PodSecurityContext{},
			SchedulerName:                 corev1.DefaultSchedulerName,
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			Priority:           ptr.To[int32](0),
			EnableServiceLinks: ptr.To(true),
			PreemptionPolicy:   ptr.To(corev1.PreemptLowerPriority),
		},
	}
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager: "bench", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time:       &metav1.Time{Time: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)},
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: creatorFields(tb, pod, tokenVolume)},
	}}
	return pod
}

// creatorFields is the field set the field manager records for the
// creator: what it sent and what defaulting added, not what admission
// plugins add after (the token volume and its mounts, tolerations,
// priority).
func creatorFields(tb testing.TB, pod *corev1.Pod, tokenVolume string) []byte {
	type set = map[string]any
	leaf := set{}
	fields := func(names ...string) set {
		s := set{".": leaf}
		for _, n := range names {
			s["f:"+n] = leaf
		}
		return s
	}
	key := func(name, value string) string { return fmt.Sprintf(`k:{%q:%q}`, name, value) }
	containers := func(cs []corev1.Container) set {
		out := set{}
		for _, c := range cs {
			env, mounts := set{".": leaf}, set{".": leaf}
			for _, e := range c.Env {
				env[key("name", e.Name)] = fields("name", "value")
			}
			for _, m := range c.VolumeMounts {
				if m.Name != tokenVolume {
					mounts[key("mountPath", m.MountPath)] = fields("mountPath", "name")
				}
			}
			f := fields("image", "imagePullPolicy", "name", "terminationMessagePath", "terminationMessagePolicy")
			f["f:env"], f["f:volumeMounts"] = env, mounts
			f["f:resources"] = set{".": leaf, "f:requests": fields("cpu", "memory")}
			out[key("name", c.Name)] = f
		}
		return out
	}
	volumes := set{".": leaf}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			volumes[key("name", v.Name)] = set{".": leaf, "f:name": leaf, "f:configMap": fields("defaultMode", "name")}
		case v.EmptyDir != nil:
			volumes[key("name", v.Name)] = fields("emptyDir", "name")
		}
	}
	spec := fields("dnsPolicy", "enableServiceLinks", "restartPolicy", "schedulerName", "securityContext",
		"serviceAccount", "serviceAccountName", "terminationGracePeriodSeconds")
	delete(spec, ".")
	spec["f:containers"], spec["f:initContainers"], spec["f:volumes"] = containers(pod.Spec.Containers), containers(pod.Spec.InitContainers), volumes
	labels := fields()
	for k := range pod.Labels {
		labels["f:"+k] = leaf
	}
	b, err := json.Marshal(set{"f:metadata": set{"f:generateName": leaf, "f:labels": labels}, "f:spec": spec})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// shapeCase is one Pod as kube-apiserver encodes it for the patch, its
// mutation under harnessPlan, and the operation patch and its result.
type shapeCase struct {
	name       string
	pod        *corev1.Pod // as the dispatcher holds it
	objJS      []byte      // pod as the dispatcher encodes it
	current    []byte      // Patch's patch: the spec set whole, spliced
	operations []byte      // operationsPatch's patch: one add per element
	patched    []byte      // objJS with operations applied
	wantPod    *corev1.Pod // patched, decoded
}

func newShapeCase(tb testing.TB, name string, pod *corev1.Pod) shapeCase {
	tb.Helper()
	objJS, err := runtime.Encode(apiserverJSON, pod)
	if err != nil {
		tb.Fatal(err)
	}
	// The webhook reads the Pod from the review, encoded alike.
	obj := DecodePodObject(objJS)
	if obj.Err != nil {
		tb.Fatal(obj.Err)
	}
	mutated, _ := mutate.Apply(obj.Pod, harnessPlan)
	operations, err := operationsPatch(obj.Pod, mutated)
	if err != nil || operations == nil {
		tb.Fatalf("no patch: %v", err)
	}
	current, err := Patch(obj.Spec, obj.Pod, mutated)
	if err != nil || !bytes.HasPrefix(current, []byte(`[{"op":"add","path":"/spec",`)) {
		tb.Fatalf("Patch did not splice the spec (%v): %.200s", err, current)
	}
	patched, err := applyOps(objJS, operations)
	if err != nil {
		tb.Fatal(err)
	}
	return shapeCase{name: name, pod: pod, objJS: objJS, current: current, operations: operations, patched: patched,
		wantPod: decodeHeld(tb, patched)}
}

func decodeHeld(tb testing.TB, raw []byte) *corev1.Pod {
	tb.Helper()
	obj, _, err := apiserverJSON.Decode(raw, nil, &corev1.Pod{})
	if err != nil {
		tb.Fatal(err)
	}
	return obj.(*corev1.Pod)
}

// shapeCases are the benchmark's typical Pod as the webhook's own tests
// send it (testpods.Typical, no defaults), as kube-apiserver holds it
// (heldPod), and the large Pod.
func shapeCases(tb testing.TB) []shapeCase {
	tb.Helper()
	sent := func(raw []byte) *corev1.Pod {
		p := decodeHeld(tb, raw)
		p.APIVersion, p.Kind = "v1", "Pod"
		return p
	}
	return []shapeCase{
		newShapeCase(tb, "typical-sent", sent(typicalPod(""))),
		newShapeCase(tb, "typical-held", heldPod(tb)),
		newShapeCase(tb, "large-sent", sent(largePod(""))),
	}
}

// A patchShape is a patch that gives the same Pod as the operation patch:
// what Patch writes, the operation patch itself (what it wrote before, and
// writes when the spec cannot be spliced), and others built here from the
// operation patch and its result, to measure what kube-apiserver pays for
// each.
type patchShape struct {
	name string
	ops  func(tb testing.TB, c shapeCase) []byte
}

var patchShapes = []patchShape{
	// /spec set whole, from the request's bytes with the additions
	// spliced in, and the annotations' operations: what Patch writes.
	{"current", func(_ testing.TB, c shapeCase) []byte { return c.current }},
	// One add per added element.
	{"operations", func(_ testing.TB, c shapeCase) []byte { return c.operations }},
	// The same adds, appending with "-" rather than naming the index: v4
	// appends in place for "-" and copies the list for an index.
	{"dash-index", dashIndex},
	// Each list the operation patch appends to, set whole: one operation a
	// list, one level shallower. It carries the list's existing elements.
	{"whole-lists", func(tb testing.TB, c shapeCase) []byte { return wholeAt(tb, c, 4) }},
	// Each container the operation patch touches, set whole.
	{"whole-containers", func(tb testing.TB, c shapeCase) []byte { return wholeAt(tb, c, 3) }},
	// /spec/containers, /spec/initContainers and /spec/volumes, set whole.
	{"whole-spec-lists", func(tb testing.TB, c shapeCase) []byte { return wholeAt(tb, c, 2) }},
	// /spec set whole, re-encoded from the patched Pod: the shallowest a
	// patch can be (v4 cannot replace the root).
	{"whole-spec", func(tb testing.TB, c shapeCase) []byte { return wholeAt(tb, c, 1) }},
}

type op struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

func decodeOps(tb testing.TB, patch []byte) []op {
	tb.Helper()
	var ops []op
	if err := json.Unmarshal(patch, &ops); err != nil {
		tb.Fatal(err)
	}
	return ops
}

func encodeOps(tb testing.TB, ops []op) []byte {
	tb.Helper()
	b, err := json.Marshal(ops)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func opPaths(tb testing.TB, patch []byte) []string {
	var paths []string
	for _, o := range decodeOps(tb, patch) {
		paths = append(paths, o.Path)
	}
	return paths
}

// dashIndex is the operation patch with each append to an existing list
// written as an add at "-".
func dashIndex(tb testing.TB, c shapeCase) []byte {
	ops := decodeOps(tb, c.operations)
	for i, o := range ops {
		parent, last, _ := cutLast(o.Path)
		if n, err := strconv.Atoi(last); err == nil {
			if list, ok := pointer(c.objJS, parent); ok && bytes.HasPrefix(list, []byte("[")) && n > 0 {
				ops[i].Path = parent + "/-"
			}
		}
	}
	return encodeOps(tb, ops)
}

// wholeAt replaces every operation of the operation patch by one that sets
// its path's first depth tokens whole, to their value in the patched Pod.
func wholeAt(tb testing.TB, c shapeCase, depth int) []byte {
	var targets []string
	for _, p := range opPaths(tb, c.operations) {
		tokens := strings.Split(p, "/")[1:]
		if len(tokens) > depth {
			p = "/" + strings.Join(tokens[:depth], "/")
		}
		if !slices.Contains(targets, p) {
			targets = append(targets, p)
		}
	}
	var ops []op
	for _, p := range targets {
		value, ok := pointer(c.patched, p)
		if !ok {
			tb.Fatalf("%s not in the patched Pod", p)
		}
		kind := "add"
		if _, exists := pointer(c.objJS, p); exists {
			kind = "replace"
		}
		ops = append(ops, op{Op: kind, Path: p, Value: value})
	}
	return encodeOps(tb, ops)
}

func cutLast(path string) (parent, last string, ok bool) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", "", false
	}
	return path[:i], path[i+1:], true
}

// pointer is the raw value at a JSON pointer without escapes, as it is in
// doc.
func pointer(doc []byte, path string) (json.RawMessage, bool) {
	cur := json.RawMessage(doc)
	for _, token := range strings.Split(path, "/")[1:] {
		if bytes.HasPrefix(bytes.TrimSpace(cur), []byte("[")) {
			var list []json.RawMessage
			n, err := strconv.Atoi(token)
			if json.Unmarshal(cur, &list) != nil || err != nil || n < 0 || n >= len(list) {
				return nil, false
			}
			cur = list[n]
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return nil, false
		}
		next, ok := obj[token]
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// answer is the AdmissionReview irsa-webhook writes with patch in it.
func answer(patch []byte) []byte {
	w := httptest.NewRecorder()
	WriteResponse(w, admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		UID: "3f8a1c62-5d4e-4b8a-9d2e-6a1b7c0e9f11", Allowed: true, Patch: patch, PatchType: ptr.To(admissionv1.PatchTypeJSONPatch),
	}})
	return w.Body.Bytes()
}

// apiserverSteps is what the dispatcher does with an answer: decode the
// review, decode the patch, encode the Pod, apply, decode the result,
// marshal the audit annotation. It returns the patched Pod.
func apiserverSteps(body []byte, pod *corev1.Pod) (*corev1.Pod, error) {
	review, _, err := apiserverJSON.Decode(body, nil, &admissionv1.AdmissionReview{})
	if err != nil {
		return nil, err
	}
	patch, err := jsonpatch.DecodePatch(review.(*admissionv1.AdmissionReview).Response.Patch)
	if err != nil {
		return nil, err
	}
	objJS, err := runtime.Encode(apiserverJSON, pod)
	if err != nil {
		return nil, err
	}
	patchedJS, err := patch.Apply(objJS)
	if err != nil {
		return nil, err
	}
	patched, _, err := apiserverJSON.Decode(patchedJS, nil, &corev1.Pod{})
	if err != nil {
		return nil, err
	}
	if _, err := json.Marshal(patchAuditAnnotation{Configuration: "irsa-webhook", Webhook: "irsa-webhook.io", Patch: patch,
		PatchType: string(admissionv1.PatchTypeJSONPatch)}); err != nil {
		return nil, err
	}
	return patched.(*corev1.Pod), nil
}

// TestPatchShapesGiveTheSamePod: every shape BenchmarkAPIServerPatch
// compares gives, through kube-apiserver's steps, the Pod the operation
// patch gives, so the benchmark compares equals.
func TestPatchShapesGiveTheSamePod(t *testing.T) {
	for _, c := range shapeCases(t) {
		for _, s := range patchShapes {
			t.Run(c.name+"/"+s.name, func(t *testing.T) {
				got, err := apiserverSteps(answer(s.ops(t, c)), c.pod)
				if err != nil {
					t.Fatal(err)
				}
				if !apiequality.Semantic.DeepEqual(c.wantPod, got) {
					t.Errorf("shape %s gives another Pod than the operation patch", s.name)
				}
			})
		}
	}
}

// BenchmarkAPIServerPatch is kube-apiserver's cost of each patch shape for
// each Pod: "apply" is jsonpatch's Apply alone, "all" every step of
// apiserverSteps. It reports the patch's operations and bytes.
func BenchmarkAPIServerPatch(b *testing.B) {
	for _, c := range shapeCases(b) {
		for _, s := range patchShapes {
			ops := s.ops(b, c)
			body := answer(ops)
			patch, err := jsonpatch.DecodePatch(ops)
			if err != nil {
				b.Fatal(err)
			}
			metrics := func(b *testing.B) {
				b.ReportMetric(float64(len(patch)), "ops")
				b.ReportMetric(float64(len(ops)), "patch-B")
			}
			b.Run(c.name+"/"+s.name+"/apply", func(b *testing.B) {
				b.ReportAllocs()
				cpu := startCPU()
				for b.Loop() {
					if _, err := patch.Apply(c.objJS); err != nil {
						b.Fatal(err)
					}
				}
				cpu.report(b)
				metrics(b)
			})
			b.Run(c.name+"/"+s.name+"/all", func(b *testing.B) {
				b.ReportAllocs()
				cpu := startCPU()
				for b.Loop() {
					if _, err := apiserverSteps(body, c.pod); err != nil {
						b.Fatal(err)
					}
				}
				cpu.report(b)
				metrics(b)
			})
		}
	}
}

// cpuClock reports a benchmark's process CPU time per operation as
// cpu-ns/op, next to its wall time.
type cpuClock struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuClock {
	start, ok := processCPU()
	return cpuClock{start, ok}
}

func (c cpuClock) report(b *testing.B) {
	end, ok := processCPU()
	if c.ok && ok && b.N > 0 {
		b.ReportMetric(float64(end-c.start)/float64(b.N), "cpu-ns/op")
	}
}
