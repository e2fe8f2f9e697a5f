// Package issuer owns the one rule for an OIDC issuer URL: what AWS IAM
// accepts as an OIDC provider URL, kube-apiserver serves discovery for, and
// a token's iss claim can match exactly. The discovery companion, the
// trust-policy command and doctor all check --issuer with Validate, and the
// IAM side names the provider by HostPath.
//
// It imports nothing of this module, so that the pure IAM code can use it
// without pulling in the discovery server's dependencies.
package issuer
