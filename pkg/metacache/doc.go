// Package metacache keeps a few chosen annotations of every object of one
// resource, watched metadata-only, with a live GET for what the watch has
// not shown yet. It is the shared engine of sacache (ServiceAccounts) and
// nscache (Namespaces).
//
// Its Store keeps per object only its name, its creation time and a
// pointer to its set of kept annotations; equal sets are stored once, and
// the names of a namespace are packed into one sorted string (see table).
// A reflector feeds the store directly (no informer queue, no event
// handlers), and compacts each object as the initial list streams in, so
// neither the decoded objects nor the whole initial list stay in memory.
// That is about 35 bytes per object for a name like "sa-000123", against
// about 600 for an informer holding a trimmed ObjectMeta, and 1.5 KB of
// heap per ServiceAccount measured in the webhook right after its sync.
//
// A miss, and a freshly created object that shows no kept annotation yet
// (when Options.YoungFor is set), is checked with a live GET: bounded in
// time, shared between concurrent callers for the same key, bounded in
// number, and remembered briefly so a burst costs one request. When the
// API server cannot answer, Get returns an error rather than a guess. The
// package does not know what the annotations mean.
package metacache
