package admissionjson

import (
	"encoding/json"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
	corev1 "k8s.io/api/core/v1"
)

// The patch's values are written as encoding/json would write them, up to
// insignificant differences (member order, escaping): the API server
// decodes the patch, so only the JSON value counts. TestPatchJSONEqualsStd
// holds each writer to encoding/json over awkward values, and
// TestPatchJSONKnowsEveryField fails when a type gains a field the writer
// does not know.

// appendJSON appends v as encoding/json writes it.
func appendJSON[T any](dst []byte, v *T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendEnvVar writes an env var with a plain value, which is all Apply
// appends; one taking its value from elsewhere goes to encoding/json.
func appendEnvVar(dst []byte, e *corev1.EnvVar) ([]byte, error) {
	if e.ValueFrom != nil {
		return appendJSON(dst, e)
	}
	dst = append(dst, `{"name":`...)
	dst = appendString(dst, e.Name)
	if e.Value != "" {
		dst = append(dst, `,"value":`...)
		dst = appendString(dst, e.Value)
	}
	return append(dst, '}'), nil
}

// appendVolumeMount writes a volume mount without the optional modes and
// options, which is all Apply appends; one with them goes to encoding/json.
func appendVolumeMount(dst []byte, m *corev1.VolumeMount) ([]byte, error) {
	if m.RecursiveReadOnly != nil || m.MountPropagation != nil || m.BindMountOptions != nil {
		return appendJSON(dst, m)
	}
	dst = append(dst, `{"name":`...)
	dst = appendString(dst, m.Name)
	if m.ReadOnly {
		dst = append(dst, `,"readOnly":true`...)
	}
	dst = append(dst, `,"mountPath":`...)
	dst = appendString(dst, m.MountPath)
	if m.SubPath != "" {
		dst = append(dst, `,"subPath":`...)
		dst = appendString(dst, m.SubPath)
	}
	if m.SubPathExpr != "" {
		dst = append(dst, `,"subPathExpr":`...)
		dst = appendString(dst, m.SubPathExpr)
	}
	return append(dst, '}'), nil
}

// appendVolume writes a projected volume of service account tokens, the
// token volume Apply appends; any other volume goes to encoding/json, which
// took a twentieth of the webhook's CPU under load for this one. A field
// added to VolumeSource, VolumeProjection or ServiceAccountTokenProjection
// sends the volume there too (the comparisons below), and
// TestPatchJSONKnowsEveryField catches one added to ProjectedVolumeSource.
func appendVolume(dst []byte, v *corev1.Volume) ([]byte, error) {
	p := v.Projected
	if p == nil || v.VolumeSource != (corev1.VolumeSource{Projected: p}) || p.DefaultMode != nil || p.DefaultUser != nil || p.Sources == nil {
		return appendJSON(dst, v)
	}
	for _, s := range p.Sources {
		t := s.ServiceAccountToken
		if t == nil || s != (corev1.VolumeProjection{ServiceAccountToken: t}) ||
			*t != (corev1.ServiceAccountTokenProjection{Audience: t.Audience, ExpirationSeconds: t.ExpirationSeconds, Path: t.Path}) {
			return appendJSON(dst, v)
		}
	}
	dst = append(dst, `{"name":`...)
	dst = appendString(dst, v.Name)
	dst = append(dst, `,"projected":{"sources":[`...)
	for i, s := range p.Sources {
		if i > 0 {
			dst = append(dst, ',')
		}
		t := s.ServiceAccountToken
		dst = append(dst, `{"serviceAccountToken":{`...)
		if t.Audience != "" {
			dst = append(dst, `"audience":`...)
			dst = append(appendString(dst, t.Audience), ',')
		}
		if t.ExpirationSeconds != nil {
			dst = append(dst, `"expirationSeconds":`...)
			dst = append(strconv.AppendInt(dst, *t.ExpirationSeconds, 10), ',')
		}
		dst = append(dst, `"path":`...)
		dst = append(appendString(dst, t.Path), `}}`...)
	}
	return append(dst, `]}}`...), nil
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json makes it.
func appendString(dst []byte, s string) []byte {
	if q, err := jsontext.AppendQuote(dst, s); err == nil {
		return q
	}
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
}
