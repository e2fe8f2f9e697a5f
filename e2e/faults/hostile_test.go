package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// The hostile-network patterns (issue "Hostile pod network"): what any Pod
// that reaches the webhook's port, or anyone on the internet who reaches
// the discovery server's, can send without a credential.
const (
	patternAnnounced = "announced-bodies"
	patternBig       = "big-bodies"
	patternIdle      = "idle-connections"

	// announcedLength is what each request announces: the webhook's body
	// limit is 7 MiB.
	announcedLength = 7 << 20
	// bigBodyBytes is the size of each real body of the big-bodies pattern.
	bigBodyBytes = 6 << 20
	// idleRefresh keeps idle connections under the webhook's 90 s idle
	// timeout.
	idleRefresh = 80 * time.Second

	hostileNS = "team-hostile"
)

// attackerAddr is where the idle connections come from: a loopback address
// of their own, as an attacking Pod's IP is not the API server's (whose
// requests the probes play, from 127.0.0.1).
var attackerAddr = net.IPv4(127, 0, 0, 2)

// Base numbers of each pattern; IRSA_FAULTS_ATTACK_SCALE multiplies them.
const (
	announcedConns   = 4
	announcedStreams = 100
	bigClients       = 64
	idleConnections  = 1100
)

// target is one server under attack and what a well-behaved client sends it.
type target struct {
	name     string
	proc     *harness.Process
	restart  func(ctx context.Context) error
	addr     string // host:port of the TLS listener
	tls      *tls.Config
	limit    int64 // the Deployment's memory limit, bytes
	readyURL string
	// metric reads an unlabelled sample from the server's /metrics.
	metric func(ctx context.Context, name string) (float64, error)
	// probe is one well-behaved request on a fresh connection.
	probe func(ctx context.Context, seq int) error
	// attacks builds the attacks of each pattern against this server.
	attacks func(ctx context.Context, pattern string) (attack, error)
}

// TestHostileNetwork attacks the real binaries over real TLS on loopback,
// one pattern at a time, each against a freshly restarted process (so that
// VmHWM is the pattern's own): the webhook's review port and the discovery
// server's public port, with
//   - announced bodies: a few HTTP/2 connections with up to 100 streams
//     each, every stream announcing a 7 MiB body and sending none;
//   - big bodies: 64 clients sending real 6 MiB bodies in a loop;
//   - idle connections: 1,100 keep-alive connections that each send one
//     request and then stay idle.
//
// Meanwhile well-behaved requests go out from 127.0.0.1 (a review of a
// Pod whose ServiceAccount is cached; a JWKS GET), half on fresh
// connections and half on a pooled one, as the API server sends them, and
// readiness is probed as the kubelet does. The idle connections come from
// 127.0.0.2, as a Pod's address is not the API server's. Each pattern must keep the process's peak RSS under
// its Deployment's memory limit (run with the Deployment's GOMEMLIMIT) and
// answer every well-behaved request within its 10 s timeout; under idle
// connections the server must also stay ready. Every number goes to the log
// and, with IRSA_FAULTS_ATTACK_REPORT=FILE, to FILE as JSON lines
// (cmd/hostilereport writes them into docs/security.md).
//
// IRSA_FAULTS_ATTACK_HOLD (default 10s) is how long each attack is held;
// IRSA_FAULTS_ATTACK_SCALE (default 1) multiplies connections, streams'
// connections and clients (make attack runs 2m and 4).
func TestHostileNetwork(t *testing.T) {
	raiseOpenFiles(t, uint64(idleConnections*attackScale)*2+4096)
	s := harness.StartForTest(t, bins, harness.Options{})
	// Each pattern: a restart, up to a ramp, the hold, the drain.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+6*(attackHold+2*time.Minute))
	defer cancel()
	seedCachedServiceAccounts(t, ctx, s, hostileNS)

	for _, tg := range []*target{webhookTarget(t, ctx, s), discoveryTarget(t, ctx, s)} {
		for _, pattern := range []string{patternAnnounced, patternBig, patternIdle} {
			t.Run(tg.name+"/"+pattern, func(t *testing.T) { runPattern(t, ctx, tg, pattern) })
		}
	}
}

// rampTimeout bounds how long an attack may take to be in place; a server
// that never lets it complete (connections that wait in the accept queue)
// is measured as it is then.
func rampTimeout() time.Duration { return 20*time.Second + time.Duration(attackScale)*10*time.Second }

func runPattern(t *testing.T, ctx context.Context, tg *target, pattern string) {
	if err := tg.restart(ctx); err != nil {
		t.Fatal(err)
	}
	pid := tg.proc.PID()
	if pattern == patternIdle {
		limit, err := openFilesLimit(pid)
		if err != nil {
			t.Fatal(err)
		}
		if need := uint64(idleConnections*attackScale + 256); limit < need {
			t.Fatalf("%s may open %d files, the pattern needs %d", tg.name, limit, need)
		}
	}
	a, err := tg.attacks(ctx, pattern)
	if err != nil {
		t.Fatal(err)
	}
	res := &attackResult{Server: tg.name, Pattern: pattern, Attack: a.describe(), HoldSetting: attackHold.String(), Scale: attackScale, LimitMiB: toMiB(uint64(tg.limit))}

	// Stop the attack early once it holds four times the limit: the
	// verdict is clear, and the machine's memory is not the test's.
	mem := watchMemory(t, pid, 4*uint64(tg.limit))
	actx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	a.start(actx)
	if err := harness.WaitFor(ctx, rampTimeout(), "the attack to be in place", func(context.Context) error {
		select {
		case <-mem.Over:
			return nil
		default:
		}
		return a.inPlace()
	}); err != nil {
		t.Logf("%v; measuring as it is", err)
		a.counts().add("not in place after "+rampTimeout().String(), "")
	}

	holdStart := time.Now()
	pr := startProbes(2, tg.probe)
	rd := watchReadiness(actx, tg.readyURL)
	heap := watchHeap(actx, func(ctx context.Context) (float64, error) { return tg.metric(ctx, "go_memstats_heap_inuse_bytes") })
	select {
	case <-time.After(attackHold):
	case <-mem.Over:
	case <-ctx.Done():
	}
	res.HoldSeconds = time.Since(holdStart).Round(100 * time.Millisecond).Seconds()
	pr.Stop(res)
	rd.Stop(res)
	heap.Stop(res)
	stopAttack()
	a.wait()
	if err := mem.Stop(res); err != nil {
		t.Error(err)
	}
	res.Counts = a.counts().snapshot()
	res.log(t)

	res.check(t)
	if pattern == patternIdle && res.ReadyWorstRun >= 2 {
		t.Errorf("%s/%s: readiness failed %d times in a row (%d of %d checks): the kubelet would take the replica out of service",
			tg.name, pattern, res.ReadyWorstRun, res.ReadyFailures, res.ReadyChecks)
	}
	// Once the attack is gone the server answers again.
	if err := harness.WaitFor(ctx, time.Minute, tg.name+" to answer after the attack", func(ctx context.Context) error {
		return tg.probe(ctx, -1)
	}); err != nil {
		t.Error(err)
	}
	checkNoPanic(t, tg.proc)
	res.report(t)
}

func webhookTarget(t *testing.T, ctx context.Context, s *harness.Stack) *target {
	dep := readDeployment(t, "deploy/base/manifests.yaml", "irsa-webhook")
	s.Webhook.Env = dep.Env
	u, err := url.Parse(s.Webhook.URL)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{RootCAs: s.PKI.CertPool(), MinVersion: tls.VersionTLS12}
	// Odd probes reuse a pooled connection, as the API server does; even
	// ones open a fresh one, as it does when its pool is busy.
	rc, pooled := s.ReviewClient(false), s.ReviewClient(true)
	rc.Client.Timeout, pooled.Client.Timeout = probeTimeout, probeTimeout
	tg := &target{
		name: "webhook", proc: s.Webhook.Process,
		restart: func(ctx context.Context) error {
			pooled.Client.CloseIdleConnections()
			return s.Webhook.Restart(ctx)
		},
		addr: u.Host, tls: tlsCfg, limit: dep.LimitBytes, readyURL: s.Webhook.HealthURL + "/readyz", metric: s.Webhook.Metric,
		probe: func(ctx context.Context, seq int) error {
			pod := appPod(fmt.Sprintf("probe-%d", seq), fmt.Sprintf("cached-%d", max(seq, 0)%cachedSAs))
			c := rc
			if seq%2 == 1 {
				c = pooled
			}
			res := c.Send(ctx, hostileNS, pod)
			if v, why := harness.Judge(pod, hostileNS, res, harness.ExampleRoleARN); v != harness.Injected {
				return fmt.Errorf("%s: %s", v, why)
			}
			return nil
		},
	}
	small := reviewBody(t, "idle", 0)
	tg.attacks = func(ctx context.Context, pattern string) (attack, error) {
		switch pattern {
		case patternAnnounced:
			a := &announcedBodies{addr: u.Host, method: http.MethodPost, path: u.Path, contentType: "application/json",
				contentLength: announcedLength, conns: announcedConns * attackScale, perConn: announcedStreams, tls: tlsCfg}
			return a, a.negotiate(ctx)
		case patternBig:
			return &bigBodies{url: s.Webhook.URL, method: http.MethodPost, contentType: "application/json",
				body: reviewBody(t, "big", bigBodyBytes), clients: bigClients * attackScale, tls: tlsCfg}, nil
		case patternIdle:
			return &idleConns{addr: u.Host, from: attackerAddr, n: idleConnections * attackScale, refresh: idleRefresh, tls: tlsCfg,
				request: func(ctx context.Context) (*http.Request, error) {
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Webhook.URL, bytes.NewReader(small))
					if err == nil {
						req.Header.Set("Content-Type", "application/json")
					}
					return req, err
				}}, nil
		}
		return nil, fmt.Errorf("no pattern %q", pattern)
	}
	return tg
}

// reviewBody is a valid AdmissionReview for a Pod of a cached
// ServiceAccount, padded by an annotation to about size bytes.
func reviewBody(t *testing.T, name string, size int) []byte {
	t.Helper()
	pod := appPod(name, "cached-0")
	if size > 0 {
		pod.Annotations = map[string]string{"example.com/padding": strings.Repeat("x", size-2048)}
	}
	review, err := harness.PodReview(hostileNS, pod)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func discoveryTarget(t *testing.T, ctx context.Context, s *harness.Stack) *target {
	dep := readDeployment(t, "deploy/base/manifests.yaml", "irsa-discovery")
	s.Discovery.Env = dep.Env
	u, err := url.Parse(s.Discovery.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := s.Discovery.OpenIDConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := url.Parse(doc.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{RootCAs: s.PKI.CertPool(), MinVersion: tls.VersionTLS12}
	// Odd probes reuse a pooled connection, even ones open a fresh one.
	fresh := &http.Client{Timeout: probeTimeout, Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone(), DisableKeepAlives: true}}
	pooled := &http.Client{Timeout: probeTimeout, Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone()}}
	tg := &target{
		name: "discovery", proc: s.Discovery.Process,
		restart: func(ctx context.Context) error {
			pooled.CloseIdleConnections()
			return s.Discovery.Restart(ctx)
		},
		addr: u.Host, tls: tlsCfg, limit: dep.LimitBytes, readyURL: s.Discovery.HealthURL + "/readyz", metric: s.Discovery.Metric,
		probe: func(ctx context.Context, seq int) error {
			c := fresh
			if seq%2 == 1 {
				c = pooled
			}
			var keys harness.JWKS
			if err := getJSONWith(ctx, c, doc.JWKSURI, &keys); err != nil {
				return err
			}
			if len(keys.Keys) == 0 {
				return fmt.Errorf("JWKS has no keys")
			}
			return nil
		},
	}
	tg.attacks = func(ctx context.Context, pattern string) (attack, error) {
		switch pattern {
		case patternAnnounced:
			a := &announcedBodies{addr: u.Host, method: http.MethodGet, path: jwks.Path, contentType: "application/octet-stream",
				contentLength: announcedLength, conns: announcedConns * attackScale, perConn: announcedStreams, tls: tlsCfg}
			return a, a.negotiate(ctx)
		case patternBig:
			return &bigBodies{url: doc.JWKSURI, method: http.MethodGet, contentType: "application/octet-stream",
				body: bytes.Repeat([]byte("x"), bigBodyBytes), clients: bigClients * attackScale, tls: tlsCfg}, nil
		case patternIdle:
			return &idleConns{addr: u.Host, from: attackerAddr, n: idleConnections * attackScale, refresh: idleRefresh, tls: tlsCfg,
				request: func(ctx context.Context) (*http.Request, error) {
					return http.NewRequestWithContext(ctx, http.MethodGet, doc.JWKSURI, nil)
				}}, nil
		}
		return nil, fmt.Errorf("no pattern %q", pattern)
	}
	return tg
}

func getJSONWith(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// raiseOpenFiles lifts this process's soft RLIMIT_NOFILE to at least need
// (within the hard limit) for the test, and puts it back after.
func raiseOpenFiles(t *testing.T, need uint64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Cur >= need {
		return
	}
	if old.Max < need {
		t.Fatalf("RLIMIT_NOFILE hard limit %d, the idle-connections pattern needs %d open files", old.Max, need)
	}
	raised := old
	raised.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	})
}
