package wireguard

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/homeedge/edge/internal/prefixes"
)

// defaultMTU is the MTU used when Options.MTU is 0; it is also the default
// of wg-quick and wireguard-go.
const defaultMTU = 1420

// Kinds of device, as Device.Kind reports them.
const (
	KindKernel    = "kernel"
	KindUserspace = "userspace"
)

// Options describe a WireGuard interface.
type Options struct {
	// Name is the interface name, 1 to 15 characters without '/', ':' or
	// whitespace.
	Name string
	// ListenPort is the UDP port. 0 picks a random port for a new
	// interface and keeps the current port of an existing one.
	ListenPort int
	// PrivateKey is the interface's private key; it must be set.
	PrivateKey Key
	// Addresses are the router's addresses on the interface, such as
	// 10.100.0.1/24 and fd00:100::1/64; the prefix gives the connected
	// route.
	Addresses []netip.Prefix
	// MTU is the interface MTU; 0 means 1420.
	MTU int
	// FirewallMark marks the interface's outgoing UDP packets; 0 means
	// none.
	FirewallMark uint32
	// Userspace forces the embedded wireguard-go device even where the
	// kernel has WireGuard.
	Userspace bool
	// SocketDir is where an embedded device serves its UAPI socket,
	// <SocketDir>/<Name>.sock: an absolute path, made 0700 if missing,
	// which must belong to this process's user and be closed to others'
	// writes. The device also links /var/run/wireguard/<Name>.sock to it,
	// where wg(8) looks, while no other device holds that name (see
	// Device.Unlisted). Empty means /var/run/wireguard itself, which all
	// network namespaces share: a name in use in one is then taken in
	// every other.
	SocketDir string
	// Log receives the embedded device's own messages, at debug level,
	// with no attributes added (the caller may add the interface name).
	// Nil discards them.
	Log *slog.Logger
}

// Peer is the configuration of one WireGuard peer.
type Peer struct {
	// PublicKey identifies the peer; it must be set.
	PublicKey Key
	// PresharedKey is an optional symmetric key; zero means none.
	PresharedKey Key
	// AllowedIPs are the source addresses accepted from the peer and the
	// destinations routed to it. SetPeers masks them (10.0.0.5/24 becomes
	// 10.0.0.0/24).
	AllowedIPs []netip.Prefix
	// Endpoint is the peer's address; zero means none, for peers that
	// connect first (the device then learns their address).
	Endpoint netip.AddrPort
	// Keepalive is the persistent keepalive interval, in whole seconds;
	// 0 turns it off.
	Keepalive time.Duration
}

// PeerStatus is a peer as the device holds it, with its counters.
type PeerStatus struct {
	// Peer is the peer's configuration as the device holds it; Endpoint
	// is the address the device currently uses, which may have been
	// learned from the peer's packets.
	Peer
	// LastHandshake is the time of the last completed handshake; zero
	// means never.
	LastHandshake time.Time
	// RxBytes and TxBytes count the bytes received from and sent to the
	// peer.
	RxBytes, TxBytes int64
}

// Changes counts what SetPeers changed.
type Changes struct {
	// Added counts new peers, Updated peers whose settings changed, and
	// Removed peers that were dropped.
	Added, Updated, Removed int
}

// validateName checks an interface name as the kernel does.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("interface name is empty")
	case len(name) > 15:
		return fmt.Errorf("interface name %q is longer than 15 characters", name)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is not allowed", name)
	}
	for _, c := range []byte(name) {
		if c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return fmt.Errorf("interface name %q contains %q", name, c)
		}
	}
	return nil
}

// normalize validates o and returns a copy with defaults filled in and
// addresses deduplicated and sorted.
func (o Options) normalize() (Options, error) {
	if err := validateName(o.Name); err != nil {
		return Options{}, err
	}
	if o.ListenPort < 0 || o.ListenPort > 65535 {
		return Options{}, fmt.Errorf("%s: listen port %d out of range", o.Name, o.ListenPort)
	}
	if o.SocketDir != "" && !filepath.IsAbs(o.SocketDir) {
		return Options{}, fmt.Errorf("%s: socket directory %q is not an absolute path", o.Name, o.SocketDir)
	}
	if o.PrivateKey.IsZero() {
		return Options{}, fmt.Errorf("%s: private key is not set", o.Name)
	}
	if o.MTU == 0 {
		o.MTU = defaultMTU
	}
	if o.MTU < 576 || o.MTU > 65535 {
		return Options{}, fmt.Errorf("%s: MTU %d out of range 576-65535", o.Name, o.MTU)
	}
	addrs := make([]netip.Prefix, 0, len(o.Addresses))
	for _, p := range o.Addresses {
		a := p.Addr()
		switch {
		case !p.IsValid():
			return Options{}, fmt.Errorf("%s: invalid address %s", o.Name, p)
		case a.Zone() != "":
			return Options{}, fmt.Errorf("%s: address %s has a zone", o.Name, p)
		case a.Is4In6():
			return Options{}, fmt.Errorf("%s: address %s is IPv4-mapped; use the IPv4 form", o.Name, p)
		case a.IsUnspecified() || a.IsMulticast():
			return Options{}, fmt.Errorf("%s: address %s is not a unicast address", o.Name, p)
		case a.Is6() && o.MTU < 1280:
			return Options{}, fmt.Errorf("%s: MTU %d is below 1280, which IPv6 address %s needs", o.Name, o.MTU, p)
		}
		addrs = append(addrs, p)
	}
	slices.SortFunc(addrs, prefixes.Compare)
	o.Addresses = slices.Compact(addrs)
	return o, nil
}

// normalizePeers validates peers and returns copies with masked, sorted,
// deduplicated allowed IPs. Duplicate public keys and allowed IPs claimed
// by two peers are errors naming both peers.
func normalizePeers(peers []Peer) ([]Peer, error) {
	out := make([]Peer, 0, len(peers))
	byKey := make(map[Key]int, len(peers))
	owner := make(map[netip.Prefix]Key)
	for i, p := range peers {
		if p.PublicKey.IsZero() {
			return nil, fmt.Errorf("peer %d: public key is not set", i)
		}
		if j, ok := byKey[p.PublicKey]; ok {
			return nil, fmt.Errorf("peers %d and %d have the same public key %s", j, i, p.PublicKey)
		}
		byKey[p.PublicKey] = i
		if p.Keepalive < 0 || p.Keepalive > 65535*time.Second {
			return nil, fmt.Errorf("peer %s: keepalive %v out of range 0-65535s", p.PublicKey, p.Keepalive)
		}
		if p.Keepalive%time.Second != 0 {
			return nil, fmt.Errorf("peer %s: keepalive %v is not a whole number of seconds", p.PublicKey, p.Keepalive)
		}
		if p.Endpoint.IsValid() {
			a := p.Endpoint.Addr()
			if a.IsUnspecified() || a.IsMulticast() || p.Endpoint.Port() == 0 {
				return nil, fmt.Errorf("peer %s: invalid endpoint %s", p.PublicKey, p.Endpoint)
			}
			p.Endpoint = netip.AddrPortFrom(a.Unmap(), p.Endpoint.Port())
		} else {
			p.Endpoint = netip.AddrPort{}
		}
		ips := make([]netip.Prefix, 0, len(p.AllowedIPs))
		for _, pfx := range p.AllowedIPs {
			switch {
			case !pfx.IsValid():
				return nil, fmt.Errorf("peer %s: invalid allowed IP %s", p.PublicKey, pfx)
			case pfx.Addr().Zone() != "":
				return nil, fmt.Errorf("peer %s: allowed IP %s has a zone", p.PublicKey, pfx)
			case pfx.Addr().Is4In6():
				return nil, fmt.Errorf("peer %s: allowed IP %s is IPv4-mapped; use the IPv4 form", p.PublicKey, pfx)
			}
			ips = append(ips, pfx.Masked())
		}
		slices.SortFunc(ips, prefixes.Compare)
		p.AllowedIPs = slices.Compact(ips)
		for _, pfx := range p.AllowedIPs {
			if other, ok := owner[pfx]; ok {
				return nil, fmt.Errorf("allowed IP %s is claimed by peers %s and %s", pfx, other, p.PublicKey)
			}
			owner[pfx] = p.PublicKey
		}
		out = append(out, p)
	}
	return out, nil
}

// diffPeers returns the peer configurations that turn the device's peers
// cur into want (already normalized), touching only peers that differ.
// Removals come first.
func diffPeers(cur []wgtypes.Peer, want []Peer) ([]wgtypes.PeerConfig, Changes) {
	var ch Changes
	var cfgs []wgtypes.PeerConfig
	wanted := make(map[Key]bool, len(want))
	for _, p := range want {
		wanted[p.PublicKey] = true
	}
	have := make(map[Key]Peer, len(cur))
	for _, c := range cur {
		k := Key(c.PublicKey)
		if !wanted[k] {
			cfgs = append(cfgs, wgtypes.PeerConfig{PublicKey: c.PublicKey, Remove: true})
			ch.Removed++
			continue
		}
		have[k] = peerFromWG(c)
	}
	for _, p := range want {
		c, ok := have[p.PublicKey]
		switch {
		case !ok:
			ch.Added++
		case !samePeer(c, p):
			ch.Updated++
		default:
			continue
		}
		cfgs = append(cfgs, peerConfig(p))
	}
	return cfgs, ch
}

// samePeer reports whether the device's peer cur already has the settings
// of want. A zero Endpoint in want matches any endpoint, since the device
// learns the address of peers that connect first.
func samePeer(cur, want Peer) bool {
	if cur.PresharedKey != want.PresharedKey || cur.Keepalive != want.Keepalive {
		return false
	}
	if want.Endpoint.IsValid() && cur.Endpoint != want.Endpoint {
		return false
	}
	return slices.Equal(cur.AllowedIPs, want.AllowedIPs)
}

// peerConfig returns the full configuration of p, which both adds a
// missing peer and updates an existing one.
func peerConfig(p Peer) wgtypes.PeerConfig {
	psk := wgtypes.Key(p.PresharedKey)
	keepalive := p.Keepalive
	cfg := wgtypes.PeerConfig{
		PublicKey:                   wgtypes.Key(p.PublicKey),
		PresharedKey:                &psk,
		PersistentKeepaliveInterval: &keepalive,
		ReplaceAllowedIPs:           true,
		AllowedIPs:                  make([]net.IPNet, 0, len(p.AllowedIPs)),
	}
	if p.Endpoint.IsValid() {
		cfg.Endpoint = net.UDPAddrFromAddrPort(p.Endpoint)
	}
	for _, pfx := range p.AllowedIPs {
		cfg.AllowedIPs = append(cfg.AllowedIPs, ipNet(pfx))
	}
	return cfg
}

// peerFromWG converts a peer read through wgctrl, with its allowed IPs
// masked and sorted as normalizePeers leaves them.
func peerFromWG(c wgtypes.Peer) Peer {
	p := Peer{
		PublicKey:    Key(c.PublicKey),
		PresharedKey: Key(c.PresharedKey),
		Keepalive:    c.PersistentKeepaliveInterval,
		AllowedIPs:   make([]netip.Prefix, 0, len(c.AllowedIPs)),
	}
	if c.Endpoint != nil {
		ap := c.Endpoint.AddrPort()
		p.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	for _, n := range c.AllowedIPs {
		if pfx, ok := prefixFromIPNet(n); ok {
			p.AllowedIPs = append(p.AllowedIPs, pfx.Masked())
		}
	}
	slices.SortFunc(p.AllowedIPs, prefixes.Compare)
	return p
}

// statusFromWG converts a peer read through wgctrl into a PeerStatus.
func statusFromWG(c wgtypes.Peer) PeerStatus {
	s := PeerStatus{
		Peer:    peerFromWG(c),
		RxBytes: c.ReceiveBytes,
		TxBytes: c.TransmitBytes,
	}
	if !c.LastHandshakeTime.IsZero() && c.LastHandshakeTime.Unix() > 0 {
		s.LastHandshake = c.LastHandshakeTime
	}
	return s
}

// sortStatus orders peers by public key.
func sortStatus(ps []PeerStatus) {
	slices.SortFunc(ps, func(a, b PeerStatus) int {
		return bytes.Compare(a.PublicKey[:], b.PublicKey[:])
	})
}

// ipNet converts a prefix to the net.IPNet form wgctrl and netlink use.
func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

// prefixFromIPNet converts n to a prefix, turning IPv4-mapped IPv6
// addresses into IPv4 ones.
func prefixFromIPNet(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	if a.Is4In6() {
		a = a.Unmap()
		if bits == 128 {
			ones -= 96
		}
	}
	p := netip.PrefixFrom(a, ones)
	return p, p.IsValid()
}
