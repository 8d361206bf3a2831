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
	spec := firewall.Spec
	// The boot ruleset for a kernel without flowtables leaves offload out.
	spec.Render = firewall.Renderer(os.Getenv("EDGE_FIREWALL_NO_OFFLOAD") != "1")
	// A check away from the router (the NixOS module's, at build time)
	// cannot see its set files.
	spec.Check = firewall.Checker(os.Getenv("EDGE_FIREWALL_IGNORE_MISSING_FILES") == "1")
	os.Exit(daemon.Main(spec, os.Args[1:], os.Stdout, os.Stderr))
}
