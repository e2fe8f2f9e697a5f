package svidhelper

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/utils/clock"
)

// WorkloadAPI is the part of *workloadapi.Client the helper uses.
type WorkloadAPI interface {
	FetchJWTSVID(ctx context.Context, params jwtsvid.Params) (*jwtsvid.SVID, error)
	WatchJWTBundles(ctx context.Context, watcher workloadapi.JWTBundleWatcher) error
}

// Helper fetches JWT-SVIDs and keeps the newest in a file.
type Helper struct {
	cfg     Config
	api     WorkloadAPI
	clock   clock.Clock
	jitter  func() float64
	metrics *Metrics
	subject spiffeid.ID
}

// Options are the helper's collaborators that tests replace.
type Options struct {
	// Clock schedules refreshes and retries; default the real clock.
	Clock clock.Clock
	// Jitter returns a number in [0, 1); default math/rand.
	Jitter func() float64
	// Metrics may be nil.
	Metrics *Metrics
}

// New returns a helper for a validated cfg.
func New(cfg Config, api WorkloadAPI, o Options) (*Helper, error) {
	h := &Helper{cfg: cfg, api: api, clock: o.Clock, jitter: o.Jitter, metrics: o.Metrics}
	if h.clock == nil {
		h.clock = clock.RealClock{}
	}
	if h.jitter == nil {
		h.jitter = randomJitter
	}
	if cfg.SPIFFEID != "" {
		id, err := spiffeid.FromString(cfg.SPIFFEID)
		if err != nil {
			return nil, fmt.Errorf("parse spiffe id %q: %w", cfg.SPIFFEID, err)
		}
		h.subject = id
	}
	return h, nil
}

// RefreshDelay is how long after now to fetch the next token for one valid
// from issuedAt (zero: unknown, taken as now) until expiry: at half its
// lifetime, earlier by up to a tenth of the lifetime times jitter (in
// [0, 1)), and never sooner than a second, so that a misbehaving agent
// cannot make the helper spin.
func RefreshDelay(now, issuedAt, expiry time.Time, jitter float64) time.Duration {
	if issuedAt.IsZero() || issuedAt.After(now) {
		issuedAt = now
	}
	lifetime := expiry.Sub(issuedAt)
	at := issuedAt.Add(lifetime/2 - time.Duration(jitter*float64(lifetime)/10))
	return max(at.Sub(now), time.Second)
}

// Run fetches and writes tokens until ctx ends, then returns nil. Failures
// to reach the Workload API, to get an identity or to write the file are
// logged and retried with backoff; they never end Run.
func (h *Helper) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithValues("file", h.cfg.File, "audience", h.cfg.Audience)
	rotated := make(chan struct{}, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		// WatchJWTBundles retries on its own until watchCtx ends.
		_ = h.api.WatchJWTBundles(watchCtx, &bundleWatcher{log: log, rotated: rotated})
	})
	defer wg.Wait()
	defer stopWatch()

	backoff := h.cfg.MinBackoff
	for {
		wait, err := h.refresh(ctx, log)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Error(err, "token not refreshed, retrying", "reason", reason(err, h.cfg), "retryIn", backoff.String())
			wait = backoff
			backoff = min(backoff*2, h.cfg.MaxBackoff)
		} else {
			backoff = h.cfg.MinBackoff
		}
		timer := h.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C():
		case <-rotated:
			timer.Stop()
			log.Info("JWT signing keys changed, refreshing token now")
		}
		if ctx.Err() != nil {
			break
		}
	}
	log.Info("stopping; the token file is left in place")
	return nil
}

// refresh fetches one token, writes it and returns when to refresh next.
func (h *Helper) refresh(ctx context.Context, log logr.Logger) (time.Duration, error) {
	svid, err := h.api.FetchJWTSVID(ctx, jwtsvid.Params{Audience: h.cfg.Audience, Subject: h.subject})
	h.metrics.fetched(err)
	if err != nil {
		return 0, fmt.Errorf("fetch JWT-SVID: %w", err)
	}
	if err := WriteFileAtomic(h.cfg.File, []byte(svid.Marshal())); err != nil {
		return 0, err
	}
	h.metrics.written(svid.Expiry)
	now := h.clock.Now()
	wait := RefreshDelay(now, issuedAt(svid), svid.Expiry, h.jitter())
	log.Info("token written", "spiffeID", svid.ID.String(), "expiresIn", svid.Expiry.Sub(now).Round(time.Second).String(),
		"refreshIn", wait.Round(time.Second).String())
	return wait, nil
}

func issuedAt(svid *jwtsvid.SVID) time.Time {
	if iat, ok := svid.Claims["iat"].(float64); ok && iat > 0 {
		return time.Unix(int64(iat), 0)
	}
	return time.Time{}
}

// reason turns a Workload API failure into advice for the log.
func reason(err error, cfg Config) string {
	addr := cfg.WorkloadAPIAddr
	if addr == "" {
		addr = "$SPIFFE_ENDPOINT_SOCKET"
	}
	switch status.Code(err) {
	case codes.Unavailable:
		return "the Workload API at " + addr + " is unreachable: is the SPIRE agent running and its socket mounted there?"
	case codes.PermissionDenied:
		if cfg.SPIFFEID != "" {
			return "the agent issued no identity " + cfg.SPIFFEID + " to this workload: is there a registration entry for it whose selectors match?"
		}
		return "the agent issued no identity to this workload: is there a registration entry whose selectors match it?"
	case codes.InvalidArgument:
		return "the Workload API refused the request"
	}
	if strings.Contains(err.Error(), "write token file") {
		return "the token file cannot be written: is its directory a writable volume?"
	}
	return "unexpected error"
}

// bundleWatcher signals a refresh when the set of JWT signing keys changes
// (not on the first update, which only says what they are).
type bundleWatcher struct {
	log     logr.Logger
	rotated chan<- struct{}
	last    string
	seen    bool
}

func (w *bundleWatcher) OnJWTBundlesUpdate(set *jwtbundle.Set) {
	fp := fingerprint(set)
	if w.seen && fp != w.last {
		select {
		case w.rotated <- struct{}{}:
		default:
		}
	}
	w.seen, w.last = true, fp
}

func (w *bundleWatcher) OnJWTBundlesWatchError(err error) {
	if status.Code(err) == codes.Canceled {
		return
	}
	w.log.V(1).Info("watching JWT bundles failed, retrying", "error", err.Error())
}

// fingerprint names every trust domain and key ID in the set, sorted.
func fingerprint(set *jwtbundle.Set) string {
	var parts []string
	for _, b := range set.Bundles() {
		kids := make([]string, 0, len(b.JWTAuthorities()))
		for kid := range b.JWTAuthorities() {
			kids = append(kids, kid)
		}
		sort.Strings(kids)
		parts = append(parts, b.TrustDomain().String()+"="+strings.Join(kids, ","))
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}
