// Command coredns is CoreDNS with the plugins the node tier's Corefile
// uses: the Services of the cluster (kubernetes), the issuer's public name
// (hosts), bind, ready, errors and log. Nothing is forwarded: Pods resolve
// the cluster's names and the hosts file, and nothing beyond this machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives are the plugins in the order CoreDNS chains them (its
// plugin.cfg order).
var directives = []string{"bind", "ready", "errors", "log", "hosts", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
