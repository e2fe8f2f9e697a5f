package admissionjson

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
)

// reviewAround is an AdmissionReview whose request's object is raw.
func reviewAround(raw []byte) []byte {
	return slices.Concat([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":`),
		raw, []byte(`,"namespace":"after"}}`))
}

// specOf is the PodObject's Spec both ways the handler gets it: from a
// review (ReadReview) and from the object alone (DecodePodObject), which
// must agree.
func specOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(reviewAround(raw)))
	r.Header.Set("Content-Type", "application/json")
	review, _, err := ReadReview(r)
	if err != nil {
		t.Fatal(err)
	}
	alone := DecodePodObject(raw)
	if got := review.Request.Object.Spec; !bytes.Equal(got, alone.Spec) {
		t.Fatalf("spec from the review %q, from the object alone %q", got, alone.Spec)
	}
	return alone.Spec
}

// TestSpecIsTheRequestsBytes: the spec a PodObject keeps is the request's
// own bytes of it, whatever surrounds it.
func TestSpecIsTheRequestsBytes(t *testing.T) {
	pods := map[string][]byte{"bench-typical": typicalPod(""), "bench-large": largePod("")}
	dirs, _ := filepath.Glob(filepath.Join(webhookTestdata, "golden", "*"))
	for _, dir := range dirs {
		pods[filepath.Base(dir)] = readFile(t, filepath.Join(dir, "pod.json"))
	}
	pods["whitespace"] = []byte(" {\n\"spec\" \t:\r\n {\"containers\" : [ ] } , \"metadata\":{}}")
	pods["escaped name"] = []byte(`{"\u0073pec":{"containers":[{"name":"a","x-unknown":1}]}}`)
	pods["spec last"] = []byte(`{"metadata":{"name":"a"},"spec":{"containers":[]}}`)
	for name, raw := range pods {
		t.Run(name, func(t *testing.T) {
			want, ok := pointer(raw, "/spec")
			if !ok {
				t.Fatal("no spec")
			}
			if got := specOf(t, raw); !bytes.Equal(got, bytes.TrimSpace(want)) {
				t.Errorf("spec = %q\nwant   %q", got, want)
			}
		})
	}
}

// TestSpecNotOneObject: a spec that is absent, null, not an object or
// repeated leaves nothing to splice into.
func TestSpecNotOneObject(t *testing.T) {
	for name, raw := range map[string]string{
		"absent":            `{"metadata":{}}`,
		"null":              `{"spec":null}`,
		"repeated":          `{"spec":{"containers":[]},"spec":{"volumes":[]}}`,
		"object then null":  `{"spec":{"containers":[]},"spec":null}`,
		"null then object":  `{"spec":null,"spec":{"containers":[]}}`,
		"not a pod":         `{"spec":"x"}`,
		"spec of a list":    `{"spec":[]}`,
		"undecodable field": `{"spec":{"containers":"x"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if got := specOf(t, []byte(raw)); got != nil {
				t.Errorf("spec = %q, want none", got)
			}
		})
	}
}

// TestSpecOutlivesTheBuffer: the review's buffer goes back to the pool
// and is reused; the spec is a copy.
func TestSpecOutlivesTheBuffer(t *testing.T) {
	raw := typicalPod("")
	r := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(reviewAround(raw)))
	r.Header.Set("Content-Type", "application/json")
	review, _, err := ReadReview(r)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(review.Request.Object.Spec)
	for range 4 {
		b := getBuffer()
		b.Write(bytes.Repeat([]byte("x"), 16<<10))
		putBuffer(b)
	}
	if !bytes.Equal(review.Request.Object.Spec, want) {
		t.Error("the spec changed when the buffer was reused")
	}
}
