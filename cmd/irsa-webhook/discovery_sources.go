package main

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
	k8sdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/irsa-webhook/irsa-webhook/pkg/discovery"
)

// sourceClients are the clients of the discovery key sources, from this
// process's environment: API server credentials (restConfig) and the
// Workload API socket ($SPIFFE_ENDPOINT_SOCKET unless the flag names one).
func sourceClients(kubeconfig string) discovery.SourceClients {
	return discovery.SourceClients{
		APIServer: func() (rest.Interface, error) {
			restCfg, err := restConfig(kubeconfig)
			if err != nil {
				return nil, err
			}
			restCfg.UserAgent = "irsa-webhook-discovery"
			dc, err := k8sdiscovery.NewDiscoveryClientForConfig(restCfg)
			if err != nil {
				return nil, fmt.Errorf("API server client: %w", err)
			}
			return dc.RESTClient(), nil
		},
		WorkloadAPI: func(addr string) (discovery.JWTBundleClient, error) {
			return workloadAPIClient(addr)
		},
	}
}

// workloadAPIClient connects lazily to the SPIFFE Workload API at addr
// ($SPIFFE_ENDPOINT_SOCKET when empty); the client lives as long as the
// process.
func workloadAPIClient(addr string) (*workloadapi.Client, error) {
	var opts []workloadapi.ClientOption
	if addr != "" {
		opts = append(opts, workloadapi.WithAddr(addr))
	}
	client, err := workloadapi.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("workload API client (set --workload-api-addr or $SPIFFE_ENDPOINT_SOCKET): %w", err)
	}
	return client, nil
}
