package admissionjson

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admissionv1 "k8s.io/api/admission/v1"
	sigsjson "sigs.k8s.io/json"
)

// FuzzDecode holds the handler's JSON v2 decoder to the API machinery's
// (sigs.k8s.io/json) on arbitrary input: an AdmissionReview, and the Pod
// in it. Both decoders succeed with equal results (unless an object repeats
// a member name, see hasDuplicateNames), or both fail. Each Pod is also
// decoded where it stands in a review, as ServeHTTP does (compareOnePass).
// Seeds are FuzzReview's.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var got, want admissionv1.AdmissionReview
		gotErr := unmarshal(body, &got)
		wantErr := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("review: v2 error %v, API machinery error %v", gotErr, wantErr)
		}
		if gotErr != nil {
			// Decoding a Pod on its own covers what a review that fails
			// to decode would hold.
			comparePodDecode(t, body)
			return
		}
		if diff := cmp.Diff(want, got); diff != "" && !hasDuplicateNames(body) {
			t.Fatalf("review (-API machinery +v2):\n%s", diff)
		}
		if got.Request != nil && len(got.Request.Object.Raw) > 0 {
			comparePodDecode(t, got.Request.Object.Raw)
		}
	})
}

func comparePodDecode(t *testing.T, raw []byte) {
	t.Helper()
	compareOnePass(t, raw)
	var got, want admittedPod
	gotErr := unmarshal(raw, &got)
	wantErr := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("pod: v2 error %v, API machinery error %v", gotErr, wantErr)
	}
	if gotErr != nil || hasDuplicateNames(raw) {
		return
	}
	// The spec's place in the input is v2's alone (specSpan).
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(admittedSpec{})); diff != "" {
		t.Fatalf("pod (-API machinery +v2):\n%s", diff)
	}
}

// compareOnePass holds the Pod decoded where it stands in a review
// (PodObject, what ServeHTTP does) to decodePod on its raw bytes (what
// Handle does): raw that is not JSON fails the review; a Pod that decodes
// one way decodes alike the other, and one that fails, fails both ways,
// leaving the rest of the review readable.
func compareOnePass(t *testing.T, raw []byte) {
	t.Helper()
	body := slices.Concat([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":`),
		raw, []byte(`,"namespace":"after"}}`))
	var r Review
	err := unmarshal(body, &r)
	if !jsontext.Value(raw).IsValid(jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)) {
		if err == nil {
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
