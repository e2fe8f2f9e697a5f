package svidhelper

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	clocktesting "k8s.io/utils/clock/testing"
)

const testID = "spiffe://example.org/ns/team-a/sa/app"

func TestRefreshDelay(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		issuedAt, expiry time.Time
		jitter           float64
		want             time.Duration
	}{
		"fresh token, no jitter":        {now, now.Add(time.Hour), 0, 30 * time.Minute},
		"fresh token, most jitter":      {now, now.Add(time.Hour), 0.99, 24*time.Minute + 3600*time.Millisecond},
		"issue time unknown":            {time.Time{}, now.Add(2 * time.Minute), 0, time.Minute},
		"cached token, half used":       {now.Add(-40 * time.Minute), now.Add(20 * time.Minute), 0, time.Second},
		"cached token, a quarter used":  {now.Add(-15 * time.Minute), now.Add(45 * time.Minute), 0, 15 * time.Minute},
		"issued in the future (skew)":   {now.Add(time.Minute), now.Add(61 * time.Minute), 0, 30*time.Minute + 30*time.Second},
		"expired token, floor of 1s":    {now.Add(-2 * time.Hour), now.Add(-time.Hour), 0, time.Second},
		"two-minute token, half jitter": {now, now.Add(2 * time.Minute), 0.5, time.Minute - 6*time.Second},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := RefreshDelay(now, tc.issuedAt, tc.expiry, tc.jitter)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// newClock starts at a whole second, as JWT times are, so that delays
// computed from a token's exp are exact.
func newClock() *clocktesting.FakeClock {
	return clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
}

type run struct {
	helper  *Helper
	clock   *clocktesting.FakeClock
	file    string
	metrics *Metrics
	reg     *prometheus.Registry
	done    chan error
	cancel  context.CancelFunc
}

func startHelper(t *testing.T, addr string, clk *clocktesting.FakeClock, jitter float64, mutate func(*Config)) *run {
	t.Helper()
	cfg := NewConfig()
	cfg.WorkloadAPIAddr = addr
	cfg.File = filepath.Join(t.TempDir(), "token")
	cfg.SPIFFEID = testID
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(logrContext(t))
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, clk)
	h, err := New(*cfg, client, Options{Clock: clk, Jitter: func() float64 { return jitter }, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	r := &run{helper: h, clock: clk, file: cfg.File, metrics: m, reg: reg, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("helper did not stop within 10s of its context ending")
		}
	})
	return r
}

func logrContext(t *testing.T) context.Context {
	return logrIntoContext(context.Background(), testr.New(t))
}

// eventually polls cond every 10ms for at most 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileHolds(t *testing.T, path, want string) func() bool {
	return func() bool {
		got, err := os.ReadFile(path)
		return err == nil && string(got) == want
	}
}

// The token is written, and rewritten exactly when half its lifetime (less
// the jitter) has passed on the injected clock.
func TestHelperRefreshesAtHalfLifetime(t *testing.T) {
	clk := newClock()
	api := startFakeWorkloadAPI(t, shortDir(t), clk.Now)
	api.setID(testID)
	r := startHelper(t, api.addr, clk, 0.5, nil)

	eventually(t, "first token", func() bool { return len(api.issuedTokens()) == 1 })
	first := api.issuedTokens()[0]
	eventually(t, "first token in the file", fileHolds(t, r.file, first))
	eventually(t, "refresh timer", clk.HasWaiters)
	if got := testutil.ToFloat64(r.metrics.fetches.WithLabelValues("success")); got != 1 {
		t.Errorf("successful fetches = %v, want 1", got)
	}
	if err := CheckFile(r.file, clk.Now()); err != nil {
		t.Errorf("check after first write: %v", err)
	}

	// Lifetime 1h, jitter 0.5: refresh at 30m - 3m = 27m.
	clk.Step(27*time.Minute - time.Second)
	if n := len(api.issuedTokens()); n != 1 || !clk.HasWaiters() {
		t.Fatalf("refreshed before 27m: %d tokens issued", n)
	}
	if got, want := testutil.ToFloat64(remainingGauge(t, r.reg)), (33*time.Minute).Seconds()+1; got != want {
		t.Errorf("remaining lifetime gauge = %v, want %v", got, want)
	}
	clk.Step(time.Second)
	eventually(t, "second token", func() bool { return len(api.issuedTokens()) == 2 })
	second := api.issuedTokens()[1]
	if second == first {
		t.Fatal("second token equals the first")
	}
	eventually(t, "second token in the file", fileHolds(t, r.file, second))
}

func remainingGauge(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "irsa_svid_helper_token_remaining_seconds" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no irsa_svid_helper_token_remaining_seconds")
		return 0
	})
}

// A change of the trust domain's signing keys refreshes the token at once,
// without the clock moving.
func TestHelperRefreshesOnKeyRotation(t *testing.T) {
	clk := newClock()
	api := startFakeWorkloadAPI(t, shortDir(t), clk.Now)
	api.setID(testID)
	r := startHelper(t, api.addr, clk, 0, nil)
	eventually(t, "first token", func() bool { return len(api.issuedTokens()) == 1 })
	eventually(t, "refresh timer", clk.HasWaiters)

	api.rotate(t)
	eventually(t, "token after rotation", func() bool { return len(api.issuedTokens()) == 2 })
	eventually(t, "new token in the file", fileHolds(t, r.file, api.issuedTokens()[1]))
	if h := api.headerRefusals(); h != 0 {
		t.Errorf("%d calls came without the workload.spiffe.io header", h)
	}
}

// Started before its registration entry exists, the helper retries with
// backoff and writes the token once the entry appears.
func TestHelperRetriesUntilEntryExists(t *testing.T) {
	clk := newClock()
	api := startFakeWorkloadAPI(t, shortDir(t), clk.Now)
	r := startHelper(t, api.addr, clk, 0, func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Second, 4*time.Second })

	// Failures back off 1s, 2s, 4s, 4s: each step of exactly that length
	// fires the next attempt.
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		want := float64(i + 1)
		eventually(t, "failed fetch", func() bool { return testutil.ToFloat64(r.metrics.fetches.WithLabelValues("error")) == want })
		eventually(t, "retry timer", clk.HasWaiters)
		clk.Step(d - time.Millisecond)
		if got := testutil.ToFloat64(r.metrics.fetches.WithLabelValues("error")); got != want {
			t.Fatalf("retried before the %s backoff ran out", d)
		}
		if i == 3 {
			api.setID(testID)
		}
		clk.Step(time.Millisecond)
	}
	eventually(t, "token after the entry appeared", func() bool { return len(api.issuedTokens()) == 1 })
	eventually(t, "token in the file", fileHolds(t, r.file, api.issuedTokens()[0]))
}

// With no socket at the address, the helper keeps retrying; it recovers once
// an agent listens there.
func TestHelperRetriesUntilSocketExists(t *testing.T) {
	clk := newClock()
	dir := shortDir(t)
	r := startHelper(t, "unix://"+filepath.Join(dir, "agent.sock"), clk, 0, nil)
	eventually(t, "failed fetch", func() bool { return testutil.ToFloat64(r.metrics.fetches.WithLabelValues("error")) >= 1 })
	if _, err := os.Stat(r.file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("token file exists without an agent: %v", err)
	}

	api := startFakeWorkloadAPI(t, dir, clk.Now)
	api.setID(testID)
	eventually(t, "token once the socket exists", func() bool {
		if clk.HasWaiters() {
			clk.Step(time.Minute)
		}
		return len(api.issuedTokens()) >= 1
	})
	eventually(t, "token in the file", fileHolds(t, r.file, api.issuedTokens()[0]))
}

// A JWT-SVID for another SPIFFE ID than the workload has is refused; the
// helper writes nothing.
func TestHelperWritesNothingForAnotherID(t *testing.T) {
	clk := newClock()
	api := startFakeWorkloadAPI(t, shortDir(t), clk.Now)
	api.setID(testID)
	r := startHelper(t, api.addr, clk, 0, func(c *Config) { c.SPIFFEID = "spiffe://example.org/other" })
	eventually(t, "failed fetch", func() bool { return testutil.ToFloat64(r.metrics.fetches.WithLabelValues("error")) >= 1 })
	if _, err := os.Stat(r.file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("token file written for a refused ID: %v", err)
	}
	if n := len(api.issuedTokens()); n != 0 {
		t.Fatalf("%d tokens issued", n)
	}
}

// Ending the context ends Run with nil and leaves the token in place.
func TestHelperStopsGracefully(t *testing.T) {
	clk := newClock()
	api := startFakeWorkloadAPI(t, shortDir(t), clk.Now)
	api.setID(testID)
	r := startHelper(t, api.addr, clk, 0, nil)
	eventually(t, "first token", func() bool { return len(api.issuedTokens()) == 1 })
	eventually(t, "token in the file", fileHolds(t, r.file, api.issuedTokens()[0]))
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
		r.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
	if err := CheckFile(r.file, clk.Now()); err != nil {
		t.Errorf("token gone after stop: %v", err)
	}
}

// The fake, like a SPIRE agent, refuses calls without the security header,
// so the tests above prove the helper sends it.
func TestFakeWorkloadAPIRequiresHeader(t *testing.T) {
	api := startFakeWorkloadAPI(t, shortDir(t), time.Now)
	api.setID(testID)
	conn, err := grpc.NewClient(api.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = workload.NewSpiffeWorkloadAPIClient(conn).FetchJWTSVID(context.Background(), &workload.JWTSVIDRequest{Audience: []string{"sts.amazonaws.com"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("call without header: %v, want InvalidArgument", err)
	}
	if !slices.Equal(api.issuedTokens(), nil) {
		t.Fatal("token issued without header")
	}
}
