// Package sacache answers "what annotations does ServiceAccount NS/NAME
// carry?" fast and without guessing.
//
// It watches ServiceAccounts cluster-wide, metadata only, and keeps just the
// annotations under one prefix and each ServiceAccount's creation time, in
// the compact store of package metacache (about 35 bytes per
// ServiceAccount; a whole object per ServiceAccount is what makes such
// caches grow to gigabytes). A miss, and a freshly created ServiceAccount
// that shows none of those annotations yet, are checked with a live GET to
// the API server: bounded in time, shared between concurrent callers for
// the same key, and remembered briefly so a burst of Pods costs one
// request. When the API server cannot answer, Get returns an error rather
// than a guess. The package does not know what the annotations mean.
package sacache
