// Package vpn is edge-vpn's WireGuard ingress: interfaces (kernel
// WireGuard, or the embedded wireguard-go where the kernel has none), a
// peer registry in the state store with addresses from each interface's
// pool, reconciliation of the devices with the registry, client configs
// and QR codes, peer names in DNS through RFC 2136, and server-side access
// limits in nftables table inet edge_vpn.
package vpn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/store"
	"github.com/homeedge/edge/vpn/wireguard"
)

// Spec is edge-vpn's daemon description.
var Spec = daemon.Spec[Config]{
	Name:     Section,
	Defaults: DefaultConfig,
	New:      New,
	Cleanup:  Cleanup,
}

// Service is the running edge-vpn.
type Service struct {
	log     *slog.Logger
	env     daemon.Env
	host    host
	store   store.Store
	peers   *store.Collection[storedPeer]
	metrics *metrics
	ready   chan struct{}
	now     func() time.Time

	// mu guards the fields below, the registry's changes and the devices.
	mu     sync.Mutex
	cfg    *config.File[Config]
	ifaces map[string]*iface
	names  namePublisher
	// namesDirty says a DNS update failed; the next reconcile retries.
	namesDirty bool
}

// iface is one WireGuard interface: its config, its device and its pool.
type iface struct {
	cfg    Interface
	dev    device
	key    wireguard.Key
	pool   []netip.Prefix
	router []netip.Addr
}

// New opens the state store and reads (or makes) each interface's key.
// Devices are created by Run.
func New(env daemon.Env, cfg *config.File[Config]) (daemon.Service[Config], error) {
	return newService(env, cfg, systemHost(env.Log))
}

func newService(env daemon.Env, cfg *config.File[Config], h host) (*Service, error) {
	st, err := store.OpenBolt(env.StateDir+"/state.db", store.BoltOptions{})
	if err != nil {
		return nil, err
	}
	s := &Service{
		log:    env.Log,
		env:    env,
		host:   h,
		store:  st,
		peers:  store.NewCollection[storedPeer](st, "peers/"),
		ready:  make(chan struct{}),
		now:    h.now,
		cfg:    cfg,
		ifaces: map[string]*iface{},
		// Publish every name once at start: the DNS server may have lost
		// them, or missed a change while edge-vpn was down.
		namesDirty: true,
	}
	for i := range cfg.Section.WireGuard {
		if _, err := s.interfaceKey(&cfg.Section.WireGuard[i]); err != nil {
			st.Close()
			return nil, err
		}
	}
	if s.names, err = h.names(cfg); err != nil {
		st.Close()
		return nil, err
	}
	s.metrics = newMetrics(s, env.Metrics)
	return s, nil
}

var _ daemon.Service[Config] = (*Service)(nil)

// interfaceKey reads the interface's private key, or makes one and keeps
// it in the state directory.
func (s *Service) interfaceKey(w *Interface) (wireguard.Key, error) {
	path := w.PrivateKeyFile
	if path == "" {
		path = filepath.Join(s.env.StateDir, w.Interface+".key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			k, err := wireguard.GeneratePrivateKey()
			if err != nil {
				return wireguard.Key{}, err
			}
			if err := wireguard.WritePrivateKeyFile(path, k); err != nil {
				return wireguard.Key{}, fmt.Errorf("interface %s: %w", w.Interface, err)
			}
			s.log.Info("made a private key for the interface", "interface", w.Interface, "path", path, "public_key", k.PublicKey())
			return k, nil
		}
	}
	k, err := wireguard.ReadPrivateKeyFile(path)
	if err != nil {
		return wireguard.Key{}, fmt.Errorf("interface %s: %w", w.Interface, err)
	}
	return k, nil
}

// Ready is closed once every interface is up and reconciled.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run creates the interfaces, brings the registry in line with the config
// (static peers) and the devices in line with the registry, then does so
// again on every tick until ctx ends. On stop the interfaces go away with
// the process (embedded) or stay (kernel); peers and addresses stay in the
// store either way.
func (s *Service) Run(ctx context.Context) error {
	defer s.store.Close()
	s.mu.Lock()
	err := s.applyConfig(ctx, s.cfg, true)
	s.mu.Unlock()
	if err != nil {
		s.closeDevices()
		return err
	}
	close(s.ready)
	tick, stop := s.host.ticker(s.cfg.Section.Reconcile.D())
	defer stop()
	for {
		select {
		case <-ctx.Done():
			s.closeDevices()
			return nil
		case <-tick:
			s.mu.Lock()
			if err := s.reconcile(ctx, "tick"); err != nil {
				s.log.Error("reconcile", "err", err)
			}
			s.mu.Unlock()
		}
	}
}

func (s *Service) closeDevices() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, in := range s.ifaces {
		if in.dev.Kind() == "kernel" {
			continue // kernel links keep serving peers across a restart
		}
		if err := in.dev.Close(); err != nil {
			s.log.Warn("close interface", "interface", name, "err", err)
		}
	}
}

// Prepare implements daemon.Service. It still applies in one step (the
// commit has nothing left to do): interfaces added, changed or removed,
// static peers added or removed, access limits rebuilt.
func (s *Service) Prepare(cfg *config.File[Config], _ daemon.Request) (daemon.Change, error) {
	return daemon.Change{}, s.reload(cfg)
}

func (s *Service) reload(cfg *config.File[Config]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range cfg.Section.WireGuard {
		if _, err := s.interfaceKey(&cfg.Section.WireGuard[i]); err != nil {
			return err
		}
	}
	names, err := s.host.names(cfg)
	if err != nil {
		return err
	}
	if err := s.applyConfig(context.Background(), cfg, false); err != nil {
		return err
	}
	s.names = names
	s.namesDirty = true
	return nil
}

// applyConfig opens or reconfigures the interfaces of cfg, closes the
// others, registers the static peers and reconciles. The caller holds mu.
func (s *Service) applyConfig(ctx context.Context, cfg *config.File[Config], start bool) error {
	// Static peers first: they must fit the registry before anything
	// changes.
	if err := s.syncStatic(ctx, cfg); err != nil {
		return err
	}
	want := map[string]bool{}
	for i := range cfg.Section.WireGuard {
		w := cfg.Section.WireGuard[i]
		want[w.Interface] = true
		key, err := s.interfaceKey(&w)
		if err != nil {
			return err
		}
		v4, v6 := w.poolPrefixes(&cfg.Site)
		pool := append(v4, v6...)
		router := routerAddrs(pool, w.Address)
		opts := wireguard.Options{Name: w.Interface, ListenPort: w.ListenPort, PrivateKey: key, MTU: w.MTU,
			FirewallMark: w.FirewallMark, Userspace: w.Userspace, Log: s.log.With("interface", w.Interface)}
		for _, a := range router {
			for _, p := range pool {
				if p.Contains(a) {
					opts.Addresses = append(opts.Addresses, netip.PrefixFrom(a, p.Bits()))
				}
			}
		}
		if in := s.ifaces[w.Interface]; in != nil {
			if in.cfg.Userspace != w.Userspace {
				return fmt.Errorf("vpn.wireguard[%d].userspace: changes only on restart", i)
			}
			if err := in.dev.Reconfigure(opts); err != nil {
				return fmt.Errorf("interface %s: %w", w.Interface, err)
			}
			in.cfg, in.key, in.pool, in.router = w, key, pool, router
			continue
		}
		dev, err := s.host.devices.open(opts)
		if err != nil {
			return fmt.Errorf("interface %s: %w", w.Interface, err)
		}
		if why := dev.Fallback(); why != "" {
			s.log.Warn("the kernel has no WireGuard; using the embedded wireguard-go", "interface", w.Interface, "reason", why)
		}
		s.log.Info("interface up", "interface", w.Interface, "kind", dev.Kind(), "listen_port", dev.ListenPort(), "public_key", dev.PublicKey())
		s.ifaces[w.Interface] = &iface{cfg: w, dev: dev, key: key, pool: pool, router: router}
	}
	for name, in := range s.ifaces {
		if !want[name] {
			if err := in.dev.Close(); err != nil {
				s.log.Warn("close interface", "interface", name, "err", err)
			}
			delete(s.ifaces, name)
			s.log.Info("interface removed", "interface", name)
		}
	}
	s.cfg = cfg
	return s.reconcile(ctx, map[bool]string{true: "start", false: "reload"}[start])
}

// syncStatic makes the registry hold the config's static peers (keeping
// the addresses they had) and no static peer the config dropped. The
// caller holds mu.
func (s *Service) syncStatic(ctx context.Context, cfg *config.File[Config]) error {
	items, _, err := s.peers.List(ctx)
	if err != nil {
		return fmt.Errorf("read peers: %w", err)
	}
	stored := map[string]storedPeer{}
	for _, it := range items {
		stored[it.Name] = it.Value
	}
	declared := map[string]bool{}
	for i := range cfg.Section.WireGuard {
		w := &cfg.Section.WireGuard[i]
		v4, v6 := w.poolPrefixes(&cfg.Site)
		pool := append(v4, v6...)
		for j, sp := range w.Peers {
			declared[sp.Name] = true
			old, exists := stored[sp.Name]
			if exists && !old.Static {
				return fmt.Errorf("vpn.wireguard[%d].peers[%d]: peer name %q is taken by a peer added at run time; remove or rename that one first (edgectl peer rename %s NEW)", i, j, sp.Name, sp.Name)
			}
			p := storedPeer{Name: sp.Name, Interface: w.Interface, PublicKey: sp.PublicKey, Group: sp.Group,
				Keepalive: sp.Keepalive.D(), Enabled: true, Static: true, Created: s.now().UTC(), By: "config"}
			if exists {
				p.Created, p.LastSeen = old.Created, old.LastSeen
			}
			if sp.Endpoint != "" {
				p.Endpoint, _ = netip.ParseAddrPort(sp.Endpoint)
			}
			for _, r := range sp.Routes {
				ps, _ := r.Prefixes(&cfg.Site)
				p.Routes = append(p.Routes, ps...)
			}
			switch {
			case len(sp.Addresses) > 0:
				p.Addresses = sp.Addresses
			case exists && old.Interface == w.Interface:
				p.Addresses = old.Addresses
			default:
				used := usedAddrs(stored, "")
				addrs, err := allocate(pool, routerAddrs(pool, w.Address), used)
				if err != nil {
					return fmt.Errorf("vpn.wireguard[%d].peers[%d]: %w", i, j, err)
				}
				p.Addresses = addrs
			}
			if owner := clash(stored, p); owner != "" {
				return fmt.Errorf("vpn.wireguard[%d].peers[%d]: %s", i, j, owner)
			}
			if exists && samePeer(old, p) {
				continue
			}
			if _, err := s.peers.Put(ctx, p.Name, p); err != nil {
				return fmt.Errorf("store peer %s: %w", p.Name, err)
			}
			stored[p.Name] = p
		}
	}
	for name, p := range stored {
		if p.Static && !declared[name] {
			if _, err := s.peers.Delete(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("remove peer %s: %w", name, err)
			}
			delete(stored, name)
			s.namesDirty = true
		}
	}
	return nil
}

func samePeer(a, b storedPeer) bool {
	return a.Interface == b.Interface && a.PublicKey == b.PublicKey && slices.Equal(a.Addresses, b.Addresses) &&
		slices.Equal(a.Routes, b.Routes) && a.Group == b.Group && a.Keepalive == b.Keepalive && a.Endpoint == b.Endpoint
}

// usedAddrs is every address a stored peer holds, but except's.
func usedAddrs(stored map[string]storedPeer, except string) map[netip.Addr]string {
	used := map[netip.Addr]string{}
	for name, p := range stored {
		if name == except {
			continue
		}
		for _, a := range p.Addresses {
			used[a] = name
		}
	}
	return used
}

// clash says what p's key or addresses collide with, or "".
func clash(stored map[string]storedPeer, p storedPeer) string {
	for name, o := range stored {
		if name == p.Name {
			continue
		}
		if o.PublicKey == p.PublicKey {
			return fmt.Sprintf("public key %s is already peer %s's", p.PublicKey, name)
		}
		for _, a := range p.Addresses {
			if slices.Contains(o.Addresses, a) {
				return fmt.Sprintf("address %s is already peer %s's", a, name)
			}
		}
	}
	return ""
}

// reconcile disables expired peers, makes every device hold exactly the
// active peers of the registry, rebuilds the access table, and publishes
// names when they changed. The caller holds mu.
func (s *Service) reconcile(ctx context.Context, why string) error {
	items, _, err := s.peers.List(ctx)
	if err != nil {
		return fmt.Errorf("read peers: %w", err)
	}
	now := s.now()
	byIface := map[string][]wireguard.Peer{}
	var all []storedPeer
	var errs []error
	for _, it := range items {
		p := it.Value
		if p.Enabled && !p.Expires.IsZero() && !p.Expires.After(now) {
			p.Enabled, p.Disabled = false, "expired"
			if _, err := s.peers.Put(ctx, p.Name, p, store.IfModRev(it.ModRev)); err != nil {
				errs = append(errs, fmt.Errorf("disable expired peer %s: %w", p.Name, err))
			} else {
				s.log.Info("peer expired; disabled", "peer", p.Name, "expired", p.Expires)
			}
		}
		all = append(all, p)
		in := s.ifaces[p.Interface]
		if in == nil || !p.active(now) {
			continue
		}
		dp, err := p.devicePeer(in.cfg.Client.Keepalive.D())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byIface[p.Interface] = append(byIface[p.Interface], dp)
	}
	for name, in := range s.ifaces {
		ch, err := in.dev.SetPeers(byIface[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", name, err))
			continue
		}
		if ch != (wireguard.Changes{}) {
			s.log.Info("peers reconciled", "interface", name, "why", why, "added", ch.Added, "updated", ch.Updated, "removed", ch.Removed)
		}
	}
	if err := s.host.access.apply(s.accessRules(all, now)); err != nil {
		errs = append(errs, fmt.Errorf("access table: %w", err))
	}
	s.noteHandshakes(ctx, items)
	if s.namesDirty && s.names != nil {
		if err := s.names.sync(all); err != nil {
			s.metrics.nameErrors.Inc()
			s.log.Warn("peer names not published; retrying at the next reconcile", "err", err)
		} else {
			s.namesDirty = false
		}
	}
	return errors.Join(errs...)
}

// noteHandshakes writes each peer of items (as reconcile read them) its
// last handshake, at most once a minute per peer. The caller holds mu.
func (s *Service) noteHandshakes(ctx context.Context, items []store.Item[storedPeer]) {
	st := s.deviceStatus()
	for _, it := range items {
		hs := st[it.Value.PublicKey].LastHandshake
		if hs.IsZero() || hs.Sub(it.Value.LastSeen) < time.Minute {
			continue
		}
		p := it.Value
		p.LastSeen = hs.UTC()
		// A peer changed meanwhile (disabled as expired) keeps its change.
		s.peers.Put(ctx, p.Name, p, store.IfModRev(it.ModRev))
	}
}

// Status is the status detail of GET /v1/status.
func (s *Service) Status() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ctlapi.VPNStatus{}
	items, _, _ := s.peers.List(context.Background())
	for _, name := range slices.Sorted(maps.Keys(s.ifaces)) {
		in := s.ifaces[name]
		vi := ctlapi.VPNInterface{Name: name, Kind: in.dev.Kind(), Fallback: in.dev.Fallback(), PublicKey: in.dev.PublicKey().String(), ListenPort: in.dev.ListenPort()}
		for _, it := range items {
			if it.Value.Interface == name {
				vi.Peers++
			}
		}
		if ps, err := in.dev.Peers(); err == nil {
			for _, p := range ps {
				if s.now().Sub(p.LastHandshake) < activeWithin {
					vi.Active++
				}
			}
		}
		st.Interfaces = append(st.Interfaces, vi)
	}
	return st
}

// activeWithin: a peer with a handshake this recent is active (WireGuard
// renews sessions every two minutes while traffic flows).
const activeWithin = 3 * time.Minute

// Cleanup removes the interfaces of the config and table inet edge_vpn
// (edge-vpn -cleanup). The registry stays.
func Cleanup(ctx context.Context, log *slog.Logger, cfg *config.File[Config]) error {
	var errs []error
	if cfg != nil {
		for _, w := range cfg.Section.WireGuard {
			if err := wireguard.Remove(w.Interface); err != nil {
				errs = append(errs, fmt.Errorf("interface %s: %w", w.Interface, err))
			} else {
				log.Info("removed interface", "interface", w.Interface)
			}
		}
	}
	if err := deleteACLTable(); err != nil {
		errs = append(errs, err)
	} else {
		log.Info("removed table inet " + aclTableName)
	}
	return errors.Join(errs...)
}
