package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// TestServeHTTPProfiles: through the whole admission path, a Pod of a
// ServiceAccount with profiles gets the config file as its annotation and a
// downward API item, AWS_PROFILE where it asked for one; the patched Pod
// admitted again gets no patch.
func TestServeHTTPProfiles(t *testing.T) {
	const writer = "arn:aws:iam::111122223333:role/uploads-writer"
	h := &Handler{Defaults: NewConfig().Defaults(), ServiceAccounts: staticServiceAccounts{"team-a/app": {
		"eks.amazonaws.com/role-arn": testARN, identity.Profiles: "writer=" + writer,
	}}}
	pod := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"p-","namespace":"team-a","annotations":{"irsa-webhook.io/container-profiles":"uploader=writer"}},` +
		`"spec":{"serviceAccountName":"app","containers":[{"name":"app","image":"app"},{"name":"uploader","image":"up"}]}}`)
	post := func(pod []byte) *admissionv1.AdmissionResponse {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(reviewBody(t, "u", pod)))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(w.Body.Bytes(), &review); err != nil || review.Response == nil || !review.Response.Allowed {
			t.Fatalf("HTTP %d, review %s: %v", w.Code, w.Body.Bytes(), err)
		}
		return review.Response
	}
	resp := post(pod)
	patched, err := applyOps(pod, resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(patched, &got); err != nil {
		t.Fatal(err)
	}
	config := got.Annotations[identity.AWSConfig]
	for _, want := range []string{"[default]\nrole_arn = " + testARN, "[profile writer]\nrole_arn = " + writer} {
		if !strings.Contains(config, want) {
			t.Errorf("config file %q lacks %q", config, want)
		}
	}
	sources := got.Spec.Volumes[0].Projected.Sources
	if len(sources) != 2 || sources[1].DownwardAPI == nil || sources[1].DownwardAPI.Items[0].Path != mutate.ConfigFile ||
		sources[1].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.annotations['"+identity.AWSConfig+"']" {
		t.Errorf("token volume does not project the config annotation: %+v", sources)
	}
	env := func(c corev1.Container) map[string]string {
		m := map[string]string{}
		for _, e := range c.Env {
			m[e.Name] = e.Value
		}
		return m
	}
	app, uploader := env(got.Spec.Containers[0]), env(got.Spec.Containers[1])
	if app[mutate.EnvRoleARN] != testARN || app[mutate.EnvProfile] != "" || app[mutate.EnvConfigFile] == "" {
		t.Errorf("app env %v, want the default role and the config file", app)
	}
	if uploader[mutate.EnvProfile] != "writer" || uploader[mutate.EnvRoleARN] != "" || uploader[mutate.EnvConfigFile] == "" {
		t.Errorf("uploader env %v, want AWS_PROFILE=writer and the config file, without AWS_ROLE_ARN", uploader)
	}
	if again := post(patched); len(again.Patch) != 0 {
		t.Errorf("the mutated pod admitted again got a patch: %s", again.Patch)
	}
}
