// Package discovery serves the OpenID Connect discovery documents AWS IAM
// reads to verify the service account tokens of a cluster: the provider
// configuration at /.well-known/openid-configuration and the JSON Web Key Set
// at /openid/v1/jwks (also at /keys.json).
//
// Keys come from exactly one source: PEM files (ParseKeys; private keys are
// reduced to their public half the moment they are parsed, and nothing else
// in this package ever sees them) or the API server's own discovery
// endpoints (APIServerSource). Each key is served with the kid kube-apiserver
// stamps into the tokens it signs (KeyID).
//
// A Publisher renders both documents once per key change and swaps them
// atomically; the Handler only ever writes those bytes. An empty key set is
// never published: the last good documents stay until a source produces a
// non-empty one, and until the first one exists the documents answer 503 and
// the readiness check fails.
package discovery
