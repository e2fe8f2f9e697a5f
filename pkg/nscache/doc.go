// Package nscache answers "what does Namespace NAME say about the roles its
// ServiceAccounts may use?" from a metadata-only watch of Namespaces.
//
// It keeps only the annotations it is told to keep (the webhook keeps just
// identity.AllowedRoleARNs), in the compact store of package metacache, so
// the cache stays small however many namespaces and annotations a cluster
// has. A namespace the watch has not shown yet (created a moment ago) is
// fetched with a live GET, bounded in time, shared between concurrent
// callers and remembered briefly. When the API server cannot answer, Get
// returns an error rather than a guess: a policy that cannot be read is
// never taken to be absent.
package nscache
