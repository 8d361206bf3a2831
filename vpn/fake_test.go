package vpn

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/vpn/wireguard"
)

// fakeKernel stands in for the kernel's WireGuard devices and table inet
// edge_vpn. It records every call, fails those a test arms, and models
// what the tests look at: which links exist, each device's settings and
// peers, and a handshake that a peer keeps while it stays on its device
// and loses when it is removed (a re-added peer starts a new session).
type fakeKernel struct {
	mu    sync.Mutex
	links map[string]*fakeDevice
	calls []string
	// fail arms calls ("open wg1", "reconfigure wg0", "set peers wg0",
	// "access") to fail once each.
	fail  map[string]bool
	rules []aclRule
	// unlisted is what a link opened by that name says wg(8) cannot see
	// (Unlisted).
	unlisted map[string]string
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{links: map[string]*fakeDevice{}, fail: map[string]bool{}, unlisted: map[string]string{}}
}

// call records call and returns the armed error, if any. The caller
// holds mu.
func (k *fakeKernel) call(call string) error {
	k.calls = append(k.calls, call)
	if k.fail[call] {
		delete(k.fail, call)
		return fmt.Errorf("%s: operation not permitted (fake)", call)
	}
	return nil
}

func (k *fakeKernel) failNext(call string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail[call] = true
}

// takeCalls returns the calls since the last takeCalls.
func (k *fakeKernel) takeCalls() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.calls
	k.calls = nil
	return c
}

// portUser names the open device on port, other than except.
func (k *fakeKernel) portUser(port int, except string) string {
	for name, d := range k.links {
		if name != except && d.opts.ListenPort == port {
			return name
		}
	}
	return ""
}

func (k *fakeKernel) open(o wireguard.Options) (device, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("open " + o.Name); err != nil {
		return nil, err
	}
	if k.links[o.Name] != nil {
		return nil, fmt.Errorf("open wireguard %s: a tuntap link of that name exists", o.Name)
	}
	if other := k.portUser(o.ListenPort, ""); other != "" {
		return nil, fmt.Errorf("open wireguard %s: listen port %d: address in use (by %s)", o.Name, o.ListenPort, other)
	}
	d := &fakeDevice{k: k, opts: o, peers: map[wireguard.Key]*fakePeer{}, unlisted: k.unlisted[o.Name]}
	k.links[o.Name] = d
	return d, nil
}

// validate fails like apply would, without loading anything.
func (k *fakeKernel) validate(rules []aclRule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.call("validate access")
}

func (k *fakeKernel) apply(rules []aclRule) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("access"); err != nil {
		return "", err
	}
	k.rules = slices.Clone(rules)
	return "", nil
}

// handshake makes the peer with public key pub on link name complete a
// handshake at t, as a client connecting would.
func (k *fakeKernel) handshake(name, pub string, t time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.links[name]
	if d == nil {
		return fmt.Errorf("no link %s", name)
	}
	key, err := wireguard.ParseKey(pub)
	if err != nil {
		return err
	}
	p := d.peers[key]
	if p == nil {
		return fmt.Errorf("%s has no peer %s", name, pub)
	}
	p.handshake = t
	p.rx += 148
	return nil
}

// device returns the open link name, or nil.
func (k *fakeKernel) device(name string) *fakeDevice {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.links[name]
}

// snapshot describes every link and the access table, one fact a line.
func (k *fakeKernel) snapshot() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(k.links)) {
		d := k.links[name]
		o := d.opts
		fmt.Fprintf(&b, "link %s port %d mtu %d fwmark %d key %s addresses %v\n", name, o.ListenPort, o.MTU, o.FirewallMark, o.PrivateKey.PublicKey(), o.Addresses)
		for _, ps := range d.status() {
			hs := "never"
			if !ps.LastHandshake.IsZero() {
				hs = ps.LastHandshake.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(&b, "  peer %s allowed %v endpoint %v keepalive %v psk %v handshake %s\n", ps.PublicKey, ps.AllowedIPs, ps.Endpoint, ps.Keepalive, !ps.PresharedKey.IsZero(), hs)
		}
	}
	for _, r := range k.rules {
		fmt.Fprintf(&b, "access %s on %s from %v to %v\n", r.peer, r.iface, r.addrs, r.allow)
	}
	return b.String()
}

// fakeDevice is one link of a fakeKernel.
type fakeDevice struct {
	k      *fakeKernel
	opts   wireguard.Options
	peers  map[wireguard.Key]*fakePeer
	closed bool
	// unlisted is what Unlisted says.
	unlisted string
}

type fakePeer struct {
	wireguard.Peer
	handshake time.Time
	rx, tx    int64
}

var _ device = (*fakeDevice)(nil)

func (d *fakeDevice) Name() string     { return d.opts.Name }
func (d *fakeDevice) Kind() string     { return wireguard.KindUserspace }
func (d *fakeDevice) Fallback() string { return "" }
func (d *fakeDevice) Adopted() bool    { return false }
func (d *fakeDevice) Unlisted() string { return d.unlisted }

// Socket is where the embedded device would serve its UAPI socket.
func (d *fakeDevice) Socket() string {
	return filepath.Join(d.opts.SocketDir, d.opts.Name+".sock")
}

func (d *fakeDevice) PublicKey() wireguard.Key {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	return d.opts.PrivateKey.PublicKey()
}

func (d *fakeDevice) ListenPort() int {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	return d.opts.ListenPort
}

func (d *fakeDevice) Reconfigure(o wireguard.Options) error {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if err := d.k.call("reconfigure " + d.opts.Name); err != nil {
		return err
	}
	if d.closed {
		return errors.New("reconfigure: device closed")
	}
	if other := d.k.portUser(o.ListenPort, d.opts.Name); other != "" {
		return fmt.Errorf("reconfigure wireguard %s: listen port %d: address in use (by %s)", d.opts.Name, o.ListenPort, other)
	}
	d.opts = o
	return nil
}

// SetPeers changes only the peers that differ, as wireguard.Device does:
// a removed peer and its session are gone.
func (d *fakeDevice) SetPeers(peers []wireguard.Peer) (wireguard.Changes, error) {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if err := d.k.call("set peers " + d.opts.Name); err != nil {
		return wireguard.Changes{}, err
	}
	if d.closed {
		return wireguard.Changes{}, errors.New("set peers: device closed")
	}
	var ch wireguard.Changes
	want := map[wireguard.Key]wireguard.Peer{}
	for _, p := range peers {
		if _, dup := want[p.PublicKey]; dup {
			return wireguard.Changes{}, fmt.Errorf("set peers: public key %s twice", p.PublicKey)
		}
		want[p.PublicKey] = p
	}
	for key := range d.peers {
		if _, ok := want[key]; !ok {
			delete(d.peers, key)
			ch.Removed++
		}
	}
	for key, p := range want {
		cur := d.peers[key]
		switch {
		case cur == nil:
			d.peers[key] = &fakePeer{Peer: p}
			ch.Added++
		case !sameFakePeer(cur.Peer, p):
			cur.Peer = p
			ch.Updated++
		}
	}
	return ch, nil
}

func sameFakePeer(a, b wireguard.Peer) bool {
	return a.PresharedKey == b.PresharedKey && a.Endpoint == b.Endpoint && a.Keepalive == b.Keepalive && slices.Equal(a.AllowedIPs, b.AllowedIPs)
}

func (d *fakeDevice) Peers() ([]wireguard.PeerStatus, error) {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if d.closed {
		return nil, errors.New("peers: device closed")
	}
	return d.status(), nil
}

// status is the peers by public key. The caller holds k.mu.
func (d *fakeDevice) status() []wireguard.PeerStatus {
	var out []wireguard.PeerStatus
	for _, p := range d.peers {
		out = append(out, wireguard.PeerStatus{Peer: p.Peer, LastHandshake: p.handshake, RxBytes: p.rx, TxBytes: p.tx})
	}
	slices.SortFunc(out, func(a, b wireguard.PeerStatus) int {
		return strings.Compare(a.PublicKey.String(), b.PublicKey.String())
	})
	return out
}

func (d *fakeDevice) Present() bool {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	return !d.closed && d.k.links[d.opts.Name] == d
}

// deleteLink removes a link behind the service's back, as ip link del.
func (k *fakeKernel) deleteLink(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.links, name)
}

func (d *fakeDevice) Close() error {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if err := d.k.call("close " + d.opts.Name); err != nil {
		return err
	}
	if !d.closed && d.k.links[d.opts.Name] == d {
		delete(d.k.links, d.opts.Name)
	}
	d.closed = true
	return nil
}

// Detach removes a userspace device, as for wireguard.Device.
func (d *fakeDevice) Detach() error { return d.Close() }

// fakeDNS stands in for edge-dns taking RFC 2136 updates: it holds the
// names published and refuses updates while down.
type fakeDNS struct {
	mu      sync.Mutex
	down    bool
	names   map[string][]netip.Addr
	updates int
}

func newFakeDNS() *fakeDNS { return &fakeDNS{names: map[string][]netip.Addr{}} }

var _ namePublisher = (*fakeDNS)(nil)

func (f *fakeDNS) fqdn(peer string) string { return peer + ".vpn.home.arpa" }

func (f *fakeDNS) sync(peers []storedPeer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("update home.arpa. at 127.0.0.1:53: connection refused (fake)")
	}
	f.updates++
	for _, p := range peers {
		f.names[f.fqdn(p.Name)] = p.Addresses
	}
	return nil
}

func (f *fakeDNS) remove(peer string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("update home.arpa. at 127.0.0.1:53: connection refused (fake)")
	}
	f.updates++
	delete(f.names, f.fqdn(peer))
	return nil
}

func (f *fakeDNS) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// lookup returns a name's addresses, "" when it is not published.
func (f *fakeDNS) lookup(peer string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.names[f.fqdn(peer)]
	if !ok {
		return ""
	}
	return fmt.Sprint(a)
}

func (f *fakeDNS) snapshot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(f.names)) {
		fmt.Fprintf(&b, "name %s %v\n", name, f.names[name])
	}
	return b.String()
}

// fakeClock is a clock that moves only when a test says so; its tickers
// never tick (tests reconcile by calling Service.tick) but record the
// intervals asked for.
type fakeClock struct {
	mu        sync.Mutex
	t         time.Time
	intervals []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) ticker(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.intervals = append(c.intervals, d)
	return nil, func() {}
}

func (c *fakeClock) tickers() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.intervals)
}

// fakeHost is a host made of fakes.
func fakeHost(k *fakeKernel, dns *fakeDNS, clock *fakeClock) host {
	return host{
		devices: k,
		access:  k,
		names: func(cfg *config.File[Config]) (namePublisher, error) {
			if cfg.Section.Names.Server == "" {
				return nil, nil
			}
			return dns, nil
		},
		now:    clock.now,
		ticker: clock.ticker,
	}
}
