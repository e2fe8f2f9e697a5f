//go:build tools

// Package spire pins the commands this build module produces.
package spire

import (
	_ "github.com/spiffe/spire/cmd/spire-agent"
	_ "github.com/spiffe/spire/cmd/spire-server"
	_ "github.com/spiffe/spire/support/oidc-discovery-provider"
)
