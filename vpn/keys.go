package vpn

import (
	"strings"

	"github.com/homeedge/edge/vpn/wireguard"
)

// parseKey reads a WireGuard key from the config.
func parseKey(s string) (wireguard.Key, error) { return wireguard.ParseKey(strings.TrimSpace(s)) }
