package faults

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
	"github.com/irsa-webhook/irsa-webhook/pkg/identity"
)

var (
	keys    = identity.Keys{Prefix: identity.DefaultPrefix}
	roleKey = keys.Key(identity.RoleARN)
)

// tally counts requests by a key such as "outage/cached/injected" and keeps
// the first explanation seen for each key. Safe for concurrent use.
type tally struct {
	mu       sync.Mutex
	counts   map[string]int
	examples map[string]string
}

func newTally() *tally { return &tally{counts: map[string]int{}, examples: map[string]string{}} }

func (c *tally) add(key, example string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[key]++
	if _, ok := c.examples[key]; !ok && example != "" {
		c.examples[key] = example
	}
}

func (c *tally) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

// sum adds the counts of every key matching pattern (path.Match syntax on
// the "/"-separated key, with "*" for one part).
func (c *tally) sum(pattern string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.counts {
		if matchKey(pattern, k) {
			n += v
		}
	}
	return n
}

func matchKey(pattern, key string) bool {
	p, k := strings.Split(pattern, "/"), strings.Split(key, "/")
	if len(p) != len(k) {
		return false
	}
	for i := range p {
		if p[i] != "*" && p[i] != k[i] {
			return false
		}
	}
	return true
}

// log reports every count, sorted by key, and the example of each key
// that has one.
func (c *tally) log(t *testing.T, title string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	ks := make([]string, 0, len(c.counts))
	total := 0
	for k, v := range c.counts {
		ks = append(ks, k)
		total += v
	}
	slices.Sort(ks)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d requests\n", title, total)
	for _, k := range ks {
		fmt.Fprintf(&b, "  %-55s %6d", k, c.counts[k])
		if ex := c.examples[k]; ex != "" {
			fmt.Fprintf(&b, "  (e.g. %.200s)", ex)
		}
		b.WriteString("\n")
	}
	t.Log(b.String())
}

// runLoad calls do from workers goroutines, each with its own sequence
// numbers, until the returned stop is called; stop waits for every call in
// flight to return.
func runLoad(ctx context.Context, workers int, do func(ctx context.Context, worker, seq int)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				do(ctx, w, seq)
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// waitCounts waits until every pattern has at least n requests counted.
func waitCounts(t *testing.T, ctx context.Context, c *tally, n int, patterns ...string) {
	t.Helper()
	err := harness.WaitFor(ctx, 2*time.Minute, fmt.Sprintf("%d requests each of %v", n, patterns), func(context.Context) error {
		for _, p := range patterns {
			if got := c.sum(p); got < n {
				return fmt.Errorf("%s has %d", p, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// appPod is a one-container Pod for serviceAccount with a unique name.
func appPod(name, serviceAccount string) *corev1.Pod {
	return harness.SimplePod(name, serviceAccount)
}

// panicLine finds what a Go process prints when it panics or crashes, and
// what controller-runtime and apimachinery log when they recover a panic.
var panicLine = regexp.MustCompile(`(?i)(^panic: |^fatal error: |observed a panic|recovered.*panic|panic.*recovered|goroutine \d+ \[running\])`)

// checkNoPanic fails the test if the process's log shows a panic.
func checkNoPanic(t *testing.T, p *harness.Process) {
	t.Helper()
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Errorf("read %s log: %v", p.Name, err)
		return
	}
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		if panicLine.MatchString(line) {
			found = append(found, line)
		}
	}
	if len(found) > 0 {
		t.Errorf("%s log shows a panic:\n%s", p.Name, strings.Join(found[:min(len(found), 10)], "\n"))
	}
}

func newJSONRequest(ctx context.Context, url, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}
