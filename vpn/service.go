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
	faults  *daemon.Faults
	host    host
	store   store.Store
	peers   *store.Collection[storedPeer]
	metrics *metrics
	ready   chan struct{}
	now     func() time.Time
	// retick tells Run that a committed config may have a new
	// vpn.reconcile interval.
	retick chan struct{}

	// mu guards the fields below, the registry's changes and the devices.
	// A reload holds it from the start of its Prepare to the end of its
	// Commit or Abort, so that nobody sees a prepared config half in
	// place.
	mu  sync.Mutex
	cfg *config.File[Config]
	// generation is the runner's config generation of cfg.
	generation int64
	ifaces     map[string]*iface
	names      namePublisher
	// namesDirty says the names must be published again (a change, or a
	// DNS update that failed); unpublish holds names to remove from DNS
	// (a removed peer whose removal failed, a static peer the config
	// dropped). The next reconcile retries both.
	namesDirty bool
	unpublish  map[string]bool
}

// iface is one WireGuard interface: its config, its device and its pool.
type iface struct {
	cfg    Interface
	dev    device
	key    wireguard.Key
	opts   wireguard.Options
	pool   []netip.Prefix
	router []netip.Addr
	// pending says the device may not have opts yet: a commit asked for
	// them, or applying them failed; the next push applies them.
	pending bool
}

// New opens the state store, then prepares the config as a reload does
// (keys read or made, every interface opened, static peers registered)
// and commits it as generation 1. A failed New has closed what it opened.
func New(env daemon.Env, cfg *config.File[Config]) (daemon.Service[Config], error) {
	return newService(env, cfg, systemHost(env.Log))
}

func newService(env daemon.Env, cfg *config.File[Config], h host) (*Service, error) {
	if err := env.Faults.Step("open store"); err != nil {
		return nil, err
	}
	st, err := store.OpenBolt(filepath.Join(env.StateDir, "state.db"), store.BoltOptions{})
	if err != nil {
		return nil, err
	}
	s := &Service{
		log:    env.Log,
		env:    env,
		faults: env.Faults,
		host:   h,
		store:  st,
		peers:  store.NewCollection[storedPeer](st, peersPrefix),
		ready:  make(chan struct{}),
		now:    h.now,
		retick: make(chan struct{}, 1),
		ifaces: map[string]*iface{},
		// Publish every name once at start: the DNS server may have lost
		// them, or missed a change while edge-vpn was down.
		namesDirty: true,
		unpublish:  map[string]bool{},
	}
	s.metrics = newMetrics(s, env.Metrics)
	c, err := s.Prepare(cfg, daemon.Request{Reason: "start"})
	if err != nil {
		st.Close()
		return nil, err
	}
	c.Apply(1)
	return s, nil
}

var _ daemon.Service[Config] = (*Service)(nil)

// peersPrefix is where the registry keeps peers, one key per name.
const peersPrefix = "peers/"

// Ready is closed once Run runs: New has brought every interface up and
// in line with the registry.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run keeps the devices in line with the registry (and disables expired
// peers) on every tick of vpn.reconcile until ctx ends. On stop the
// interfaces go away with the process (embedded) or stay (kernel); peers
// and addresses stay in the store either way.
func (s *Service) Run(ctx context.Context) error {
	defer s.store.Close()
	defer s.closeDevices()
	close(s.ready)
	every := s.interval()
	tick, stop := s.host.ticker(every)
	defer func() { stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.retick:
			if d := s.interval(); d != every {
				stop()
				every = d
				tick, stop = s.host.ticker(every)
			}
		case <-tick:
			s.tick(ctx)
		}
	}
}

// tick is one periodic reconcile.
func (s *Service) tick(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reconcile(ctx, "tick"); err != nil {
		s.log.Error("reconcile", "err", err)
	}
}

func (s *Service) interval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Section.Reconcile.D()
}

func (s *Service) closeDevices() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(s.ifaces)) {
		dev := s.ifaces[name].dev
		// A kernel link keeps serving peers across a restart.
		release := dev.Close
		if dev.Kind() == wireguard.KindKernel {
			release = dev.Detach
		}
		if err := release(); err != nil {
			s.log.Warn("close interface", "interface", name, "err", err)
		}
	}
}

// reconcile disables expired peers, pushes the registry to the devices
// and the access table, notes handshakes, and publishes names when they
// changed. The caller holds mu.
func (s *Service) reconcile(ctx context.Context, why string) error {
	items, _, err := s.peers.List(ctx)
	if err != nil {
		return fmt.Errorf("read peers: %w", err)
	}
	now := s.now()
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
	}
	if err := s.push(all, s.accessRules(all, now), why); err != nil {
		errs = append(errs, err)
	}
	s.noteHandshakes(ctx, items)
	s.publishNames(all)
	return errors.Join(errs...)
}

// push makes the kernel hold peers: every device its settings (where a
// commit or a failure left them pending) and exactly its active peers,
// and the access table rules. What the kernel refuses is counted in
// edge_vpn_kernel_errors_total and returned; the next reconcile tries
// again. The caller holds mu.
func (s *Service) push(peers []storedPeer, rules []aclRule, why string) error {
	now := s.now()
	var errs []error
	byIface := map[string][]wireguard.Peer{}
	for _, p := range peers {
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
	for _, name := range slices.Sorted(maps.Keys(s.ifaces)) {
		in := s.ifaces[name]
		if !in.dev.Present() {
			// Removed behind our back (ip link del): peers would be cut
			// off for good, so make it again, with its key and addresses.
			s.log.Warn("interface removed behind edge-vpn's back; creating it again", "interface", name)
			s.metrics.drift.WithLabelValues("interface").Inc()
			in.dev.Close()
			dev, err := s.host.devices.open(in.opts)
			if err != nil {
				s.metrics.kernelErrors.WithLabelValues("interface").Inc()
				errs = append(errs, fmt.Errorf("interface %s: %w", name, err))
				continue
			}
			in.dev, in.pending = dev, false
		}
		if in.pending {
			if err := in.dev.Reconfigure(in.opts); err != nil {
				s.metrics.kernelErrors.WithLabelValues("interface").Inc()
				errs = append(errs, fmt.Errorf("interface %s: %w", name, err))
			} else {
				in.pending = false
			}
		}
		ch, err := in.dev.SetPeers(byIface[name])
		if err != nil {
			s.metrics.kernelErrors.WithLabelValues("peers").Inc()
			errs = append(errs, fmt.Errorf("interface %s: %w", name, err))
			continue
		}
		if ch != (wireguard.Changes{}) {
			s.log.Info("peers reconciled", "interface", name, "why", why, "added", ch.Added, "updated", ch.Updated, "removed", ch.Removed)
		}
	}
	restored, err := s.host.access.apply(rules)
	if restored != "" {
		s.metrics.drift.WithLabelValues("access").Inc()
	}
	if err != nil {
		s.metrics.kernelErrors.WithLabelValues("access").Inc()
		errs = append(errs, fmt.Errorf("access table: %w", err))
	}
	return errors.Join(errs...)
}

// publishNames removes the names waiting to go and, when names changed,
// publishes every peer's. A failed update is logged and counted; the next
// reconcile retries it. The caller holds mu.
func (s *Service) publishNames(peers []storedPeer) {
	if s.names == nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(s.unpublish)) {
		if slices.ContainsFunc(peers, func(p storedPeer) bool { return p.Name == name }) {
			delete(s.unpublish, name) // back in the registry: sync replaces it
			continue
		}
		if err := s.names.remove(name); err != nil {
			s.metrics.nameErrors.Inc()
			s.log.Warn("peer name not removed from DNS; retrying at the next reconcile", "peer", name, "err", err)
			continue
		}
		delete(s.unpublish, name)
	}
	if !s.namesDirty {
		return
	}
	if err := s.names.sync(peers); err != nil {
		s.metrics.nameErrors.Inc()
		s.log.Warn("peer names not published; retrying at the next reconcile", "err", err)
		return
	}
	s.namesDirty = false
}

// unpublishName removes a peer's name from DNS now, or at a later
// reconcile if that fails. The caller holds mu.
func (s *Service) unpublishName(name string) {
	if s.names == nil {
		return
	}
	if err := s.names.remove(name); err != nil {
		s.unpublish[name] = true
		s.metrics.nameErrors.Inc()
		s.log.Warn("peer name not removed from DNS; retrying at the next reconcile", "peer", name, "err", err)
	}
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
	st := ctlapi.VPNStatus{Generation: s.generation}
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

// runtimeDir is edge-vpn's runtime directory, <admin.socket_dir>/vpn,
// where embedded devices serve their UAPI sockets: one of this daemon's
// own, unlike /var/run/wireguard, which every network namespace shares,
// so that a device name another namespace uses does not stop edge-vpn.
// admin.socket_dir changes only on restart, and so does this.
func runtimeDir(sh *config.Shared) string {
	return filepath.Join(sh.Admin.SocketDir, Section)
}

// Cleanup removes the interfaces of the config and table inet edge_vpn
// (edge-vpn -cleanup). The registry stays.
func Cleanup(ctx context.Context, log *slog.Logger, cfg *config.File[Config]) error {
	var errs []error
	if cfg != nil {
		for _, w := range cfg.Section.WireGuard {
			if err := wireguard.Remove(w.Interface, runtimeDir(&cfg.Shared)); err != nil {
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
