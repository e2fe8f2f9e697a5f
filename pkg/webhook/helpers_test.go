package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
)

// staticServiceAccounts answers lookups from a map of "ns/name" to
// annotations; a missing key is a ServiceAccount that does not exist.
type staticServiceAccounts map[string]map[string]string

func (s staticServiceAccounts) Get(_ context.Context, namespace, name string) (metacache.Entry, error) {
	ann, ok := s[namespace+"/"+name]
	return metacache.Entry{Found: ok, Annotations: ann}, nil
}

// staticNamespaces answers namespace lookups from a map of name to
// annotations; a missing name is a Namespace that does not exist.
type staticNamespaces map[string]map[string]string

func (s staticNamespaces) Get(_ context.Context, _, name string) (metacache.Entry, error) {
	ann, ok := s[name]
	return metacache.Entry{Found: ok, Annotations: ann}, nil
}

// failingServiceAccounts is a lookup whose API server does not answer.
type failingServiceAccounts struct{ err error }

func (f failingServiceAccounts) Get(context.Context, string, string) (metacache.Entry, error) {
	return metacache.Entry{}, f.err
}

func podCreate(raw []byte) admission.Request {
	var meta struct {
		Metadata struct {
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(raw, &meta)
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "0000-golden",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  podResource,
		Namespace: meta.Metadata.Namespace,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// indent renders v as stable, indented JSON (map keys sorted).
func indent(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func itoa(i int) string { return strconv.Itoa(i) }

var metaTypeAdmissionReview = metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}

func typesUID(s string) types.UID { return types.UID(s) }
