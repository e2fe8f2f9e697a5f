package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeEnv switches the test binary into one of the fake programs below
// instead of running tests.
const fakeEnv = "IRSA_HARNESS_TEST_FAKE"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		fakeServer(os.Args[1])
	case "claim":
		fakeClaimer(os.Args[1], os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", fakeEnv, os.Getenv(fakeEnv))
		os.Exit(2)
	}
}

// fakeServer is a server as the harness starts them: it listens on addr,
// exits with the bind error (as Go servers print it) when it cannot, and
// answers every request with its address until killed.
func fakeServer(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "serving on", addr)
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, addr)
	}))
	os.Exit(1)
}

// fakeClaimer is another test process's harness: it tries to claim each
// port under prefix and prints the ones it got.
func fakeClaimer(prefix string, ports []string) {
	c := newPortChooser(nil, prefix)
	var got []string
	for _, p := range ports {
		n, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if c.claim(n) {
			got = append(got, p)
		}
	}
	fmt.Println(strings.Join(got, " "))
	os.Exit(0)
}

func TestParsePortRange(t *testing.T) {
	for name, tc := range map[string]struct {
		in      string
		want    portRange
		wantErr string
	}{
		"linux default":     {in: "32768\t60999\n", want: portRange{32768, 60999}},
		"spaces":            {in: " 1024 65535 ", want: portRange{1024, 65535}},
		"one port":          {in: "40000 40000", want: portRange{40000, 40000}},
		"empty":             {in: "", wantErr: "want two ports"},
		"three fields":      {in: "1 2 3", wantErr: "want two ports"},
		"not a number":      {in: "32768 lots", wantErr: "invalid syntax"},
		"reversed":          {in: "60999 32768", wantErr: "low <= high"},
		"above 65535":       {in: "32768 70000", wantErr: "low <= high"},
		"zero":              {in: "0 100", wantErr: "low <= high"},
		"negative":          {in: "-5 100", wantErr: "low <= high"},
		"trailing garbage":  {in: "32768 60999 x", wantErr: "want two ports"},
		"comma not allowed": {in: "32768,60999", wantErr: "want two ports"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := parsePortRange(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parsePortRange(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(portRange{})); diff != "" {
				t.Errorf("parsePortRange(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestPortsOutside(t *testing.T) {
	for name, tc := range map[string]struct {
		eph  portRange
		want []portRange
	}{
		"linux default":       {eph: portRange{32768, 60999}, want: []portRange{{minPort, 32767}, {61000, 65535}}},
		"fallback":            {eph: defaultEphemeral, want: []portRange{{minPort, 32767}}},
		"iana":                {eph: portRange{49152, 65535}, want: []portRange{{minPort, 49151}}},
		"below minPort":       {eph: portRange{1024, 5000}, want: []portRange{{minPort, 65535}}},
		"starts at minPort":   {eph: portRange{minPort, 20000}, want: []portRange{{20001, 65535}}},
		"straddles minPort":   {eph: portRange{5000, 20000}, want: []portRange{{20001, 65535}}},
		"everything":          {eph: portRange{1024, 65535}, want: nil},
		"all but the top one": {eph: portRange{1024, 65534}, want: []portRange{{65535, 65535}}},
	} {
		t.Run(name, func(t *testing.T) {
			got := portsOutside(tc.eph)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(portRange{})); diff != "" {
				t.Errorf("portsOutside(%v) (-want +got):\n%s", tc.eph, diff)
			}
		})
	}
}

// The ports that components get are outside the ephemeral range, distinct,
// and usable once the harness lets go of them.
func TestReservePortsOutsideEphemeralRange(t *testing.T) {
	const n = 40
	got, held, err := reservePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(held)
	eph := ephemeralRange()
	seen := map[int]bool{}
	for _, p := range got {
		if p >= eph.lo && p <= eph.hi {
			t.Errorf("port %d is in the ephemeral range %v", p, eph)
		}
		if p < minPort || p > 65535 {
			t.Errorf("port %d is outside %d-65535", p, minPort)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", hostPort(p))
		if err != nil {
			t.Errorf("port %d is not usable: %v", p, err)
			continue
		}
		l.Close()
	}
	if len(got) != n {
		t.Errorf("got %d ports, want %d", len(got), n)
	}
	more, held, err := reservePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(held)
	for _, p := range more {
		if seen[p] {
			t.Errorf("port %d handed out again by a later call", p)
		}
	}
}

// A port is free for the next process only after the harness lets go of it:
// until then the harness itself listens on it.
func TestReservedPortsAreHeldUntilReleased(t *testing.T) {
	got, held, err := reservePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if l, err := net.Listen("tcp", hostPort(p)); err == nil {
			l.Close()
			t.Errorf("port %d could be bound while the harness held it", p)
		}
	}
	closeAll(held)
	for _, p := range got {
		l, err := net.Listen("tcp", hostPort(p))
		if err != nil {
			t.Errorf("port %d not usable after release: %v", p, err)
			continue
		}
		l.Close()
	}
}

// Another test process cannot claim this process's ports, and can claim
// the rest.
func TestClaimsExcludeOtherProcesses(t *testing.T) {
	if !abstractSockets {
		t.Skip("claims span processes only on Linux")
	}
	prefix := fmt.Sprintf("irsa-webhook-e2e-test-%d/port/", os.Getpid())
	mine, held, err := reservePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(held)
	c := newPortChooser(nil, prefix)
	for _, p := range mine[:3] {
		if !c.claim(p) {
			t.Fatalf("claim %d under a fresh prefix failed", p)
		}
	}
	var want []string
	for _, p := range mine[3:] {
		want = append(want, strconv.Itoa(p))
	}
	if diff := cmp.Diff(want, claimInOtherProcess(t, prefix, mine)); diff != "" {
		t.Errorf("ports another process could claim (-want +got):\n%s", diff)
	}
	// And under the harness's own prefix, none: this process has them all.
	if got := claimInOtherProcess(t, claimPrefix, mine); len(got) != 0 {
		t.Errorf("another harness could claim this process's ports %v", got)
	}
}

// claimInOtherProcess runs fakeClaimer in a new process and returns the
// ports it could claim.
func claimInOtherProcess(t *testing.T, prefix string, ports []int) []string {
	t.Helper()
	args := []string{prefix}
	for _, p := range ports {
		args = append(args, strconv.Itoa(p))
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), fakeEnv+"=claim")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fake claimer: %v", err)
	}
	return strings.Fields(string(out))
}

// The chooser skips ports that something else listens on, never hands out
// a port twice, and says what to do when it runs out.
func TestChooserSkipsPortsInUse(t *testing.T) {
	got, held, err := reservePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	busy := held[0] // keeps listening: a program we do not know
	t.Cleanup(func() { busy.Close() })
	closeAll(held[1:])
	var pool []portRange
	for _, p := range got {
		pool = append(pool, portRange{p, p})
	}
	c := newPortChooser(pool, fmt.Sprintf("irsa-webhook-e2e-test-%d-skip/port/", os.Getpid()))
	free, held2, err := c.reserve(2)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(held2)
	slices.Sort(free)
	want := slices.Sorted(slices.Values(got[1:]))
	if diff := cmp.Diff(want, free); diff != "" {
		t.Errorf("ports reserved from a pool with one busy port (-want +got):\n%s", diff)
	}
	_, _, err = c.reserve(1)
	if err == nil || !strings.Contains(err.Error(), "outside the ephemeral range") {
		t.Errorf("reserve from a used-up pool: err = %v, want one naming the ephemeral range", err)
	}
}

// fakeServerProcess is a Process running fakeServer on its first port.
func fakeServerProcess(t *testing.T) *Process {
	t.Helper()
	p := &Process{
		Name:    "fake-server",
		Path:    os.Args[0],
		Env:     []string{fakeEnv + "=serve"},
		LogPath: filepath.Join(t.TempDir(), "fake-server.log"),
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

// waitServing waits until p's fake server answers on p.Ports[0] with that
// address, or p exits.
func waitServing(p *Process) func(context.Context) error {
	return func(ctx context.Context) error {
		return waitFor(ctx, 30*time.Second, "fake server", p, func(ctx context.Context) error {
			addr := hostPort(p.Ports[0])
			body, err := getBody(ctx, http.DefaultClient, "http://"+addr+"/")
			if err != nil {
				return err
			}
			if string(body) != addr {
				return fmt.Errorf("%s answered %q", addr, body)
			}
			return nil
		})
	}
}

// occupied returns a port that another program serves on until the test
// ends (it answers, so that a readiness probe sent there fails at once).
func occupied(t *testing.T) int {
	t.Helper()
	port, held, err := reservePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "another program")
	})}
	go srv.Serve(held[0])
	t.Cleanup(func() { srv.Close() })
	return port[0]
}

func countLog(t *testing.T, p *Process, s string) int {
	t.Helper()
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), s)
}

// A first start whose port was taken moves to fresh ports and comes up.
func TestStartAndWaitMovesWhenAddressInUse(t *testing.T) {
	taken := occupied(t)
	p := fakeServerProcess(t)
	p.UsePorts = func(ports []int) error {
		p.Args = []string{hostPort(ports[0])}
		return nil
	}
	// As if another program bound the port between the choice and the start.
	p.Ports = []int{taken}
	if err := p.UsePorts(p.Ports); err != nil {
		t.Fatal(err)
	}
	if err := p.startAndWait(context.Background(), waitServing(p)); err != nil {
		t.Fatal(err)
	}
	if got := p.Ports[0]; got == taken {
		t.Errorf("still on the taken port %d", got)
	}
	if eph := ephemeralRange(); p.Ports[0] >= eph.lo && p.Ports[0] <= eph.hi {
		t.Errorf("moved to port %d in the ephemeral range %v", p.Ports[0], eph)
	}
	if got := countLog(t, p, ": starting "); got != 2 {
		t.Errorf("log has %d start markers, want 2:\n%s", got, p.LogTail(20))
	}
	if got := countLog(t, p, "starting again on ports"); got != 1 {
		t.Errorf("log has %d move notes, want 1:\n%s", got, p.LogTail(20))
	}
}

// A process whose every start finds its address in use gives up after
// bindAttempts starts and says so.
func TestStartAndWaitGivesUp(t *testing.T) {
	taken := occupied(t)
	p := fakeServerProcess(t)
	moves := 0
	p.UsePorts = func(ports []int) error {
		moves++
		p.Args = []string{hostPort(taken)} // whatever it is given
		return nil
	}
	if err := p.listenOn(1); err != nil {
		t.Fatal(err)
	}
	err := p.startAndWait(context.Background(), waitServing(p))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("address in use on %d sets of fresh ports in a row", bindAttempts)) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want one saying it gave up after %d sets of ports, with the log", err, bindAttempts)
	}
	if got := countLog(t, p, ": starting "); got != bindAttempts {
		t.Errorf("log has %d start markers, want %d", got, bindAttempts)
	}
	if moves != bindAttempts {
		t.Errorf("UsePorts called %d times, want %d (the first choice and each move)", moves, bindAttempts)
	}
}

// Ports that others already know never move: not without UsePorts, and not
// after the process was ready once (a restart comes back where it was).
func TestStartAndWaitKeepsKnownPorts(t *testing.T) {
	t.Run("no UsePorts", func(t *testing.T) {
		taken := occupied(t)
		p := fakeServerProcess(t)
		p.Ports, p.Args = []int{taken}, []string{hostPort(taken)}
		err := p.startAndWait(context.Background(), waitServing(p))
		if err == nil || !strings.Contains(err.Error(), "cannot move") {
			t.Fatalf("err = %v, want one saying the ports cannot move", err)
		}
		if got := countLog(t, p, ": starting "); got != 1 {
			t.Errorf("log has %d start markers, want 1", got)
		}
	})
	t.Run("restart", func(t *testing.T) {
		p := fakeServerProcess(t)
		p.UsePorts = func(ports []int) error {
			p.Args = []string{hostPort(ports[0])}
			return nil
		}
		if err := p.listenOn(1); err != nil {
			t.Fatal(err)
		}
		if err := p.startAndWait(context.Background(), waitServing(p)); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		port := p.Ports[0]
		thief, err := net.Listen("tcp", hostPort(port))
		if err != nil {
			t.Fatalf("take port %d after stop: %v", port, err)
		}
		srv := &http.Server{Handler: http.NotFoundHandler()}
		go srv.Serve(thief)
		t.Cleanup(func() { srv.Close() })
		err = p.startAndWait(context.Background(), waitServing(p))
		if err == nil || !strings.Contains(err.Error(), "cannot move") {
			t.Fatalf("err = %v, want one saying the ports cannot move", err)
		}
		if p.Ports[0] != port {
			t.Errorf("restart moved from port %d to %d", port, p.Ports[0])
		}
	})
}

// A start that fails for another reason is not retried.
func TestStartAndWaitDoesNotRetryOtherFailures(t *testing.T) {
	p := fakeServerProcess(t)
	p.Env = []string{fakeEnv + "=no-such-fake"}
	p.UsePorts = func(ports []int) error {
		p.Args = []string{hostPort(ports[0])}
		return nil
	}
	if err := p.listenOn(1); err != nil {
		t.Fatal(err)
	}
	err := p.startAndWait(context.Background(), waitServing(p))
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("err = %v, want the exit", err)
	}
	if got := countLog(t, p, ": starting "); got != 1 {
		t.Errorf("log has %d start markers, want 1", got)
	}
}
