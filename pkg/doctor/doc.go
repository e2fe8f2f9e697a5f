// Package doctor walks the chain a cluster admin would otherwise debug by
// hand when a pod does not get AWS credentials, and says which link is
// broken and how to fix it:
//
//	ServiceAccount and its role annotation
//	→ the MutatingWebhookConfiguration and the webhook's serving certificate
//	→ a token for the ServiceAccount (TokenRequest API), or for token-source
//	  spiffe a JWT-SVID from the SPIRE agent's Workload API: issuer,
//	  audience, lifetime
//	→ the public discovery document and its JWKS, fetched the way AWS STS does
//	→ the token's signature, verified with the published key
//	→ with --bucket, the documents `discovery publish` wrote to S3, read
//	  back with the AWS SDK: the issuer, byte for byte what `discovery
//	  serve` would serve, the token's kid and signature.
//
// It changes nothing in the cluster: it reads the ServiceAccount and the
// webhook configurations, and requests one token (or JWT-SVID), which
// nothing stores; a bucket it only reads. The token is never printed or
// logged.
//
// Run is the whole of it, callable from Go with any kubernetes.Interface
// (a real clientset or client-go's fake) and an io.Writer.
package doctor
