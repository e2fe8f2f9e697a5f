// Package metacache keeps a few chosen annotations of every object of one
// resource, watched metadata-only, with a live GET for what the watch has
// not shown yet. NewServiceAccounts makes the webhook's ServiceAccount
// cache (the annotations under its prefix), NewNamespaces its Namespace
// cache (the role policy annotation); the package does not know what the
// annotations mean.
//
// Its Store keeps per object only its name, its creation time and a
// pointer to its set of kept annotations; equal sets are stored once, and
// the names of a namespace are packed into one sorted string (see table).
// A reflector feeds the store directly (no informer queue, no event
// handlers). Its full lists are paged, and each page is compacted into the
// store's packed form before the next is asked for (list.go), so neither
// the decoded objects nor the whole list stay in memory.
// That is about 35 bytes per object for a name like "sa-000123", against
// about 600 for an informer holding a trimmed ObjectMeta, and 1.5 KB of
// heap per ServiceAccount measured in the webhook right after its sync.
//
// # Live lookups
//
// A miss, and a freshly created object that shows no kept annotation yet
// (when Options.YoungFor is set), is checked with a live GET. When the API
// server cannot answer, Get returns an error rather than a guess.
//
// Anyone who can reach the webhook can make it look up names of their
// choosing, so live lookups are bounded and cannot be amplified:
//
//   - Concurrent callers for one key share one GET (singleflight).
//   - At most MaxConcurrentLookups GETs are in flight, and they are sent at
//     most LookupRate a second (a token bucket of LookupBurst): names that
//     do not exist cost the API server a bounded rate, whatever the flood.
//     Misses and young checks have a pool (slots and bucket) each: only
//     objects that exist, and were created moments ago, are young, so a
//     flood of made-up names cannot starve their checks.
//   - A lookup waits for a slot and a token until LookupTimeout, rather
//     than failing at once (a token that would come later than that is
//     given back at once, with the slot, so a flood does not queue tokens
//     it cannot use), and while it waits the watch can answer it:
//     when the store gets the object (or the annotations of a young one),
//     the lookup returns that without a GET. A real object created while a
//     flood of made-up names holds every slot and token is therefore still
//     answered, as soon as the watch delivers it, which is usually within
//     milliseconds and long before the API server calls the webhook for a
//     Pod that uses it. Waiters for a key share one channel, dropped when
//     the last of them stops, so made-up names leave nothing behind.
//   - An answer is remembered briefly: found for FreshFor, not found for
//     NotFoundFor, at most MaxRemembered of each, the oldest forgotten
//     first, so a burst for one name costs one GET and random names cannot
//     grow memory.
//
// A remembered "not found" never hides an object the watch shows: the
// store is asked first. It is safe because the API server's ServiceAccount
// admission refuses a Pod whose ServiceAccount does not exist before any
// webhook runs, so a real Pod's lookup only meets one when the object was
// looked up (by a direct request) moments before it was created. To cover
// the moment before the watch delivers such an object, a remembered "not
// found" is the answer only after waiting up to a second (or the caller's
// deadline) for the watch to show the object; the wait costs the caller
// time, not a slot or a GET.
package metacache
