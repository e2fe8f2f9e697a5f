package webhook

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

var update = flag.Bool("update", false, "rewrite the golden result files")

// A golden case is a folder under testdata/golden holding:
//
//	pod.json             the Pod as the API server sends it (may carry fields
//	                     the compiled API does not know)
//	serviceaccount.json  its ServiceAccount (absent: the ServiceAccount does not exist)
//	namespace.json       the Pod's Namespace, for its irsa-webhook.io/allowed-role-arns
//	                     policy (optional; absent: no policy)
//	flags.txt            serve flags, one per line (optional)
//	result.json          the expected outcome: allowed, code, the message of a
//	                     refusal, warnings, and the Pod
//	                     after applying the returned patch
//
// `make golden` rewrites result.json; review the diff like code.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			h := goldenHandler(t, dir)
			raw := readFile(t, filepath.Join(dir, "pod.json"))

			resp := h.Handle(context.Background(), podCreate(raw))
			patched := applyPatch(t, raw, resp)
			got := goldenResult{Allowed: resp.Allowed, Warnings: resp.Warnings, Pod: json.RawMessage(patched)}
			if resp.Result != nil {
				got.Code = resp.Result.Code
				got.Message = resp.Result.Message
			}
			gotJSON := indent(t, got)

			resultFile := filepath.Join(dir, "result.json")
			if *update {
				if err := os.WriteFile(resultFile, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(string(readFile(t, resultFile)), string(gotJSON)); diff != "" {
				t.Errorf("result differs from %s (-want +got); run `make golden` if intended:\n%s", resultFile, diff)
			}

			checkOnlyAdds(t, raw, resp)
			if missing := lost(decodeAny(t, raw), decodeAny(t, patched), ""); len(missing) > 0 {
				t.Errorf("patch dropped or changed fields of the request: %v", missing)
			}

			// Reinvocation: the mutated Pod yields no patch and the same verdict.
			again := h.Handle(context.Background(), podCreate(patched))
			if len(again.Patch) != 0 {
				t.Errorf("second pass is not a no-op: %v", again.Patch)
			}
			if again.Allowed != resp.Allowed {
				t.Errorf("second pass allowed=%t, first %t", again.Allowed, resp.Allowed)
			}
		})
	}
}

type goldenResult struct {
	Allowed  bool            `json:"allowed"`
	Code     int32           `json:"code,omitempty"`
	Message  string          `json:"message,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
	Pod      json.RawMessage `json:"pod"`
}

func goldenHandler(t *testing.T, dir string) *Handler {
	t.Helper()
	cfg := NewConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	var args []string
	if b, err := os.ReadFile(filepath.Join(dir, "flags.txt")); err == nil {
		args = strings.Fields(string(b))
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("flags.txt: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("flags.txt: %v", err)
	}
	sas := staticServiceAccounts{}
	if b, err := os.ReadFile(filepath.Join(dir, "serviceaccount.json")); err == nil {
		var sa corev1.ServiceAccount
		if err := json.Unmarshal(b, &sa); err != nil {
			t.Fatalf("serviceaccount.json: %v", err)
		}
		sas[sa.Namespace+"/"+sa.Name] = sa.Annotations
	}
	nss := staticNamespaces{}
	if b, err := os.ReadFile(filepath.Join(dir, "namespace.json")); err == nil {
		var ns corev1.Namespace
		if err := json.Unmarshal(b, &ns); err != nil {
			t.Fatalf("namespace.json: %v", err)
		}
		nss[ns.Name] = ns.Annotations
	}
	return &Handler{Defaults: cfg.Defaults(), ServiceAccounts: sas, Namespaces: nss, RolePolicyAction: cfg.RolePolicyAction}
}

// checkOnlyAdds fails unless every operation adds, or replaces a null (a
// list that had to be created).
func checkOnlyAdds(t *testing.T, raw []byte, resp admission.Response) {
	t.Helper()
	var ops []struct {
		Operation string `json:"op"`
		Path      string `json:"path"`
	}
	if len(resp.Patch) > 0 {
		if err := json.Unmarshal(resp.Patch, &ops); err != nil {
			t.Fatalf("patch is not a JSON patch: %v", err)
		}
	}
	for _, op := range ops {
		switch op.Operation {
		case "add":
		case "replace":
			p, _ := json.Marshal([]map[string]any{{"op": "test", "path": op.Path, "value": nil}})
			if _, err := applyOps(raw, p); err != nil {
				t.Errorf("patch replaces %s, which is not null in the request", op.Path)
			}
		default:
			t.Errorf("patch has a %q operation at %s; only add is expected", op.Operation, op.Path)
		}
	}
}

// lost lists the paths of before that after does not hold with the same
// value. Lists may grow, at the end or, for the SPIFFE token helper's
// insertion as the first init container, at the start; nothing may shrink
// or change.
func lost(before, after any, path string) []string {
	switch b := before.(type) {
	case map[string]any:
		a, ok := after.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range b {
			if _, ok := a[k]; !ok {
				if v != nil {
					out = append(out, path+"/"+k)
				}
				continue
			}
			out = append(out, lost(v, a[k], path+"/"+k)...)
		}
		return out
	case []any:
		a, ok := after.([]any)
		if !ok || len(a) < len(b) {
			return []string{path}
		}
		var out []string
		for i := range b {
			out = append(out, lost(b[i], a[i], path+"/"+itoa(i))...)
		}
		if len(out) > 0 && len(a) > len(b) {
			// Grown at the start instead: every element one further on.
			var shifted []string
			d := len(a) - len(b)
			for i := range b {
				shifted = append(shifted, lost(b[i], a[i+d], path+"/"+itoa(i))...)
			}
			if len(shifted) == 0 {
				return nil
			}
		}
		return out
	default:
		if before == nil {
			return nil // null may become a list
		}
		if !reflect.DeepEqual(before, after) {
			return []string{path}
		}
		return nil
	}
}

func applyPatch(t *testing.T, raw []byte, resp admission.Response) []byte {
	t.Helper()
	if len(resp.Patch) == 0 {
		return raw
	}
	p := resp.Patch
	out, err := applyOps(raw, p)
	if err != nil {
		t.Fatalf("patch does not apply to the request object: %v\npatch: %s", err, p)
	}
	return out
}

func applyOps(raw, ops []byte) ([]byte, error) {
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		return nil, err
	}
	return patch.Apply(raw)
}
