package admissionjson

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	sigsjson "sigs.k8s.io/json"
)

// FuzzDecode holds the handler's reader to the API machinery's decoder
// (sigs.k8s.io/json) on arbitrary input: an AdmissionReview, and the Pod
// in it. Both succeed with equal results (unless an object repeats a member
// name, see hasDuplicateNames), or both fail. Each Pod is also read where
// it stands in a review, as ServeHTTP does (compareOnePass). Seeds are
// FuzzReview's.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var got Review
		var want reviewOracle
		gotErr := readReview(body, &got)
		wantErr := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("review: reader error %v, API machinery error %v", gotErr, wantErr)
		}
		if gotErr != nil {
			// Decoding a Pod on its own covers what a review that fails
			// to decode would hold.
			comparePodDecode(t, body)
			return
		}
		if hasDuplicateNames(body) {
			return
		}
		if (got.Request == nil) != (want.Request == nil) {
			t.Fatalf("review: reader's request %+v, API machinery's %+v", got.Request, want.Request)
		}
		if want.Request == nil {
			return
		}
		g, w := got.Request, want.Request
		if g.UID != w.UID || g.Resource != w.Resource || g.SubResource != w.SubResource || g.Namespace != w.Namespace || g.Operation != w.Operation ||
			got.APIVersion != want.APIVersion || got.Kind != want.Kind {
			t.Fatalf("review: reader read %+v %+v, API machinery %+v %+v", got, *g, want, *w)
		}
		// RawMessage keeps a null object as null; the reader has none.
		if present := len(w.Object) > 0 && string(w.Object) != "null"; g.Object.Present != present {
			t.Fatalf("review: reader's object present %v, API machinery's object %q", g.Object.Present, w.Object)
		}
		if g.Object.Present {
			var pod admittedPod
			podErr := sigsjson.UnmarshalCaseSensitivePreserveInts(w.Object, &pod)
			if (g.Object.Err == nil) != (podErr == nil) {
				t.Fatalf("pod in the review: reader error %v, API machinery error %v", g.Object.Err, podErr)
			}
			if podErr == nil {
				if diff := cmp.Diff(pod.pod(), g.Object.Pod); diff != "" {
					t.Fatalf("pod in the review (-API machinery +reader):\n%s", diff)
				}
			}
			comparePodDecode(t, w.Object)
		}
	})
}

// reviewOracle is what the reader reads of a review, for the API
// machinery's decoder, with the object left raw.
type reviewOracle struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID         types.UID                   `json:"uid"`
		Resource    metav1.GroupVersionResource `json:"resource"`
		SubResource string                      `json:"subResource"`
		Namespace   string                      `json:"namespace"`
		Operation   admissionv1.Operation       `json:"operation"`
		Object      json.RawMessage             `json:"object"`
	} `json:"request"`
}

// comparePodDecode holds DecodePod to admittedPod decoded by the API
// machinery: equal Pods, or both fail.
func comparePodDecode(t *testing.T, raw []byte) {
	t.Helper()
	compareOnePass(t, raw)
	got, gotErr := DecodePod(raw)
	var want admittedPod
	wantErr := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("pod: reader error %v, API machinery error %v", gotErr, wantErr)
	}
	if gotErr != nil || hasDuplicateNames(raw) {
		return
	}
	if diff := cmp.Diff(want.pod(), got); diff != "" {
		t.Fatalf("pod (-API machinery +reader):\n%s", diff)
	}
}

// compareOnePass holds the Pod read where it stands in a review
// (PodObject, what ServeHTTP does) to DecodePod on its raw bytes (what
// Handle does): raw that is not JSON fails the review; a Pod that decodes
// one way decodes alike the other, and one that fails, fails both ways,
// leaving the rest of the review readable.
func compareOnePass(t *testing.T, raw []byte) {
	t.Helper()
	body := slices.Concat([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":`),
		raw, []byte(`,"namespace":"after"}}`))
	var r Review
	err := readReview(body, &r)
	if !jsontext.Value(raw).IsValid(jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)) {
		// Raw such as `{},"x":1` makes a valid review of other members.
		if err == nil && !jsontext.Value(body).IsValid(jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)) {
			t.Fatalf("a review around an object that is not JSON decoded: %q", raw)
		}
		return
	}
	if err != nil {
		t.Fatalf("a review around a JSON object failed: %v", err)
	}
	if r.Request.UID != "u" || r.Request.Namespace != "after" {
		t.Fatalf("the review's other fields were lost around the object: %+v", r.Request)
	}
	obj := r.Request.Object
	if string(bytes.TrimSpace(raw)) == "null" {
		// A raw object is never null: RawExtension leaves it empty.
		if obj.Present {
			t.Fatal("a null object is present")
		}
		return
	}
	want, wantErr := DecodePod(raw)
	if !obj.Present || (obj.Err == nil) != (wantErr == nil) {
		t.Fatalf("one pass: present %v, error %v; decodePod error %v", obj.Present, obj.Err, wantErr)
	}
	if diff := cmp.Diff(want, obj.Pod); diff != "" {
		t.Fatalf("pod (-decodePod +one pass):\n%s", diff)
	}
}

// hasDuplicateNames reports whether raw is JSON with an object that names
// a member twice. Both decoders accept it, but they differ on what a
// repeated member does to the first (v1 leaves a string alone on a later
// null and decodes a list's elements into the earlier ones). An API server
// never sends such a Pod: it encodes the object it decoded.
func hasDuplicateNames(raw []byte) bool {
	v := jsontext.Value(raw)
	return v.IsValid(jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)) &&
		!v.IsValid(jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(false))
}

// TestDecodeEdgeCases: the inputs where JSON decoders are known to differ
// decode alike, or fail alike.
func TestDecodeEdgeCases(t *testing.T) {
	for name, pod := range map[string]string{
		"lone surrogate escape":     `{"metadata":{"name":"\ud800x"}}`,
		"surrogate pair escape":     `{"metadata":{"name":"\ud83d\ude00"}}`,
		"invalid UTF-8":             "{\"metadata\":{\"name\":\"a\xff\xfeb\"}}",
		"NUL escape":                `{"metadata":{"name":"a\u0000b"}}`,
		"duplicate name":            `{"metadata":{"name":"a","name":"b"}}`,
		"duplicate object merges":   `{"metadata":{"labels":{"a":"1"}},"metadata":{"name":"x"}}`,
		"duplicate map key":         `{"metadata":{"labels":{"a":"1","a":"2"}}}`,
		"name in other case":        `{"metadata":{"Name":"a","NAME":"b"},"Spec":{"containers":[{"name":"c"}]}}`,
		"nulls":                     `{"metadata":null,"spec":{"containers":null,"initContainers":[{"name":null,"env":null,"restartPolicy":null}],"volumes":[null]}}`,
		"null map value":            `{"metadata":{"labels":{"a":null}}}`,
		"empty lists":               `{"spec":{"containers":[],"volumes":[],"initContainers":[{"env":[],"volumeMounts":[]}]}}`,
		"number for string":         `{"metadata":{"name":5}}`,
		"string for list":           `{"spec":{"containers":"nope"}}`,
		"object for string in list": `{"spec":{"containers":[{"env":[{"name":{}}]}]}}`,
		"trailing data":             `{"metadata":{}} {}`,
		"top-level list":            `[1,2,3]`,
		"top-level null":            `null`,
		"float in skipped field":    `{"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":1e400}}}]}}`,
		"bad escape":                `{"metadata":{"name":"\x"}}`,
		"deep skipped nesting":      `{"spec":{"x":` + strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000) + `}}`,
		"too deep nesting":          `{"spec":{"x":` + strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000) + `}}`,
		"valueFrom with quantity":   `{"spec":{"containers":[{"env":[{"name":"a","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu","divisor":"1m"}}}]}]}}`,
		"bad quantity":              `{"spec":{"containers":[{"env":[{"name":"a","valueFrom":{"resourceFieldRef":{"divisor":"lots"}}}]}]}}`,
		"escaped member names":      `{"m\u0065tadata":{"n\u0061me":"a","labels":{"k\u00e9y":"v","\ud800":"lone"}}}`,
		"invalid UTF-8 in a key":    "{\"metadata\":{\"labels\":{\"a\xffb\":\"v\"}}}",
		"null after a string":       `{"metadata":{"name":"a","name":null}}`,
		"null after a list":         `{"spec":{"containers":[{"name":"a"}],"containers":null}}`,
		"list after a list":         `{"spec":{"containers":[{"name":"a"},{"name":"b"}],"containers":[{"env":[{"name":"X"}]}]}}`,
		"maps merge":                `{"metadata":{"labels":{"a":"1"},"labels":{"b":"2"},"labels":{}}}`,
		"map then null then map":    `{"metadata":{"labels":{"a":"1"},"labels":null,"labels":{"b":"2"}}}`,
		"empty objects":             `{"metadata":{"labels":{},"annotations":{}},"spec":{"nodeSelector":{},"affinity":{}}}`,
		"affinity null":             `{"spec":{"affinity":{"nodeAffinity":{}},"affinity":null}}`,
		"affinity merges":           `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[]}}},"affinity":{"podAffinity":{}}}}`,
		"null elements":             `{"spec":{"containers":[null,{"name":"b","env":[null],"volumeMounts":[null]}],"volumes":[null,{"name":"v"}]}}`,
		"restart policy":            `{"spec":{"initContainers":[{"name":"s","restartPolicy":"Always"},{"name":"t","restartPolicy":null}]}}`,
		"restart policy not string": `{"spec":{"initContainers":[{"restartPolicy":5}]}}`,
		"metadata is a list":        `{"metadata":[]}`,
		"spec is a string":          `{"spec":"x"}`,
		"labels is a list":          `{"metadata":{"labels":["a"]}}`,
		"label value is a number":   `{"metadata":{"labels":{"a":1}}}`,
		"env name is true":          `{"spec":{"containers":[{"env":[{"name":true}]}]}}`,
		"whitespace everywhere":     " \n{ \"metadata\" : { \"name\" : \"a\" } , \"spec\" : { \"containers\" : [ { \"name\" : \"c\" } ] } } \n",
		"truncated":                 `{"metadata":{"name":"a"`,
		"truncated in skipped":      `{"spec":{"x":[1,2`,
		"two top-level values":      `{} {}`,
		"top-level string":          `"pod"`,
		"empty input":               ``,
		"object after a bad list":   `{"spec":{"containers":"nope","volumes":[{"name":"v"}]},"metadata":{"name":"a"}}`,
		"deep error":                `{"spec":{"initContainers":[{"env":[{"name":"a"},{"name":{"x":[1,{"y":2}]}}],"volumeMounts":[]}]},"z":1}`,
		"node affinity":             `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/os","operator":"In","values":["windows"]}]}]}},"podAffinity":{"x":1}}}}`,
	} {
		t.Run(name, func(t *testing.T) { comparePodDecode(t, []byte(pod)) })
	}
}
