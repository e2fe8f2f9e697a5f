// Package mutate writes an identity Plan into a Pod.
//
// Apply is pure and idempotent: it returns a changed copy of the Pod and
// never removes or rewrites anything the Pod already has. It only adds: it
// appends volumes, mounts and env, and inserts the SPIFFE token helper as
// the first init container, so the resulting JSON patch is a handful of
// "add" operations, and running it on its own output changes nothing.
package mutate
