package metacache

import (
	"fmt"

	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// NewClient is the metadata client for the caches of one process, from
// cfg (copied, not changed). It has no client-side rate limit: live
// lookups are bounded by each cache (shared per key, in flight, and by
// Options.LookupRate, where a waiting lookup can still be answered by the
// watch) and by the API server's priority and fairness; client-go's
// default token bucket (5 per second) would instead queue a burst of Pods
// for new ServiceAccounts past the lookup timeout and deny them.
func NewClient(cfg *rest.Config) (metadata.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	return client, nil
}
