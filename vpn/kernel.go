package vpn

import (
	"log/slog"
	"time"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/vpn/wireguard"
)

// This file declares what the service needs of the world outside its own
// memory and store: the WireGuard devices, the access table, the DNS
// server that takes peer names, and the clock. New takes the real ones
// (systemHost); the unit tests hand in fakes that record what was asked
// of them, fail on demand and run on a fake clock.

// device is one open WireGuard interface (a *wireguard.Device).
type device interface {
	Name() string
	// Present says whether the interface still exists in the kernel.
	Present() bool
	// Kind is "kernel" or "userspace"; Fallback says why a device is
	// userspace although the config did not ask for it.
	Kind() string
	Fallback() string
	// Adopted says Open found a kernel link an earlier run left serving.
	Adopted() bool
	// Socket is an embedded device's UAPI socket ("" for a kernel one);
	// Unlisted says why wg(8) cannot find the device by its name.
	Socket() string
	Unlisted() string
	PublicKey() wireguard.Key
	ListenPort() int
	// Reconfigure applies changed settings, keeping the peers.
	Reconfigure(wireguard.Options) error
	// SetPeers makes the peers exactly these, changing only those that
	// differ: an unchanged peer keeps its session and handshake.
	SetPeers([]wireguard.Peer) (wireguard.Changes, error)
	// Peers reads the peers back, with their handshakes and counters.
	Peers() ([]wireguard.PeerStatus, error)
	// Close removes the interface; Detach lets go of it and leaves a
	// kernel link in place.
	Close() error
	Detach() error
}

// devices opens WireGuard interfaces: creates them, or adopts a kernel
// link of that name.
type devices interface {
	open(wireguard.Options) (device, error)
}

// accessTable holds the access limits in the kernel (table inet
// edge_vpn). Apply replaces them all; it does nothing when they did not
// change since the last successful apply.
type accessTable interface {
	// validate has the kernel check the table for rules without loading
	// it: the reload's prepare.
	validate(rules []aclRule) error
	// apply loads rules; with them unchanged it puts back a table someone
	// else deleted or changed, and says why in restored.
	apply(rules []aclRule) (restored string, err error)
}

// namePublisher keeps peer names in DNS (RFC 2136 updates to edge-dns).
type namePublisher interface {
	// fqdn is a peer's DNS name, without the final dot.
	fqdn(peer string) string
	// sync publishes every peer's addresses under its name.
	sync(peers []storedPeer) error
	// remove deletes a peer's name.
	remove(peer string) error
}

// host is everything the service uses outside itself.
type host struct {
	devices devices
	access  accessTable
	// names builds the publisher of a config's vpn.names, nil when names
	// are not published; it reads the TSIG secret, so it can fail.
	names func(*config.File[Config]) (namePublisher, error)
	// now is the clock; expiry and handshake ages are read on it.
	now func() time.Time
	// ticker returns a channel that ticks every d, for the periodic
	// reconcile, and the function that stops it.
	ticker func(d time.Duration) (<-chan time.Time, func())
}

// systemHost is the real host: wireguard devices, nftables, RFC 2136
// updates and the system clock.
func systemHost(log *slog.Logger) host {
	return host{
		devices: wireguardDevices{},
		access:  nftAccess{table: newACLTable(log)},
		names:   openNameUpdater,
		now:     time.Now,
		ticker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		},
	}
}

// wireguardDevices opens devices with package wireguard.
type wireguardDevices struct{}

func (wireguardDevices) open(o wireguard.Options) (device, error) {
	d, err := wireguard.Open(o)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// nftAccess is the access table of acl.go behind accessTable, so that the
// service does not depend on how that file talks to nftables.
type nftAccess struct{ table *aclTable }

func (a nftAccess) apply(rules []aclRule) (string, error) { return a.table.apply(rules) }

func (a nftAccess) validate(rules []aclRule) error {
	_, err := a.table.prepare(rules)
	return err
}

// openNameUpdater builds the RFC 2136 publisher (a nil interface, not a
// nil pointer in one, when names are off).
func openNameUpdater(cfg *config.File[Config]) (namePublisher, error) {
	u, err := newNameUpdater(cfg)
	if u == nil || err != nil {
		return nil, err
	}
	return u, nil
}

var (
	_ device        = (*wireguard.Device)(nil)
	_ devices       = wireguardDevices{}
	_ accessTable   = nftAccess{}
	_ namePublisher = (*nameUpdater)(nil)
)
