// Package identity decides what AWS identity a Pod gets.
//
// It owns every annotation key the webhook reads, the validation of their
// values (role ARNs, audiences, token lifetimes, SPIFFE IDs, profiles), the rules for
// the names those are made of, which the admin commands share (AWS
// partitions and account IDs, SPIFFE ID patterns, Namespace and
// ServiceAccount names), the namespace role policy and the one precedence
// rule: a Pod annotation wins over a ServiceAccount
// annotation, which wins over the flag default. Decide is the one decision:
// from the defaults, the Pod's labels and annotations and lookups of the
// ServiceAccount and the namespace policy (asked only when a rule needs
// them), it returns the Plan, nothing with a reason, or a refusal. It knows
// nothing about HTTP, caches or how the Plan is written into the Pod.
package identity
