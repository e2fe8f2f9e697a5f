package metacache

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/internal/fakemeta"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const policyKey = "irsa-webhook.io/allowed-role-arns"

func namespace(name string, annotations map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: map[string]string{"dropped": "yes"}},
	}
}

func TestCachedNamespaceKeepsOnlyThePolicy(t *testing.T) {
	client := fakemeta.NewClient(t,
		namespace("team-a", map[string]string{policyKey: "arn:aws:iam::111122223333:role/a-*", "other.io/x": strings.Repeat("y", 4096)}),
		namespace("team-b", map[string]string{"other.io/x": "y"}))
	gets := fakemeta.CountGets(client, "namespaces", nil, nil)
	c := NewNamespaces(client, []string{policyKey}, Options{})
	if err := c.ReadyCheck(nil); err == nil || err.Error() != "namespace cache has not synced" {
		t.Errorf("ReadyCheck before the start = %v, want that the namespace cache has not synced", err)
	}
	fakemeta.Start(t, c)
	if err := c.ReadyCheck(nil); err != nil {
		t.Errorf("ReadyCheck once synced = %v", err)
	}

	tests := map[string]Entry{
		"team-a": {Found: true, Annotations: map[string]string{policyKey: "arn:aws:iam::111122223333:role/a-*"}},
		"team-b": {Found: true},
	}
	for name, want := range tests {
		got, err := c.Get(context.Background(), "", name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("%d live GETs for cached namespaces", n)
	}
	if kept, _, _ := c.store.Lookup("", "team-a"); len(kept) != 1 {
		t.Errorf("cache keeps more than the policy annotation: %v", kept)
	}
}

func TestNamespaceMissIsLookedUpLive(t *testing.T) {
	client := fakemeta.NewClient(t, namespace("new", map[string]string{policyKey: "arn:aws:iam::111122223333:role/x", "other.io/x": "y"}))
	gets := fakemeta.CountGets(client, "namespaces", nil, nil)
	c := NewNamespaces(client, []string{policyKey}, Options{}) // not started: every key misses

	got, err := c.Get(context.Background(), "", "new")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Entry{Found: true, Annotations: map[string]string{policyKey: "arn:aws:iam::111122223333:role/x"}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got, err = c.Get(context.Background(), "", "gone")
	if err != nil || got.Found {
		t.Errorf("missing namespace: %+v, %v; want not found, no error", got, err)
	}
	if n := gets.Load(); n != 2 {
		t.Errorf("%d live GETs, want 2", n)
	}
}

// When the API server cannot answer, the policy is unknown: an error, never
// an empty entry that would read as "no restriction".
func TestNamespaceUnreachableIsAnError(t *testing.T) {
	client := fakemeta.NewClient(t)
	fakemeta.CountGets(client, "namespaces", nil, errors.New("connection refused"))
	c := NewNamespaces(client, []string{policyKey}, Options{})
	got, err := c.Get(context.Background(), "", "team-a")
	if err == nil || !strings.Contains(err.Error(), "get namespace team-a") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("got %+v, %v; want an error naming the namespace and the cause", got, err)
	}
}
