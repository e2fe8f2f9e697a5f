package admissionjson

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// awkwardStrings are strings whose JSON needs care: escapes, HTML
// characters (which encoding/json escapes), separators JavaScript cannot
// take raw, and invalid UTF-8.
var awkwardStrings = []string{
	"", "plain", `quote " and backslash \`, "tab\tnewline\n\x00\x1f", "<script>&amp;</script>",
	"line\u2028separator\u2029", "ünïcødé ✓ 🙂", "bad \xff\xfe utf-8", "\xc3",
	"arn:aws:iam::123456789012:role/app", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
}

// sameJSON fails unless got and want are the same JSON value.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: written JSON does not decode: %v\n%s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s: written JSON differs from encoding/json's (-want +got):\n%s\ngot  %s\nwant %s", what, diff, got, want)
	}
}

func TestPatchJSONEqualsStd(t *testing.T) {
	prefix := []byte(`[1,`) // writers append; what is there stays
	check := func(what string, v any, write func([]byte) ([]byte, error)) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := write(slices.Clone(prefix))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !strings.HasPrefix(string(got), string(prefix)) {
			t.Fatalf("%s: the writer changed what was before it: %s", what, got)
		}
		sameJSON(t, what, got[len(prefix):], want)
	}
	for _, a := range awkwardStrings {
		for _, b := range awkwardStrings {
			e := corev1.EnvVar{Name: a, Value: b}
			check("env var", e, func(dst []byte) ([]byte, error) { return appendEnvVar(dst, &e) })
			for _, readOnly := range []bool{false, true} {
				m := corev1.VolumeMount{Name: a, MountPath: b, ReadOnly: readOnly, SubPath: b, SubPathExpr: a}
				check("volume mount", m, func(dst []byte) ([]byte, error) { return appendVolumeMount(dst, &m) })
			}
		}
	}
	expirations := []*int64{nil, ptr.To[int64](0), ptr.To[int64](3600), ptr.To[int64](-1), ptr.To[int64](1<<63 - 1)}
	for i, a := range awkwardStrings {
		b := awkwardStrings[(i+3)%len(awkwardStrings)]
		for _, exp := range expirations {
			one := corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: a, ExpirationSeconds: exp, Path: b}}
			two := corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: b, Path: a}}
			for _, sources := range [][]corev1.VolumeProjection{{one}, {one, two}, {}} {
				v := corev1.Volume{Name: a, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources}}}
				check("token volume", v, func(dst []byte) ([]byte, error) { return appendVolume(dst, &v) })
			}
		}
	}
	// What the writers hand to encoding/json.
	token := corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "sts.amazonaws.com", Path: "token"}}
	for what, v := range map[string]corev1.Volume{
		"volume with a mode": {Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{token}, DefaultMode: ptr.To[int32](0o440)}}},
		"volume with a config map": {Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{token,
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}}}},
		"volume with a token and a config map in one source": {Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: token.ServiceAccountToken, ConfigMap: &corev1.ConfigMapProjection{}}}}}},
		"volume with a default user": {Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{token}, DefaultUser: ptr.To[int64](1000)}}},
		"volume with a token for a user": {Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", User: ptr.To[int64](1000)}}}}}},
		"volume with no sources": {Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}},
		"volume projected and empty dir": {Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{token}},
			EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		"empty dir volume":  {Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		"volume of nothing": {Name: "v"},
	} {
		check(what, v, func(dst []byte) ([]byte, error) { return appendVolume(dst, &v) })
	}
	e := corev1.EnvVar{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}
	check("env var from a field", e, func(dst []byte) ([]byte, error) { return appendEnvVar(dst, &e) })
	m := corev1.VolumeMount{Name: "v", MountPath: "/v", RecursiveReadOnly: ptr.To(corev1.RecursiveReadOnlyEnabled),
		MountPropagation: ptr.To(corev1.MountPropagationHostToContainer)}
	check("volume mount with modes", m, func(dst []byte) ([]byte, error) { return appendVolumeMount(dst, &m) })
	m = corev1.VolumeMount{Name: "v", MountPath: "/v", BindMountOptions: []string{}}
	check("volume mount with empty options", m, func(dst []byte) ([]byte, error) { return appendVolumeMount(dst, &m) })
}

// TestPatchJSONKnowsEveryField fails when a type a writer writes by hand
// gains a field: its writer would leave it out, so teach the writer (or hand the
// new field to encoding/json) and add it here.
func TestPatchJSONKnowsEveryField(t *testing.T) {
	for _, tc := range []struct {
		typ   reflect.Type
		known []string
	}{
		{reflect.TypeFor[corev1.EnvVar](), []string{"name", "value", "valueFrom"}},
		{reflect.TypeFor[corev1.VolumeMount](), []string{"name", "readOnly", "recursiveReadOnly", "mountPath", "subPath", "mountPropagation", "subPathExpr", "bindMountOptions"}},
		{reflect.TypeFor[corev1.Volume](), []string{"name", ""}},
		{reflect.TypeFor[corev1.ProjectedVolumeSource](), []string{"sources", "defaultMode", "defaultUser"}},
	} {
		var names []string
		for f := range tc.typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			names = append(names, name)
		}
		if !slices.Equal(names, tc.known) {
			t.Errorf("%s has the JSON fields %q; the patch writer knows %q", tc.typ, names, tc.known)
		}
	}
}
