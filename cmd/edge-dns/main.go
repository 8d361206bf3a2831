// Command edge-dns is the router's DNS: authoritative with GeoIP answers
// and split-horizon views, and a caching resolver for inside clients.
package main

import (
	"os"

	"github.com/homeedge/edge/dns"
	"github.com/homeedge/edge/internal/daemon"
)

func main() {
	os.Exit(daemon.Main(daemon.Spec[dns.Config]{
		Name:     "dns",
		Defaults: dns.DefaultConfig,
		New:      dns.New,
	}, os.Args[1:], os.Stdout, os.Stderr))
}
