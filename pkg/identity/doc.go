// Package identity decides what AWS identity a Pod gets.
//
// It owns every annotation key the webhook reads, the validation of their
// values (role ARNs, audiences, token lifetimes) and the one precedence rule:
// a Pod annotation wins over a ServiceAccount annotation, which wins over the
// flag default. Resolve turns those inputs into a Plan; it knows nothing about
// HTTP, caches or how the Plan is written into the Pod.
package identity
