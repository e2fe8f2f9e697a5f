// Package discovery serves the OpenID Connect discovery documents AWS IAM
// reads to verify the service account tokens of a cluster: the provider
// configuration at /.well-known/openid-configuration and the JSON Web Key Set
// at /openid/v1/jwks (also at /keys.json).
//
// Keys come from exactly one source: PEM files (FileSource, ParseKeys;
// private keys are reduced to their public half the moment they are parsed,
// and nothing else in this package ever sees them), the API server's own
// discovery endpoints (APIServerSource), or a SPIFFE trust domain's JWT
// bundle from the SPIRE agent's Workload API (SPIFFESource), so that AWS can
// verify JWT-SVIDs. Each key is served with the kid its tokens carry: the
// one kube-apiserver stamps into the tokens it signs (KeyID), or SPIRE's.
// NewSource picks the one source a SourceConfig names, asking for a client
// (SourceClients) only for that source.
//
// A Publisher renders both documents once per key change and swaps them
// atomically; the Handler only ever writes those bytes. An empty key set is
// never published: the last good documents stay until a source produces a
// non-empty one, and until the first one exists the documents answer 503 and
// the readiness check fails (HealthHandler serves it, with the staleness
// check, for the commands that serve or publish the documents).
package discovery
