// Package svidhelper keeps a JWT-SVID from the SPIFFE Workload API in a file,
// for the AWS SDKs' web identity provider to read: the native sidecar that
// the webhook adds to Pods whose ServiceAccount says
// <prefix>/token-source: spiffe runs it as `irsa-webhook svid-helper`.
//
// The token is written atomically (a temporary file in the same directory,
// then a rename), so a reader never sees half a token. It is refreshed at
// half its lifetime, a little earlier by a random jitter so that many Pods do
// not call the agent at once, and at once when the trust domain's JWT signing
// keys change. While the Workload API is unreachable or has no identity for
// the workload, the helper retries with capped exponential backoff and logs
// the reason each time.
package svidhelper
