// Package bench measures the admission path on real parts: a load generator
// (vegeta) sending AdmissionReviews over TLS to `irsa-webhook serve` and to
// a floor webhook that does the least any webhook must, the ServiceAccount
// cache at scale in a real kube-apiserver, and Pod creation through the API
// server with and without the webhook. cmd/bench runs it all and writes
// docs/benchmarks.md (`make bench`).
//
// Every loop here is bounded in time and count and talks to 127.0.0.1 only.
package bench
