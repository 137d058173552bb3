// A CoreDNS for the end-to-end test's cluster: the stock server (coremain) with only the
// plugins a single-node cluster's DNS needs, so that it builds from a few modules
// instead of every cloud DNS provider CoreDNS ships. It answers <svc>.<ns>.svc.cluster.local
// from the API server, like the cluster DNS of any Kubernetes distribution.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
)

func init() {
	// The order in which the plugins handle a query (CoreDNS's plugin.cfg, cut down).
	dnsserver.Directives = []string{"bind", "log", "errors", "cache", "kubernetes"}
}

func main() {
	coremain.Run()
}
