package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-webhook/irsa-webhook/e2e/harness"
)

// What the API server calls for each Pod create in a Pod step: nothing,
// the floor (FloorHandler), the mutating floor (MutatingFloorHandler) or
// irsa-webhook.
const (
	PodsNoWebhook     = "no webhook"
	PodsFloor         = "floor"
	PodsMutatingFloor = "mutating floor"
	PodsWebhook       = "irsa-webhook"
)

// FloorCalls is how many admissions each of the floor process's webhooks
// has answered.
type FloorCalls struct{ Floor, Mutating int64 }

// The protocols the API server speaks to a webhook. It speaks HTTP/1.1 to
// every webhook behind a Service, and to a URL unless its host is a
// loopback address or "localhost", where it offers HTTP/2 too
// (k8s.io/apiserver/pkg/util/webhook).
const (
	HTTP1 = "HTTP/1.1"
	HTTP2 = "HTTP/2"
)

// PodCreates is the latency and throughput of Pod creates through the API
// server, with one registration (Mode, over Proto) and Workers concurrent
// creators.
type PodCreates struct {
	Mode    string
	Proto   string // "" for no webhook
	Workers int
	Count   int
	// Injected counts the stored Pods that carry the token volume.
	Injected       int
	P50, P99, Mean time.Duration
	// Throughput is creates per second: Count over the time the creators
	// ran, summed over rounds.
	Throughput float64
	Rounds     int
	// Paired is set when the creates went through every registration of
	// the load interleaved one by one (CreatePodsPaired): Throughput and
	// API are then not measured, as the creates shared the API server.
	Paired bool
	// HalfP99 is the p99 of each half of a paired step's creates, run one
	// after the other, to show how far the p99 moves within a run.
	HalfP99 [2]time.Duration
	// API is what kube-apiserver's metrics summed of its admission of the
	// measured creates.
	API AdmissionTimes

	latencies []time.Duration // sorted
	elapsed   time.Duration
}

// CreatePods creates n Pods in namespace, running as serviceAccount, with
// workers concurrent creators (each create waits for its creator's last),
// and measures each create's round trip.
func CreatePods(ctx context.Context, c kubernetes.Interface, namespace, serviceAccount string, n, workers int, mode, proto string) (PodCreates, error) {
	res := []PodCreates{{Mode: mode, Proto: proto, Workers: workers, Count: n, Rounds: 1, latencies: make([]time.Duration, 0, n)}}
	elapsed, err := createInOrder(ctx, c, []PodTarget{{Namespace: namespace, Mode: mode}}, make([]int, n), serviceAccount, workers, res)
	if err != nil {
		return res[0], err
	}
	res[0].elapsed = elapsed
	res[0].summarize()
	return res[0], nil
}

// createInOrder creates a Pod through targets[t] for each t of order, the
// workers concurrent creators taking the next in order, and records each
// create's round trip and whether it came back injected in res[t]. It
// returns how long the creators ran.
func createInOrder(ctx context.Context, c kubernetes.Interface, targets []PodTarget, order []int, serviceAccount string, workers int, res []PodCreates) (time.Duration, error) {
	var mu sync.Mutex
	next := make(chan int, len(order))
	for _, t := range order {
		next <- t
	}
	close(next)
	g, ctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range workers {
		g.Go(func() error {
			for i := range next {
				t := targets[i]
				pod := TypicalPod(t.Namespace, serviceAccount)
				t0 := time.Now()
				got, err := c.CoreV1().Pods(t.Namespace).Create(ctx, pod, metav1.CreateOptions{})
				d := time.Since(t0)
				if err != nil {
					return fmt.Errorf("create pod in %s: %w", t.Namespace, err)
				}
				mu.Lock()
				res[i].latencies = append(res[i].latencies, d)
				if harness.HasTokenVolume(got) {
					res[i].Injected++
				}
				mu.Unlock()
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// PodTarget is one registration of a paired Pod step: its Pods are created
// in Namespace and admitted by what Mode names.
type PodTarget struct{ Namespace, Mode string }

// CreatePodsPaired creates n Pods through each of targets, the creates
// interleaved one by one: with k targets, create i goes to target
// (i%k + i/k) % k, so each takes every place in the cycle alike, and
// workers concurrent creators take the next create in order. Whatever the
// machine does at a moment (an etcd sync, a collection in the API server)
// then falls on every target alike, where in turns of a few hundred
// creates it falls on one, and moves that one's tail: the turns' added p99
// ratios swung between 0.33× and 1.77× from run to run. It measures each
// create's round trip per target; throughput is not measured, since the
// targets' creates share the API server.
func CreatePodsPaired(ctx context.Context, c kubernetes.Interface, targets []PodTarget, serviceAccount string, n, workers int, proto string) ([]PodCreates, error) {
	k := len(targets)
	res := make([]PodCreates, k)
	for i, t := range targets {
		res[i] = PodCreates{Mode: t.Mode, Proto: proto, Workers: workers, Count: n, Rounds: 1, Paired: true, latencies: make([]time.Duration, 0, n)}
	}
	if _, err := createInOrder(ctx, c, targets, pairedOrder(n, k), serviceAccount, workers, res); err != nil {
		return nil, err
	}
	for i := range res {
		res[i].summarize()
	}
	return res, nil
}

// pairedOrder is the target of each of n*k paired creates through k
// targets: every cycle of k holds each target once, and each target
// takes each place in the cycle as often as the others.
func pairedOrder(n, k int) []int {
	order := make([]int, n*k)
	for i := range order {
		order[i] = (i%k + i/k) % k
	}
	return order
}

// MergePods combines rounds of one Pod step (same mode and workers), as
// Merge does load steps.
func MergePods(rounds []PodCreates) PodCreates {
	if len(rounds) == 0 {
		return PodCreates{}
	}
	m := rounds[0]
	m.latencies, m.elapsed, m.Count, m.Injected, m.Rounds, m.API = nil, 0, 0, 0, 0, AdmissionTimes{}
	for _, r := range rounds {
		m.latencies = append(m.latencies, r.latencies...)
		m.elapsed += r.elapsed
		m.Count += r.Count
		m.Injected += r.Injected
		m.Rounds += max(r.Rounds, 1)
		m.API = m.API.Add(r.API)
	}
	m.summarize()
	return m
}

func (p *PodCreates) summarize() {
	slices.Sort(p.latencies)
	p.P50, p.P99 = quantile(p.latencies, 0.5), quantile(p.latencies, 0.99)
	var total time.Duration
	for _, d := range p.latencies {
		total += d
	}
	p.Mean, p.Throughput = 0, 0
	if n := len(p.latencies); n > 0 {
		p.Mean = total / time.Duration(n)
	}
	if p.elapsed > 0 {
		p.Throughput = float64(len(p.latencies)) / p.elapsed.Seconds()
	}
}

// WaitPodsReach waits until a dry-run Pod in namespace shows that the API
// server calls what mode names, and nothing else: irsa-webhook injects and
// neither floor is called; the floor is called and nothing injects; the
// mutating floor is called and injects; with no webhook, nothing injects
// and neither floor is called. The API server picks up registrations from
// a watch, moments after they change.
func WaitPodsReach(ctx context.Context, c kubernetes.Interface, namespace, serviceAccount, mode string, floorCalls func(context.Context) (FloorCalls, error)) error {
	return harness.WaitFor(ctx, 60*time.Second, "pods in "+namespace+" admitted by "+mode, func(ctx context.Context) error {
		before, err := floorCalls(ctx)
		if err != nil {
			return err
		}
		got, err := c.CoreV1().Pods(namespace).Create(ctx, TypicalPod(namespace, serviceAccount), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		after, err := floorCalls(ctx)
		if err != nil {
			return err
		}
		injected := harness.HasTokenVolume(got)
		floor, mutating := after.Floor > before.Floor, after.Mutating > before.Mutating
		want := map[string][3]bool{
			PodsNoWebhook:     {false, false, false},
			PodsFloor:         {false, true, false},
			PodsMutatingFloor: {true, false, true},
			PodsWebhook:       {true, false, false},
		}[mode]
		if [3]bool{injected, floor, mutating} != want {
			return fmt.Errorf("dry-run pod injected = %t, floor called = %t, mutating floor called = %t", injected, floor, mutating)
		}
		return nil
	})
}

// SameChange checks that the mutating floor, registered in floorNamespace,
// makes the change irsa-webhook makes in webhookNamespace: dry-run Pods
// created in each come back with the same spec and annotations, but for
// the name of the token volume the API server generates for each Pod.
func SameChange(ctx context.Context, c kubernetes.Interface, floorNamespace, webhookNamespace, serviceAccount string) error {
	spec := func(namespace string) (string, error) {
		got, err := c.CoreV1().Pods(namespace).Create(ctx, TypicalPod(namespace, serviceAccount), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(struct {
			Annotations map[string]string
			Spec        corev1.PodSpec
		}{got.Annotations, got.Spec})
		if err != nil {
			return "", err
		}
		if v := generatedVolume(b); v != nil {
			b = bytes.ReplaceAll(b, v, []byte(`"kube-api-access-?????"`))
		}
		return string(b), nil
	}
	floor, err := spec(floorNamespace)
	if err != nil {
		return err
	}
	irsa, err := spec(webhookNamespace)
	if err != nil {
		return err
	}
	if floor != irsa {
		return fmt.Errorf("the mutating floor does not make irsa-webhook's change:\nmutating floor: %s\nirsa-webhook:   %s", floor, irsa)
	}
	return nil
}
