package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

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

// deadlineLookup records the deadline of each lookup's context and answers
// with annotations.
type deadlineLookup struct {
	annotations map[string]string
	deadlines   *[]time.Time
}

func (d deadlineLookup) Get(ctx context.Context, _, _ string) (metacache.Entry, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return metacache.Entry{}, errors.New("lookup without a deadline")
	}
	*d.deadlines = append(*d.deadlines, deadline)
	return metacache.Entry{Found: true, Annotations: d.annotations}, nil
}

// The ServiceAccount and the namespace policy are looked up under one
// deadline, LookupTimeout from the start of the admission: two slow lookups
// cannot add up past the API server's timeoutSeconds.
func TestLookupsShareOneDeadline(t *testing.T) {
	var deadlines []time.Time
	h := &Handler{
		Defaults:        NewConfig().Defaults(),
		ServiceAccounts: deadlineLookup{map[string]string{"eks.amazonaws.com/role-arn": testARN}, &deadlines},
		Namespaces:      deadlineLookup{nil, &deadlines},
		LookupTimeout:   time.Hour,
	}
	before := time.Now()
	resp := h.Handle(context.Background(), podCreate([]byte(plainPod)))
	after := time.Now()
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("allowed %t, %d patches, %v; want injected", resp.Allowed, len(resp.Patch), resp.Result)
	}
	if len(deadlines) != 2 {
		t.Fatalf("%d lookups, want the service account and the namespace", len(deadlines))
	}
	if !deadlines[0].Equal(deadlines[1]) {
		t.Errorf("deadlines %v and %v differ, want one shared", deadlines[0], deadlines[1])
	}
	if d := deadlines[0]; d.Before(before.Add(time.Hour)) || d.After(after.Add(time.Hour)) {
		t.Errorf("deadline %v after the start, want LookupTimeout (1h)", d.Sub(before))
	}
}
