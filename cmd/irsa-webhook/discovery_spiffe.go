package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
)

// newSPIFFESource reads a trust domain's JWT bundle from the Workload API.
// The client connects lazily and lives as long as the process.
func newSPIFFESource(src discovery.SourceConfig, interval time.Duration, pub *discovery.Publisher) (discovery.Source, error) {
	var opts []workloadapi.ClientOption
	if src.WorkloadAPIAddr != "" {
		opts = append(opts, workloadapi.WithAddr(src.WorkloadAPIAddr))
	}
	client, err := workloadapi.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("workload API client (set --workload-api-addr or $SPIFFE_ENDPOINT_SOCKET): %w", err)
	}
	s := &discovery.SPIFFESource{Client: client, Interval: interval, Publisher: pub}
	if src.SPIFFETrustDomain != "" {
		if s.TrustDomain, err = spiffeid.TrustDomainFromString(src.SPIFFETrustDomain); err != nil {
			return nil, fmt.Errorf("--spiffe-trust-domain: %w", err)
		}
	}
	return s, nil
}
