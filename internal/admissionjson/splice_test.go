package admissionjson

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/testcorpus"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// bothPatches are Patch's answer for raw under plan, as the handler gets
// it (the partial Pod, the request's spec), and operationsPatch's, the
// oracle.
func bothPatches(t *testing.T, raw []byte, plan identity.Plan) (spliced, operations []byte, splicedErr, operationsErr error) {
	t.Helper()
	obj := DecodePodObject(raw)
	if obj.Err != nil {
		t.Fatalf("pod does not decode: %v", obj.Err)
	}
	compareLayout(t, obj)
	mutated, _ := mutate.Apply(obj.Pod, plan)
	spliced, splicedErr = obj.Patch(mutated)
	operations, operationsErr = operationsPatch(obj.Pod, mutated)
	return spliced, operations, splicedErr, operationsErr
}

// compareLayout holds where the reader found the spec's lists to where
// scanSpec finds them: where the reader gives a layout, the scan reads the
// spec and finds the same.
func compareLayout(t *testing.T, obj PodObject) {
	t.Helper()
	if obj.layout == nil {
		return
	}
	scanned, err := scanSpec(obj.Spec, &obj.Pod.Spec)
	if err != nil {
		t.Fatalf("the reader found the spec's lists, the scan fails: %v\n%s", err, obj.Spec)
	}
	if diff := cmp.Diff(scanned, obj.layout, cmp.AllowUnexported(rawSpec{}, rawList{}, rawContainer{}), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("layout (-scanSpec +reader):\n%s\n%s", diff, obj.Spec)
	}
}

// TestReaderLayoutIsScanned: for every splice seed and golden Pod, read
// alone and in a review, the reader's layout is scanSpec's, and the reader
// gives one wherever the spec is not one it leaves to the scan.
func TestReaderLayoutIsScanned(t *testing.T) {
	pods := spliceSeeds()
	dirs, _ := filepath.Glob(filepath.Join(webhookTestdata, "golden", "*"))
	for _, dir := range dirs {
		pods["golden-"+filepath.Base(dir)] = readFile(t, filepath.Join(dir, "pod.json"))
	}
	pods["bench-typical"], pods["bench-large"] = typicalPod(""), largePod("")
	for name, raw := range pods {
		t.Run(name, func(t *testing.T) {
			alone := DecodePodObject(raw)
			if alone.Err != nil {
				t.Skip("not a pod")
			}
			compareLayout(t, alone)
			var review Review
			if err := readReview(reviewAround(raw), &review); err != nil {
				t.Fatal(err)
			}
			inReview := review.Request.Object
			inReview.Spec = inReview.specAt.of(reviewAround(raw))
			compareLayout(t, inReview)
			if (alone.layout == nil) != (inReview.layout == nil) {
				t.Fatalf("layout alone %v, in a review %v", alone.layout, inReview.layout)
			}
			spec := alone.Spec
			_, scanErr := scanSpec(spec, &alone.Pod.Spec)
			leftToScan := spec == nil || !utf8.Valid(spec) || bytes.Contains(spec, []byte(`\u`)) || hasDuplicateNames(raw)
			if alone.layout == nil && scanErr == nil && !leftToScan {
				t.Fatalf("the scan reads the spec, the reader gave no layout:\n%s", spec)
			}
		})
	}
}

// genericJSON is raw as encoding/json reads it, for comparing JSON values.
func genericJSON(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	return v
}

// isSpliced reports whether patch sets /spec whole, first; its other
// operations are the annotations'.
func isSpliced(t *testing.T, patch []byte) bool {
	t.Helper()
	ops := decodeOps(t, patch)
	return len(ops) > 0 && ops[0].Path == "/spec"
}

// annotationOps are the operations of patch on the annotations.
func annotationOps(t *testing.T, patch []byte) []op {
	t.Helper()
	var out []op
	for _, o := range decodeOps(t, patch) {
		if strings.HasPrefix(o.Path, "/metadata/annotations") {
			out = append(out, o)
		}
	}
	return out
}

// sameResult fails unless spliced, applied to raw with kube-apiserver's
// JSON patch library, gives the JSON operations gives.
func sameResult(t *testing.T, raw, spliced, operations []byte) {
	t.Helper()
	want, err := applyOps(raw, operations)
	if err != nil {
		t.Fatalf("the operation patch does not apply: %v\n%s", err, operations)
	}
	got, err := applyOps(raw, spliced)
	if err != nil {
		t.Fatalf("the spliced patch does not apply: %v\n%s", err, spliced)
	}
	if diff := cmp.Diff(genericJSON(t, want), genericJSON(t, got)); diff != "" {
		t.Errorf("spliced patch gives another Pod than the operation patch (-operations +spliced):\n%s", diff)
	}
}

// TestSplicedPatchEqualsOperations: for every golden input and benchmark
// Pod under every plan, the spliced patch gives the Pod the operation patch
// gives, its annotation operations are the same, and it is spliced (none
// of these inputs needs the fallback).
func TestSplicedPatchEqualsOperations(t *testing.T) {
	for name, tc := range mutationCases(t) {
		t.Run(name, func(t *testing.T) {
			spliced, operations, err1, err2 := bothPatches(t, tc.raw, tc.plan)
			if err1 != nil || err2 != nil {
				t.Fatalf("Patch error %v, operationsPatch error %v", err1, err2)
			}
			if operations == nil {
				if spliced != nil {
					t.Fatalf("Patch = %s where operationsPatch has none", spliced)
				}
				return
			}
			onSpec := slices.ContainsFunc(decodeOps(t, operations), func(o op) bool { return strings.HasPrefix(o.Path, "/spec") })
			if isSpliced(t, spliced) != onSpec {
				t.Errorf("spliced %t, want %t (the operations touch the spec): %s", !onSpec, onSpec, spliced)
			}
			if diff := cmp.Diff(annotationOps(t, operations), annotationOps(t, spliced)); diff != "" {
				t.Errorf("annotation operations (-operations +spliced):\n%s", diff)
			}
			sameResult(t, tc.raw, spliced, operations)
		})
	}
}

// unknownFieldsPod has fields the compiled API does not know in the spec,
// a container, an init container, a volume and an env entry, and lists in
// every state: absent, null, empty, with elements.
const unknownFieldsPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"team-a"},
"spec":{"x-spec":{"nested":[1,{"k":"v"}]},
 "initContainers":[{"name":"init-0","x-init":true,"volumeMounts":null}],
 "containers":[
  {"name":"app","x-container":"kept","env":[{"name":"A","value":"1","x-env":{"deep":null}}],"volumeMounts":[]},
  {"name":"app-1","env":null},
  {"name":"side","image":"s:1"}],
 "volumes":[{"name":"v","x-volume":[1,2],"emptyDir":{"x-source":1}}],
 "serviceAccountName":"app","x-last":"\u00e9\n"}}`

// TestSplicedPatchKeepsUnknownFields: what the compiled API does not know
// survives the spliced patch, where it is in the spec, next to every kind
// of list the patch appends to or creates.
func TestSplicedPatchKeepsUnknownFields(t *testing.T) {
	raw := []byte(unknownFieldsPod)
	for name, plan := range mutationPlans() {
		t.Run(name, func(t *testing.T) {
			spliced, operations, err1, err2 := bothPatches(t, raw, plan)
			if err1 != nil || err2 != nil {
				t.Fatalf("Patch error %v, operationsPatch error %v", err1, err2)
			}
			if !isSpliced(t, spliced) {
				t.Fatalf("not spliced: %s", spliced)
			}
			sameResult(t, raw, spliced, operations)
			patched, err := applyOps(raw, spliced)
			if err != nil {
				t.Fatal(err)
			}
			shift := 0
			if init, _ := pointer(patched, "/spec/initContainers/0/name"); string(init) == `"`+mutate.SVIDHelperName+`"` {
				shift = 1
			}
			for path, want := range map[string]string{
				"/spec/x-spec":                                            `{"nested":[1,{"k":"v"}]}`,
				"/spec/x-last":                                            `"é\n"`,
				"/spec/containers/0/x-container":                          `"kept"`,
				"/spec/containers/0/env/0/x-env":                          `{"deep":null}`,
				"/spec/volumes/0/x-volume":                                `[1,2]`,
				"/spec/volumes/0/emptyDir/x-source":                       `1`,
				"/spec/initContainers/" + strconv.Itoa(shift) + "/x-init": `true`,
			} {
				got, ok := pointer(patched, path)
				if !ok {
					t.Errorf("%s was lost", path)
					continue
				}
				if diff := cmp.Diff(genericJSON(t, []byte(want)), genericJSON(t, got)); diff != "" {
					t.Errorf("%s changed (-want +got):\n%s", path, diff)
				}
			}
		})
	}
}

// TestSplicedPatchFallsBack: a spec the splice cannot follow exactly is
// answered with the operation patch, byte for byte.
func TestSplicedPatchFallsBack(t *testing.T) {
	plan := mutationPlans()["all containers"]
	for name, raw := range map[string]string{
		"containers repeated":       `{"spec":{"containers":[{"name":"a"}],"containers":[{"name":"b","env":[]}]}}`,
		"env repeated":              `{"spec":{"containers":[{"name":"a","env":[{"name":"X"}],"env":[]}]}}`,
		"volumes repeated":          `{"spec":{"containers":[{"name":"a"}],"volumes":[],"volumes":[{"name":"v"}]}}`,
		"a name repeated elsewhere": `{"spec":{"containers":[{"name":"a"}],"dnsPolicy":"a","dnsPolicy":"b"}}`,
		"repeated in a container":   `{"spec":{"containers":[{"name":"a","image":"x","image":"y"}]}}`,
		"repeated by escape":        `{"spec":{"containers":[{"name":"a","env":[],"\u0065nv":[]}]}}`,
		"invalid UTF-8":             "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"\xff\"}]}}",
		"a container is null":       `{"spec":{"containers":[null]}}`,
		"an init container is null": `{"spec":{"containers":[{"name":"a"}],"initContainers":[null]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			obj := DecodePodObject([]byte(raw))
			if obj.Err != nil {
				t.Fatalf("pod does not decode: %v", obj.Err)
			}
			checkFallsBack(t, obj.Spec, obj.Pod, plan)
		})
	}
	// Specs that are not the typed Pod's.
	pod := DecodePodObject([]byte(`{"spec":{"containers":[{"name":"a","env":[{"name":"X"}]}],"volumes":[{"name":"v"}]}}`)).Pod
	for name, spec := range map[string]string{
		"no spec":                 ``,
		"not an object":           `[]`,
		"something after it":      `{"containers":[{"name":"a","env":[{"name":"X"}]}],"volumes":[{"name":"v"}]} {}`,
		"truncated":               `{"containers":[{"name":"a","env":[{"name":"X"}]}],"volumes":[{"name":"v"}]`,
		"fewer containers":        `{"containers":[],"volumes":[{"name":"v"}]}`,
		"more containers":         `{"containers":[{"name":"a","env":[{"name":"X"}]},{"name":"b"}],"volumes":[{"name":"v"}]}`,
		"fewer env entries":       `{"containers":[{"name":"a","env":[]}],"volumes":[{"name":"v"}]}`,
		"env entries, null":       `{"containers":[{"name":"a","env":null}],"volumes":[{"name":"v"}]}`,
		"fewer volumes":           `{"containers":[{"name":"a","env":[{"name":"X"}]}]}`,
		"volumes not a list":      `{"containers":[{"name":"a","env":[{"name":"X"}]}],"volumes":{}}`,
		"env not a list":          `{"containers":[{"name":"a","env":"x"}],"volumes":[{"name":"v"}]}`,
		"container not an object": `{"containers":[1],"volumes":[{"name":"v"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			var raw []byte
			if spec != "" {
				raw = []byte(spec)
			}
			checkFallsBack(t, raw, pod, plan)
		})
	}
}

// TestSplicedPatchKeepsDeepRepeats: a name repeated below the spec and its
// containers (in a volume, an env entry, a field the API does not know) is
// in neither patch's way: kube-apiserver keeps those objects as they were
// sent whichever patch it applies, and so does the splice.
func TestSplicedPatchKeepsDeepRepeats(t *testing.T) {
	raw := []byte(`{"metadata":{"name":"a"},"spec":{"containers":[{"name":"app","env":[{"name":"A","value":"1","value":"2"}],
"securityContext":{"runAsUser":1,"runAsUser":2}}],"x":{"y":[{"z":1,"z":2}]},"volumes":[{"name":"v","emptyDir":{},"emptyDir":null}]}}`)
	spliced, operations, err1, err2 := bothPatches(t, raw, mutationPlans()["all containers"])
	if err1 != nil || err2 != nil {
		t.Fatalf("Patch error %v, operationsPatch error %v", err1, err2)
	}
	if !isSpliced(t, spliced) {
		t.Fatalf("not spliced: %s", spliced)
	}
	sameResult(t, raw, spliced, operations)
	for _, patch := range [][]byte{spliced, operations} {
		patched, err := applyOps(raw, patch)
		if err != nil {
			t.Fatal(err)
		}
		for _, repeat := range []string{`"value":"1","value":"2"`, `"runAsUser":1,"runAsUser":2`, `"z":1,"z":2`, `"emptyDir":{},"emptyDir":null`} {
			if !bytes.Contains(patched, []byte(repeat)) {
				t.Errorf("%s is not in the patched Pod as it was sent: %s", repeat, patched)
			}
		}
	}
}

// checkFallsBack fails unless Patch answers spec and pod under plan with
// operationsPatch's answer.
func checkFallsBack(t *testing.T, spec []byte, pod *corev1.Pod, plan identity.Plan) {
	t.Helper()
	mutated, _ := mutate.Apply(pod, plan)
	a, err := findAdditions(pod, mutated)
	if err != nil {
		t.Fatal(err)
	}
	if !a.helper && len(a.lists) == 0 {
		t.Fatal("the case adds nothing to the spec: it cannot test the splice")
	}
	if patch, ok := a.splicedPatch(nil, spec, nil); ok {
		t.Fatalf("spliced, want the fallback: %s", patch)
	}
	got, err1 := Patch(spec, pod, mutated)
	want, err2 := operationsPatch(pod, mutated)
	if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
		t.Errorf("Patch = %s, %v\nwant the operation patch %s, %v", got, err1, want, err2)
	}
}

// TestPatchRefusesWhatOperationsRefuse: Patch runs operationsPatch's
// checks; what one refuses the other refuses with the same error.
func TestPatchRefusesWhatOperationsRefuse(t *testing.T) {
	raw := typicalPod(`,"annotations":{"example.com/a":"1"}`)
	obj := DecodePodObject(raw)
	for name, change := range refusedChanges {
		t.Run(name, func(t *testing.T) {
			original := decodeWholePod(t, raw)
			mutated := original.DeepCopy()
			change(mutated)
			_, want := operationsPatch(original, mutated)
			got, err := Patch(obj.Spec, original, mutated)
			if want == nil || err == nil || err.Error() != want.Error() {
				t.Errorf("Patch = %s, %v; want the error %v", got, err, want)
			}
		})
	}
}

// FuzzSplice holds the spliced patch to the operation patch on arbitrary
// Pods: seeds vary the typical Pod's whitespace, member order, lists (null,
// absent, empty), escapes and repeated names. Either both refuse the
// mutation alike, or Patch answers with the operation patch (the fallback),
// or its spliced patch gives the Pod the operation patch gives. plan picks
// one of mutationPlans.
func FuzzSplice(f *testing.F) {
	plans := mutationPlans()
	names := make([]string, 0, len(plans))
	for n := range plans {
		names = append(names, n)
	}
	slices.Sort(names)
	f.Fuzz(func(t *testing.T, raw []byte, plan int) {
		obj := DecodePodObject(raw)
		if obj.Err != nil {
			return
		}
		p := plans[names[uint(plan)%uint(len(names))]]
		spliced, operations, err1, err2 := bothPatches(t, raw, p)
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("Patch error %v, operationsPatch error %v", err1, err2)
		}
		if err1 != nil || bytes.Equal(spliced, operations) {
			return
		}
		if !isSpliced(t, spliced) {
			t.Fatalf("Patch is neither spliced nor the operation patch:\n%s\n%s", spliced, operations)
		}
		// A Pod kube-apiserver would not send (no metadata, say) may take
		// neither patch; then the spliced one must fail too.
		if _, err := applyOps(raw, operations); err != nil {
			if got, err := applyOps(raw, spliced); err == nil {
				t.Fatalf("the spliced patch applies where the operation patch does not (%v): %s", err, got)
			}
			return
		}
		sameResult(t, raw, spliced, operations)
	})
}

// spliceSeeds are FuzzSplice's seeds: variations on the typical Pod, and
// the Pods of the splice tests.
func spliceSeeds() map[string][]byte {
	typical := string(typicalPod(""))
	variations := map[string]string{
		"typical":          typical,
		"unknown-fields":   unknownFieldsPod,
		"indented":         string(indentJSON([]byte(typical))),
		"spec-first":       `{"spec":{"volumes":[{"name":"v"}],"containers":[{"volumeMounts":[{"name":"v","mountPath":"/v"}],"name":"app","env":[]}]},"metadata":{"name":"a"}}`,
		"lists-null":       `{"metadata":{"name":"a","annotations":null},"spec":{"initContainers":null,"containers":[{"name":"app","env":null,"volumeMounts":null}],"volumes":null}}`,
		"lists-empty":      `{"metadata":{"name":"a","annotations":{}},"spec":{"initContainers":[],"containers":[{"name":"app","env":[],"volumeMounts":[]}],"volumes":[]}}`,
		"lists-absent":     `{"metadata":{"name":"a"},"spec":{"containers":[{"name":"app"},{}]}}`,
		"spec-empty":       `{"metadata":{"name":"a"},"spec":{}}`,
		"init-containers":  `{"metadata":{"name":"a"},"spec":{"initContainers":[{"name":"init-0","env":[{"name":"A"}]},{"name":"sidecar","restartPolicy":"Always"}],"containers":[{"name":"app"}]}}`,
		"escapes":          `{"metadata":{"name":"a\u0041"},"spec":{"c\u006fntainers":[{"name":"app","\u0065nv":[{"name":"\"x\"","value":"\\\/\u2028"}]}],"volumes":[{"name":"\u00e9"}]}}`,
		"whitespace":       " {\"metadata\" : {\"name\":\"a\"} ,\n\t\"spec\" : { \"containers\" : [ { \"name\" : \"app\" , \"env\" : [ ] } ] , \"volumes\" : [\r\n] } }\n",
		"repeated-spec":    `{"metadata":{"name":"a"},"spec":{"containers":[{"name":"app"}]},"spec":{"volumes":[]}}`,
		"repeated-in-spec": `{"metadata":{"name":"a"},"spec":{"containers":[{"name":"app","env":[]}],"containers":[{"name":"b"}]}}`,
		"no-metadata":      `{"spec":{"containers":[{}]}}`,
		"repeated-env":     `{"metadata":{"name":"a"},"spec":{"containers":[{"name":"app","env":[{"name":"A"}],"env":null}]}}`,
	}
	seeds := map[string][]byte{}
	for name, pod := range variations {
		for plan := range 2 {
			seeds[name+"-"+strconv.Itoa(plan)] = testcorpus.Encode([]byte(pod), plan*2)
		}
	}
	return seeds
}

func indentJSON(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return raw
	}
	return b.Bytes()
}
