// Command edge-vpn is the router's VPN ingress: WireGuard interfaces with a
// peer registry, an address pool, client configs and peer names in DNS.
package main

import (
	"os"

	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/vpn"
)

func main() {
	os.Exit(daemon.Main(vpn.Spec, os.Args[1:], os.Stdout, os.Stderr))
}
