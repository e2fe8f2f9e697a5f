package webhook

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	sigsjson "sigs.k8s.io/json"
)

// FuzzDecode holds the handler's JSON v2 decoder to the API machinery's
// (sigs.k8s.io/json) on arbitrary input: an AdmissionReview, and the Pod
// in it. Both decoders succeed with equal results, or both fail. Seeds are
// FuzzReview's.
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
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("review (-API machinery +v2):\n%s", diff)
		}
		if got.Request != nil && len(got.Request.Object.Raw) > 0 {
			comparePodDecode(t, got.Request.Object.Raw)
		}
	})
}

func comparePodDecode(t *testing.T, raw []byte) {
	t.Helper()
	var got, want admittedPod
	gotErr := unmarshal(raw, &got)
	wantErr := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("pod: v2 error %v, API machinery error %v", gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("pod (-API machinery +v2):\n%s", diff)
	}
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
		"node affinity":             `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/os","operator":"In","values":["windows"]}]}]}},"podAffinity":{"x":1}}}}`,
	} {
		t.Run(name, func(t *testing.T) { comparePodDecode(t, []byte(pod)) })
	}
}
