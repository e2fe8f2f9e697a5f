package node

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
	"github.com/irsa-webhook/irsa-webhook/pkg/mutate"
)

// rotationEnv opts in to TestKubeletRotatesToken, which takes about ten
// minutes: the kubelet renews a projected token once 80% of its lifetime
// has passed (or after 24 h), the shortest lifetime a Pod may ask for is
// 600 s, and the API server's --service-account-max-token-expiration
// cannot go below one hour, so the first renewal comes 480 s (less up to
// 10 s of jitter) after the token was issued and nothing can bring it
// sooner without faking the kubelet's clock.
const rotationEnv = "IRSA_E2E_TOKEN_ROTATION"

// With eks.amazonaws.com/token-expiration at its 600 s minimum, the
// kubelet rewrites the Pod's token file while the Pod runs, and a read
// after that (a new AssumeRoleWithWebIdentity with the file as it is then)
// still succeeds.
func TestKubeletRotatesToken(t *testing.T) {
	if os.Getenv(rotationEnv) == "" {
		t.Skipf("set %s=1 to run it (about 10 minutes: the kubelet renews a 600 s token after 480 s)", rotationEnv)
	}
	s := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := s.APIServer.Client
	const ns, sa = "rotation", "reader"
	workloadNamespace(t, ctx, s, ns, sa, map[string]string{keys.Key(identity.TokenExpiration): "600"})
	deploy(t, ctx, s, ns, "s3get", sa, 15*time.Second, nil)
	pod, err := harness.RunningPod(ctx, c, ns, "s3get", podTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if tv := harness.TokenVolume(pod); tv == nil || tv.ExpirationSeconds == nil || *tv.ExpirationSeconds != 600 {
		t.Fatalf("token volume %+v, want expirationSeconds 600", tv)
	}
	if _, err := harness.WaitLog(ctx, c, pod, "app", logTimeout, readLine); err != nil {
		t.Fatal(err)
	}
	file := s.Node.TokenFile(pod, mutate.VolumeName, mutate.TokenFile)
	first, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Now()

	// Poll the file (bounded: 480 s plus jitter, sync period and slack).
	deadline := time.Now().Add(11 * time.Minute)
	for {
		now, err := os.ReadFile(file)
		if err == nil && len(now) > 0 && !bytes.Equal(now, first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kubelet did not rewrite %s within %s", file, time.Since(issued).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(5 * time.Second):
		}
	}
	t.Logf("kubelet rewrote the token %s after the first read", time.Since(issued).Round(time.Second))
	log, err := harness.WaitLog(ctx, c, pod, "app", logTimeout, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	before := lastRead(log)
	log, err = harness.WaitLog(ctx, c, pod, "app", logTimeout, func(l string) bool {
		return readLine(l) && readNumber(l) > before
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log, "failed") {
		t.Errorf("a read failed:\n%s", log)
	}
}

// readNumber is N of "read N: ..." or "read N failed: ...", or 0.
func readNumber(l string) int {
	rest, ok := strings.CutPrefix(l, "read ")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	n, _ := strconv.Atoi(rest[:end])
	return n
}

// lastRead is the highest N of a line of log.
func lastRead(log string) int {
	last := 0
	for _, l := range strings.Split(log, "\n") {
		last = max(last, readNumber(l))
	}
	return last
}
