package wireguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// wgClient reads and configures a WireGuard device: wgctrl for a kernel
// link, the embedded device itself for wireguard-go (see uapi.go).
type wgClient interface {
	Device(name string) (*wgtypes.Device, error)
	ConfigureDevice(name string, cfg wgtypes.Config) error
	Close() error
}

var _ wgClient = (*wgctrl.Client)(nil)

// Device is an open WireGuard interface. Its methods are safe for
// concurrent use.
type Device struct {
	mu        sync.Mutex
	name      string
	kind      string
	fallback  string
	userspace bool // Options.Userspace as given to Open
	adopted   bool // Open found the kernel link instead of creating it
	client    wgClient
	emb       *embedded // nil for a kernel device
	pub       Key
	port      int
	closed    bool
}

// Open creates the interface opts.Name, or adopts an existing kernel
// WireGuard link of that name (as after a restart of the daemon). It sets
// the private key, listen port, firewall mark, MTU and addresses (adding
// missing addresses and removing others), and brings the link up. Peers of
// an adopted link are kept.
//
// Where creating a kernel link fails because the kernel lacks WireGuard,
// Open falls back to an embedded wireguard-go device, and Fallback says
// why. With opts.Userspace set it does not try the kernel. An existing
// link of that name that Open cannot adopt is an error naming it.
func Open(opts Options) (*Device, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("open wireguard: %w", err)
	}
	name := opts.Name
	d := &Device{name: name, userspace: opts.Userspace}

	link, err := linkByName(name)
	if err != nil {
		return nil, fmt.Errorf("open wireguard %s: %w", name, err)
	}
	created := false
	switch {
	case link != nil && link.Type() == "wireguard" && !opts.Userspace:
		d.kind = KindKernel
		d.adopted = true
	case link != nil && link.Type() == "wireguard":
		return nil, fmt.Errorf("open wireguard %s: a kernel WireGuard link of that name exists and Userspace is set; remove it first", name)
	case link != nil:
		return nil, fmt.Errorf("open wireguard %s: a %s link of that name exists, not a WireGuard link", name, link.Type())
	case opts.Userspace:
		d.kind = KindUserspace
	default:
		err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: opts.MTU}})
		switch {
		case err == nil:
			d.kind = KindKernel
			created = true
		case kernelLacksWireGuard(err):
			d.kind = KindUserspace
			d.fallback = fmt.Sprintf("kernel has no WireGuard (creating link %s: %v); using embedded wireguard-go", name, err)
		default:
			return nil, fmt.Errorf("open wireguard %s: create link: %w", name, err)
		}
	}

	fail := func(err error) (*Device, error) {
		d.shutdown(created)
		return nil, fmt.Errorf("open wireguard %s: %w", name, err)
	}
	if d.kind == KindUserspace {
		d.emb, err = startEmbedded(name, opts.MTU, opts.SocketDir, opts.Log)
		if err != nil {
			return fail(err)
		}
		d.client = d.emb
	} else if d.client, err = wgctrl.New(); err != nil {
		return fail(fmt.Errorf("wgctrl: %w", err))
	}
	if err := d.apply(opts); err != nil {
		return fail(err)
	}
	return d, nil
}

// kernelLacksWireGuard reports whether err, from creating a link of type
// wireguard, means that the kernel has no WireGuard support.
func kernelLacksWireGuard(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EAFNOSUPPORT) ||
		errors.Is(err, unix.EPROTONOSUPPORT) ||
		errors.Is(err, unix.ENODEV)
}

// linkByName returns the link called name in the current namespace, or nil
// when there is none.
func linkByName(name string) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, nil
		}
		return nil, err
	}
	return link, nil
}

// apply sets the device's key, port, firewall mark, MTU and addresses to
// those of opts, brings the link up and records the resulting public key
// and port. It sends wgctrl only the settings that differ.
func (d *Device) apply(opts Options) error {
	cur, err := d.client.Device(d.name)
	if err != nil {
		return fmt.Errorf("read device: %w", err)
	}
	var cfg wgtypes.Config
	var what []string // for errors
	if Key(cur.PrivateKey) != opts.PrivateKey {
		k := wgtypes.Key(opts.PrivateKey)
		cfg.PrivateKey = &k
		what = append(what, "private key")
	}
	if opts.ListenPort != 0 && opts.ListenPort != cur.ListenPort {
		port := opts.ListenPort
		cfg.ListenPort = &port
		what = append(what, fmt.Sprintf("listen port %d", port))
	}
	if uint32(cur.FirewallMark) != opts.FirewallMark {
		mark := int(opts.FirewallMark)
		cfg.FirewallMark = &mark
		what = append(what, fmt.Sprintf("firewall mark %#x", mark))
	}
	if len(what) > 0 {
		if err := d.client.ConfigureDevice(d.name, cfg); err != nil {
			return fmt.Errorf("set %s: %w", strings.Join(what, ", "), err)
		}
	}

	link, err := netlink.LinkByName(d.name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	if link.Attrs().MTU != opts.MTU {
		if err := netlink.LinkSetMTU(link, opts.MTU); err != nil {
			return fmt.Errorf("set MTU %d: %w", opts.MTU, err)
		}
	}
	if err := syncAddrs(link, opts.Addresses); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set link up: %w", err)
	}
	if d.emb != nil {
		// The link going up also brings wireguard-go up through a TUN
		// event, but asynchronously; bringing it up here binds the port
		// before the port is read back below.
		if err := d.emb.dev.Up(); err != nil {
			return fmt.Errorf("bring up device with listen port %d: %w", opts.ListenPort, err)
		}
		d.emb.setLog(opts.Log)
	}

	cur, err = d.client.Device(d.name)
	if err != nil {
		return fmt.Errorf("read device: %w", err)
	}
	d.pub = Key(cur.PublicKey)
	d.port = cur.ListenPort
	if opts.ListenPort != 0 && d.port != opts.ListenPort {
		return fmt.Errorf("listen port %d: the device listens on %d instead; is %d in use?", opts.ListenPort, d.port, opts.ListenPort)
	}
	return nil
}

// syncAddrs makes the link's addresses exactly want, leaving IPv6
// link-local addresses alone.
func syncAddrs(link netlink.Link, want []netip.Prefix) error {
	wanted := make(map[netip.Prefix]bool, len(want))
	for _, p := range want {
		wanted[p] = true
	}
	have, err := linkAddrs(link)
	if err != nil {
		return err
	}
	for p, a := range have {
		if wanted[p] || (p.Addr().Is6() && p.Addr().IsLinkLocalUnicast()) {
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("delete address %s: %w", p, err)
		}
	}
	// Deleting a primary IPv4 address can take its secondaries with it,
	// so list again before adding.
	have, err = linkAddrs(link)
	if err != nil {
		return err
	}
	for _, p := range want {
		if _, ok := have[p]; ok {
			continue
		}
		n := ipNet(p)
		if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: &n}); err != nil {
			return fmt.Errorf("add address %s: %w", p, err)
		}
	}
	return nil
}

// linkAddrs lists the addresses on link.
func linkAddrs(link netlink.Link) (map[netip.Prefix]netlink.Addr, error) {
	var list []netlink.Addr
	var err error
	for range 5 {
		list, err = netlink.AddrList(link, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	m := make(map[netip.Prefix]netlink.Addr, len(list))
	for _, a := range list {
		if a.IPNet == nil {
			continue
		}
		if p, ok := prefixFromIPNet(*a.IPNet); ok {
			m[p] = a
		}
	}
	return m, nil
}

// Name returns the interface name.
func (d *Device) Name() string { return d.name }

// Present says whether the interface's link still exists: someone's `ip
// link del` removes it under a running device.
func (d *Device) Present() bool {
	l, err := linkByName(d.name)
	return err == nil && l != nil
}

// Kind returns "kernel" or "userspace" (KindKernel or KindUserspace).
func (d *Device) Kind() string { return d.kind }

// Fallback says in one line why the device is a userspace one although
// Userspace was not set: the kernel lacks WireGuard. It is "" for a kernel
// device and where Userspace was set.
func (d *Device) Fallback() string { return d.fallback }

// Socket is the embedded device's UAPI socket, "" for a kernel device.
func (d *Device) Socket() string {
	if d.emb == nil {
		return ""
	}
	return d.emb.socket
}

// Unlisted says in one line why wg(8), which looks for userspace devices
// in /var/run/wireguard only, cannot find the embedded device there
// (another device holds the name, or the directory is read-only); "" when
// it can, and for a kernel device, which wg(8) reads over netlink.
func (d *Device) Unlisted() string {
	if d.emb == nil {
		return ""
	}
	return d.emb.unlisted
}

// Adopted reports whether Open adopted an existing kernel link (one an
// earlier run left serving) rather than creating the interface.
func (d *Device) Adopted() bool { return d.adopted }

// PublicKey returns the device's public key.
func (d *Device) PublicKey() Key {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pub
}

// ListenPort returns the UDP port the device listens on, which is the
// picked one where a random port was asked for.
func (d *Device) ListenPort() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.port
}

// Reconfigure applies changed Options (private key, listen port, firewall
// mark, MTU, addresses, log) to the running device, without touching its
// peers. Name and Userspace cannot change. A ListenPort of 0 keeps the
// current port. On an error the device may be partly reconfigured.
func (d *Device) Reconfigure(opts Options) error {
	opts, err := opts.normalize()
	if err != nil {
		return fmt.Errorf("reconfigure wireguard: %w", err)
	}
	if opts.Name != d.name {
		return fmt.Errorf("reconfigure wireguard %s: name cannot change to %s", d.name, opts.Name)
	}
	if opts.Userspace != d.userspace {
		return fmt.Errorf("reconfigure wireguard %s: Userspace cannot change", d.name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("reconfigure wireguard %s: %w", d.name, net.ErrClosed)
	}
	if err := d.apply(opts); err != nil {
		return fmt.Errorf("reconfigure wireguard %s: %w", d.name, err)
	}
	return nil
}

// SetPeers makes the device's peers exactly peers: it adds missing ones,
// updates those whose preshared key, allowed IPs, keepalive or endpoint
// differ, and removes the others, in one wgctrl call that sends only
// those peers; unchanged peers keep their sessions. A peer with a zero
// Endpoint keeps whatever endpoint the device has learned. Duplicate
// public keys and allowed IPs claimed by two peers are errors naming both
// peers, and nothing is changed then.
func (d *Device) SetPeers(peers []Peer) (Changes, error) {
	want, err := normalizePeers(peers)
	if err != nil {
		return Changes{}, fmt.Errorf("set peers of %s: %w", d.name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return Changes{}, fmt.Errorf("set peers of %s: %w", d.name, net.ErrClosed)
	}
	cur, err := d.client.Device(d.name)
	if err != nil {
		return Changes{}, fmt.Errorf("set peers of %s: read device: %w", d.name, err)
	}
	cfgs, ch := diffPeers(cur.Peers, want)
	if len(cfgs) == 0 {
		return ch, nil
	}
	if err := d.client.ConfigureDevice(d.name, wgtypes.Config{Peers: cfgs}); err != nil {
		return Changes{}, fmt.Errorf("set peers of %s: %w", d.name, err)
	}
	return ch, nil
}

// Peers returns the device's peers, ordered by public key, with their
// handshake time and byte counters.
func (d *Device) Peers() ([]PeerStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("peers of %s: %w", d.name, net.ErrClosed)
	}
	cur, err := d.client.Device(d.name)
	if err != nil {
		return nil, fmt.Errorf("peers of %s: %w", d.name, err)
	}
	out := make([]PeerStatus, 0, len(cur.Peers))
	for _, p := range cur.Peers {
		out = append(out, statusFromWG(p))
	}
	sortStatus(out)
	return out, nil
}

// Close removes the interface: it deletes a kernel link, or closes the
// embedded device's UAPI listener and the device, which removes the UAPI
// socket and the TUN. Closing a closed device does nothing.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.shutdown(true); err != nil {
		return fmt.Errorf("close wireguard %s: %w", d.name, err)
	}
	return nil
}

// Detach releases the device's handles and leaves a kernel link in place,
// peers and all, for a later Open to adopt; an embedded device cannot
// outlive its process and is removed as by Close.
func (d *Device) Detach() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.shutdown(false); err != nil {
		return fmt.Errorf("detach wireguard %s: %w", d.name, err)
	}
	return nil
}

// shutdown releases what the device holds; with removeLink it also
// deletes a kernel link.
func (d *Device) shutdown(removeLink bool) error {
	var errs []error
	if d.emb != nil {
		d.emb.close()
	}
	if d.client != nil {
		d.client.Close()
	}
	if d.kind == KindKernel && removeLink {
		if err := deleteLink(d.name, "wireguard"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteLink deletes the link name if it exists and has one of the given
// types; a link of another type is an error.
func deleteLink(name string, types ...string) error {
	link, err := linkByName(name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	if link == nil {
		return nil
	}
	for _, t := range types {
		if link.Type() == t {
			if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("delete link: %w", err)
			}
			return nil
		}
	}
	return fmt.Errorf("%s is a %s link, not WireGuard; not deleting it", name, link.Type())
}

// Remove deletes the interface name if it exists (a kernel WireGuard link,
// or a TUN left by wireguard-go), the embedded device's UAPI socket in
// socketDir (as Options.SocketDir) and its link in /var/run/wireguard, or
// a socket of that name there, when no process serves them. It is meant
// for cleaning up after a crash; what is absent is not an error. A link of
// another type is an error and is kept.
func Remove(name, socketDir string) error {
	if err := validateName(name); err != nil {
		return fmt.Errorf("remove wireguard: %w", err)
	}
	var errs []error
	if err := deleteLink(name, "wireguard", "tuntap"); err != nil {
		errs = append(errs, err)
	}
	if err := removeSockets(name, socketDir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove wireguard %s: %w", name, err)
	}
	return nil
}
