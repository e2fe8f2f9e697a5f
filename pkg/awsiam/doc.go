// Package awsiam builds what the AWS IAM side of IRSA needs from a cluster:
// the role trust policy that lets one ServiceAccount (or one namespace, or
// one SPIFFE ID or the IDs below a path) assume a role through
// AssumeRoleWithWebIdentity, the ARN of the OIDC
// identity provider it names, and the certificate thumbprint IAM asks for
// when that provider is created.
//
// It never calls AWS: every function here is either pure or, for the
// thumbprint, opens a TLS connection to the issuer's host the way IAM does.
//
// The issuer URL and the names a policy is built from are checked by the
// packages that own them (issuer, identity). The one security rule it
// enforces everywhere: a trust policy always carries a condition on the
// token's "sub" claim. A policy that checks only "aud"
// would let every ServiceAccount in the cluster (every token the issuer
// signs for that audience) assume the role.
package awsiam
