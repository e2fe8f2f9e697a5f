package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/metacache"
)

// failingNamespaces is a namespace lookup whose API server does not answer.
type failingNamespaces struct{ err error }

func (f failingNamespaces) Get(context.Context, string, string) (metacache.Entry, error) {
	return metacache.Entry{}, f.err
}

// A policy that cannot be read is never taken as "no policy": the pod is
// refused as retryable, under either action.
func TestRolePolicyLookupFailureDenies(t *testing.T) {
	for _, action := range []string{identity.RolePolicyDeny, identity.RolePolicyWarn} {
		t.Run(action, func(t *testing.T) {
			h := &Handler{
				Defaults:         NewConfig().Defaults(),
				ServiceAccounts:  staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}},
				Namespaces:       failingNamespaces{err: errors.New("connection refused")},
				RolePolicyAction: action,
			}
			resp := h.Handle(context.Background(), podCreate([]byte(plainPod)))
			if resp.Allowed || resp.Result.Code != http.StatusServiceUnavailable || len(resp.Patch) > 0 {
				t.Fatalf("allowed %t, code %d, %d patches; want refused with 503 and no patch", resp.Allowed, resp.Result.Code, len(resp.Patch))
			}
			for _, want := range []string{"namespace team-a", "irsa-webhook.io/allowed-role-arns", testARN, "connection refused", "retry"} {
				if !strings.Contains(resp.Result.Message, want) {
					t.Errorf("message %q does not mention %q", resp.Result.Message, want)
				}
			}
		})
	}
}

// The policy is only consulted for pods that would get a role: a pod not
// opted in never waits on a namespace lookup.
func TestRolePolicyNotConsultedWithoutRole(t *testing.T) {
	h := &Handler{
		Defaults:        NewConfig().Defaults(),
		ServiceAccounts: staticServiceAccounts{"team-a/app": {}},
		Namespaces:      failingNamespaces{err: errors.New("connection refused")},
	}
	if resp := h.Handle(context.Background(), podCreate([]byte(plainPod))); !resp.Allowed || len(resp.Patch) > 0 {
		t.Fatalf("allowed %t, %d patches; want allowed untouched", resp.Allowed, len(resp.Patch))
	}
}
