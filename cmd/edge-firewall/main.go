// Command edge-firewall is the router's firewall and NAT: it programs
// table inet edge from the config's firewall section and keeps it, with
// bans and counters, across reloads.
package main

import (
	"os"

	"github.com/homeedge/edge/firewall"
	"github.com/homeedge/edge/internal/daemon"
)

func main() {
	os.Exit(daemon.Main(firewall.Spec, os.Args[1:], os.Stdout, os.Stderr))
}
