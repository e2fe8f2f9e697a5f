package discovery

import (
	"maps"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// HealthHandler serves, like a controller-runtime manager's health probe
// endpoint, /healthz (the process runs) and /readyz: "keys" fails until
// pub has a key set, "keys-fresh" when its last successful refresh is older
// than the staleness bound, and each of extra by its name. Every check is
// also its own path (/readyz/keys): a readiness probe that should keep a
// stale replica in service probes that one.
func HealthHandler(pub *Publisher, extra map[string]healthz.Checker) http.Handler {
	mux := http.NewServeMux()
	live := &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}
	checks := map[string]healthz.Checker{"keys": pub.ReadyCheck, "keys-fresh": pub.FreshCheck}
	maps.Copy(checks, extra)
	ready := &healthz.Handler{Checks: checks}
	mux.Handle("/healthz", http.StripPrefix("/healthz", live))
	mux.Handle("/healthz/", http.StripPrefix("/healthz", live))
	mux.Handle("/readyz", http.StripPrefix("/readyz", ready))
	mux.Handle("/readyz/", http.StripPrefix("/readyz", ready))
	return mux
}
