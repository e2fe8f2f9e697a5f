package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// LoadTarget is one webhook process under load.
type LoadTarget struct {
	Name string
	URL  string
	// PID is the server process, whose CPU time each step reads.
	PID int
}

// LoadOptions are shared by every step of a load run.
type LoadOptions struct {
	Body     []byte
	RootCAs  *x509.CertPool
	Duration time.Duration
	// MaxWorkers bounds the concurrent requests of a saturation step (rate 0).
	MaxWorkers uint64
	// MaxConnections bounds the connections of a keep-alive step, as a
	// client's connection pool does; 0 is no bound. Without one, a moment's
	// stall at a fixed rate makes the generator open a connection for each
	// waiting request, and the burst of TLS handshakes it sets off measures
	// the generator, not the server (docs/benchmarks.md).
	MaxConnections int
	// Timeout bounds each request, as the API server's webhook timeout does.
	Timeout time.Duration
	// Settle is how long a keep-alive step runs its load before it
	// measures, on the same connections, counting none of it: a
	// keep-alive step measures connections in use, as the API server
	// keeps them. Each round's first moments are the generator opening
	// its connections, a burst of TLS handshakes that held nearly all of
	// the slowest 1% of requests at 2000/s, for the floor and irsa-webhook
	// alike (docs/benchmarks.md); the table without keep-alive measures
	// handshakes.
	Settle time.Duration
}

// LoadStep is the result of one constant-rate (or saturation) step.
type LoadStep struct {
	Target    string
	KeepAlive bool
	// Rate is the offered rate in requests per second; 0 is saturation:
	// MaxWorkers workers, each sending its next request as soon as the last
	// one is answered.
	Rate     int
	Duration time.Duration
	Requests int
	OK       int
	Errors   int
	// FirstError is one error message, for the report.
	FirstError string
	// Throughput is answered-allowed requests per second of the step.
	Throughput     float64
	P50, P99, P999 time.Duration
	Max            time.Duration
	// CPUSeconds is the server's CPU time (user+system) during the step.
	CPUSeconds float64
	// RSSMax is the largest resident set size of the server sampled during
	// the step (every 20 ms), the largest of its rounds.
	RSSMax float64
	// Rounds is how many runs of the step Merge combined; 1 for RunStep's.
	Rounds int

	latencies []time.Duration // of every OK request, sorted
	elapsed   time.Duration   // first request to last answer, summed over rounds
}

// Merge combines rounds of one step (same target, rate and keep-alive)
// into one: counts and CPU add up, throughput is OK requests over the
// summed elapsed time, and percentiles are over every OK request of every
// round, as if the rounds were one longer step.
func Merge(rounds []LoadStep) LoadStep {
	if len(rounds) == 0 {
		return LoadStep{}
	}
	m := rounds[0]
	m.latencies = nil
	m.Requests, m.OK, m.Errors, m.CPUSeconds, m.Duration, m.elapsed, m.Rounds, m.RSSMax = 0, 0, 0, 0, 0, 0, 0, 0
	for _, r := range rounds {
		m.Requests += r.Requests
		m.OK += r.OK
		m.Errors += r.Errors
		m.CPUSeconds += r.CPUSeconds
		m.Duration += r.Duration
		m.elapsed += r.elapsed
		m.Rounds += max(r.Rounds, 1)
		m.RSSMax = max(m.RSSMax, r.RSSMax)
		m.latencies = append(m.latencies, r.latencies...)
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
	}
	m.summarize()
	return m
}

// summarize sets throughput and percentiles from OK, elapsed and latencies.
func (s *LoadStep) summarize() {
	s.Throughput = 0
	if s.elapsed > 0 {
		s.Throughput = float64(s.OK) / s.elapsed.Seconds()
	}
	slices.Sort(s.latencies)
	s.P50, s.P99, s.P999 = quantile(s.latencies, 0.5), quantile(s.latencies, 0.99), quantile(s.latencies, 0.999)
	s.Max = 0
	if n := len(s.latencies); n > 0 {
		s.Max = s.latencies[n-1]
	}
}

// CPUPer1000 is the server's CPU seconds per 1,000 answered requests.
func (s LoadStep) CPUPer1000() float64 {
	if s.OK == 0 {
		return 0
	}
	return s.CPUSeconds / float64(s.OK) * 1000
}

// allowedMarker is in every answer that admits the Pod: irsa-webhook's (with
// a patch) and the floor's.
var allowedMarker = []byte(`"allowed":true`)

// answerPrefix is how much of an answer is kept to look for allowedMarker.
const answerPrefix = 512

// RunStep sends the review body to t at rate for o.Duration over TLS, with
// keep-alive on or off, and returns what it measured. A request counts as
// OK when it is answered 200 with an allowed response.
func RunStep(ctx context.Context, t LoadTarget, o LoadOptions, rate int, keepAlive bool) (LoadStep, error) {
	step := LoadStep{Target: t.Name, KeepAlive: keepAlive, Rate: rate, Duration: o.Duration, Rounds: 1}
	// One client for the settling attacker and the measured one, so that
	// the second uses the connections the first opened (an attacker is
	// done after one attack). The options set up its transport as vegeta
	// sets up its own.
	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
		MaxConnsPerHost:     vegeta.DefaultMaxConnections,
	}}
	// Closed after the step, so that no server carries a step's
	// connections into the next.
	defer client.CloseIdleConnections()
	opts := []func(*vegeta.Attacker){
		vegeta.Client(client),
		vegeta.KeepAlive(keepAlive),
		vegeta.HTTP2(false),
		vegeta.TLSConfig(&tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}),
		vegeta.Timeout(o.Timeout),
		vegeta.Redirects(vegeta.NoFollow),
		// Every answer is read to its end, but only its start is kept,
		// where "allowed" is (after the uid). Keeping whole answers made
		// the generator allocate, and collect, 15 times as much for
		// irsa-webhook's answers with a patch as for the floor's.
		vegeta.MaxBody(answerPrefix),
	}
	if keepAlive && o.MaxConnections > 0 {
		opts = append(opts, vegeta.Connections(o.MaxConnections), vegeta.MaxConnections(o.MaxConnections))
	}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(o.MaxWorkers), vegeta.MaxWorkers(o.MaxWorkers))
	} else {
		// Enough to keep the offered rate open-loop while answers are slow.
		opts = append(opts, vegeta.MaxWorkers(uint64(max(64, rate))))
	}
	targeter := vegeta.NewStaticTargeter(vegeta.Target{
		Method: http.MethodPost,
		URL:    t.URL,
		Body:   o.Body,
		Header: http.Header{"Content-Type": []string{"application/json"}},
	})
	pace := vegeta.Rate{Freq: rate, Per: time.Second}
	if keepAlive && o.Settle > 0 {
		for range vegeta.NewAttacker(opts...).Attack(targeter, pace, o.Settle, t.Name+" settling") {
		}
		if err := ctx.Err(); err != nil {
			return step, err
		}
	}
	cpuBefore, err := cpuSeconds(t.PID)
	if err != nil {
		return step, err
	}
	var first, last time.Time
	stopRSS := make(chan struct{})
	rss := sampleRSS(t.PID, 20*time.Millisecond, stopRSS)
	attacker := vegeta.NewAttacker(opts...)
	results := attacker.Attack(targeter, pace, o.Duration, t.Name)
	for {
		var r *vegeta.Result
		var ok bool
		select {
		case r, ok = <-results:
		case <-ctx.Done():
			attacker.Stop()
			for range results { // drain so the workers end
			}
			close(stopRSS)
			return step, ctx.Err()
		}
		if !ok {
			break
		}
		step.Requests++
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if r.End().After(last) {
			last = r.End()
		}
		if r.Error != "" || r.Code != http.StatusOK || !bytes.Contains(r.Body, allowedMarker) {
			step.Errors++
			if step.FirstError == "" {
				step.FirstError = fmt.Sprintf("code %d: %s %.200s", r.Code, r.Error, r.Body)
			}
			continue
		}
		step.OK++
		step.latencies = append(step.latencies, r.Latency)
	}
	close(stopRSS)
	step.RSSMax = <-rss
	cpuAfter, err := cpuSeconds(t.PID)
	if err != nil {
		return step, err
	}
	step.CPUSeconds = cpuAfter - cpuBefore
	step.elapsed = max(last.Sub(first), 0)
	step.summarize()
	return step, nil
}

// quantile is the nearest-rank quantile of sorted latencies.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
