package vpn

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/homeedge/edge/identity"
	"github.com/homeedge/edge/vpn/wireguard"
)

// storedPeer is a peer as the registry keeps it in the state store, under
// its name. The client's private key is never kept: when edge-vpn made
// the key pair, the private key was shown once, in the config that
// `peer add` printed.
type storedPeer struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	PublicKey string `json:"public_key"`
	// PresharedKey is the peer's preshared key, if any.
	PresharedKey string `json:"preshared_key,omitempty"`
	// Addresses are the peer's tunnel addresses from the pool.
	Addresses []netip.Addr `json:"addresses"`
	// Routes are networks behind the peer (site peers).
	Routes     []netip.Prefix `json:"routes,omitempty"`
	FullTunnel bool           `json:"full_tunnel,omitempty"`
	Group      string         `json:"group,omitempty"`
	// Access limits where the peer may go (before its group's limits):
	// each entry as its text, such as "192.168.1.10/32 tcp/80,443" (a bare
	// prefix, as peers stored before entries had services hold, reads as
	// the same entry).
	Access []accessEntry `json:"access,omitempty"`
	// Keepalive, 0 for the interface's client default.
	Keepalive time.Duration `json:"keepalive,omitempty"`
	Enabled   bool          `json:"enabled"`
	// Disabled says why the peer is off: "by uid 0", "expired".
	Disabled string    `json:"disabled,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
	Created  time.Time `json:"created"`
	By       string    `json:"by,omitempty"`
	// LastSeen is the last handshake seen (written at most once a minute).
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Static peers come from the config; the registry keeps their
	// addresses so that they never change.
	Static bool `json:"static,omitempty"`
	// Endpoint, for a peer the router dials.
	Endpoint netip.AddrPort `json:"endpoint,omitzero"`
}

// active says whether the peer belongs on the device now.
func (p *storedPeer) active(now time.Time) bool {
	return p.Enabled && (p.Expires.IsZero() || p.Expires.After(now))
}

// devicePeer is how the device holds p.
func (p *storedPeer) devicePeer(defaultKeepalive time.Duration) (wireguard.Peer, error) {
	pub, err := wireguard.ParseKey(p.PublicKey)
	if err != nil {
		return wireguard.Peer{}, fmt.Errorf("peer %s: public key: %w", p.Name, err)
	}
	dp := wireguard.Peer{PublicKey: pub, Endpoint: p.Endpoint, Keepalive: p.Keepalive}
	if p.PresharedKey != "" {
		if dp.PresharedKey, err = wireguard.ParseKey(p.PresharedKey); err != nil {
			return wireguard.Peer{}, fmt.Errorf("peer %s: preshared key: %w", p.Name, err)
		}
	}
	if dp.Keepalive == 0 && p.Endpoint.IsValid() {
		dp.Keepalive = defaultKeepalive
	}
	for _, a := range p.Addresses {
		dp.AllowedIPs = append(dp.AllowedIPs, netip.PrefixFrom(a, a.BitLen()))
	}
	dp.AllowedIPs = append(dp.AllowedIPs, p.Routes...)
	return dp, nil
}

// allocate returns the lowest free address of each pool prefix: not the
// network address, not the IPv4 broadcast, not the router's, not held by
// any peer of used. An exhausted pool is an error naming it.
func allocate(pool []netip.Prefix, router []netip.Addr, used map[netip.Addr]string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, p := range pool {
		a, err := firstFree(p, router, used)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func firstFree(p netip.Prefix, router []netip.Addr, used map[netip.Addr]string) (netip.Addr, error) {
	p = p.Masked()
	var reserved, taken []netip.Addr
	for _, a := range router {
		if p.Contains(a) {
			reserved = append(reserved, a)
		}
	}
	for a := range used {
		if p.Contains(a) && !slices.Contains(reserved, a) {
			taken = append(taken, a)
		}
	}
	al, err := identity.NewAllocator(p, reserved, taken)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address pool %s: %w", p, err)
	}
	a, err := al.Next()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address pool %s is full: %d peers hold its addresses; remove peers or give the interface a larger pool", p, len(taken))
	}
	return a, nil
}

// routerAddrs is the router's addresses on an interface: configured, or
// the first address of each pool prefix.
func routerAddrs(pool []netip.Prefix, configured []netip.Addr) []netip.Addr {
	if len(configured) > 0 {
		return configured
	}
	var out []netip.Addr
	for _, p := range pool {
		out = append(out, p.Masked().Addr().Next())
	}
	return out
}
