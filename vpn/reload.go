package vpn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/store"
	"github.com/homeedge/edge/vpn/wireguard"
)

// plan is a prepared config: what Commit puts in place and Abort takes
// back.
type plan struct {
	cfg *config.File[Config]
	why string
	// ifaces are the config's interfaces: kept ones with their new
	// settings (not applied yet) and new ones, open.
	ifaces map[string]*iface
	// opened are the interfaces this prepare opened (Abort closes
	// them); dropped are those the config no longer has (the commit
	// closes them). Kept ones are marked pending: the commit's push
	// reconfigures them.
	opened, dropped []*iface
	// keys are private keys made for interfaces without one; keyFiles
	// are the files this prepare wrote them to (Abort removes them).
	keys     []madeKey
	keyFiles []string
	names    namePublisher
	// static is the registry with the config's static peers.
	static staticPlan
	// rules are the access limits of static.peers under cfg.
	rules []aclRule
	// undo restores the registry as it was before this prepare wrote
	// it; nil when nothing was written.
	undo []store.Op
}

type madeKey struct {
	iface, path string
	key         wireguard.Key
}

// Prepare implements daemon.Service. It checks the whole config first,
// then does what can fail, each step after a daemon.Faults step, in this
// order:
//
//  1. every interface's restart-only settings (userspace), for all of
//     them before anything else;
//  2. each interface's private key, read or made (in memory);
//  3. the vpn.names publisher (it reads the TSIG secret file);
//  4. the registry, read, and the static peers' changes computed in
//     memory: names taken by run-time peers, clashing keys or addresses,
//     and a full pool are errors here; the access rules of the result
//     are computed too;
//  5. new private keys written to their files;
//  6. new interfaces opened (a TUN and wireguard-go, or a kernel link),
//     up, with their addresses and no peers;
//  7. the static peers written to the registry in one store transaction,
//     every key conditional on the revision read in step 4.
//
// Steps 5 to 7 are the only ones that change anything outside the
// service, and Abort (which also runs when a later step fails) takes
// each back: it rewrites the registry's keys as they were, closes the
// new interfaces (a kernel link that was adopted, not created, is left in
// place) and removes the new key files. The registry write is last
// because it can fail (a full disk, a concurrent writer: it is
// conditional) and no commit could report that; being last and atomic,
// a prepare that fails leaves the store byte-identical. The service's
// lock is held from the start of Prepare until Commit or Abort, so the
// admin API never sees the registry written and the devices not yet.
//
// Commit swaps the config in, closes the interfaces the config dropped,
// reconfigures the kept ones, puts the registry's active peers on every
// device, applies the access limits and publishes the names. None of it
// can be checked beforehand: the kernel may still refuse (a listen port
// taken meanwhile, an address it rejects). Such a refusal is logged,
// counted in edge_vpn_kernel_errors_total{what}, and retried by every
// reconcile (vpn.reconcile) until it succeeds; a DNS update that fails is
// counted in edge_vpn_name_update_errors_total and retried likewise.
func (s *Service) Prepare(cfg *config.File[Config], req daemon.Request) (daemon.Change, error) {
	s.mu.Lock()
	p, err := s.prepare(cfg, req)
	if err != nil {
		s.mu.Unlock()
		return daemon.Change{}, err
	}
	var once sync.Once
	return daemon.Change{
		Commit: func(gen int64) {
			once.Do(func() {
				defer s.mu.Unlock()
				s.commit(p, gen)
			})
		},
		Abort: func() {
			once.Do(func() {
				defer s.mu.Unlock()
				s.release(p)
			})
		},
	}, nil
}

// prepare runs Prepare's steps; on an error it has released what it
// made. The caller holds mu.
func (s *Service) prepare(cfg *config.File[Config], req daemon.Request) (_ *plan, err error) {
	ctx := context.Background()
	p := &plan{cfg: cfg, why: req.Reason, ifaces: map[string]*iface{}}
	if p.why == "" {
		p.why = "reload"
	}
	defer func() {
		if err != nil {
			s.release(p)
		}
	}()
	if req.Confirm > 0 {
		return nil, errors.New("edge-vpn cannot undo a reload after a timeout; reload it without a confirm")
	}

	if err := s.faults.Step("check interfaces"); err != nil {
		return nil, err
	}
	if err := s.checkRestartOnly(cfg); err != nil {
		return nil, err
	}
	for i := range cfg.Section.WireGuard {
		w := cfg.Section.WireGuard[i]
		if err := s.faults.Step("key " + w.Interface); err != nil {
			return nil, err
		}
		key, made, err := s.interfaceKey(&w)
		if err != nil {
			return nil, err
		}
		if made != "" {
			p.keys = append(p.keys, madeKey{iface: w.Interface, path: made, key: key})
		}
		in := s.newIface(w, key, cfg)
		if old := s.ifaces[w.Interface]; old != nil {
			in.dev, in.pending = old.dev, true
		}
		p.ifaces[w.Interface] = in
	}
	for _, name := range slices.Sorted(maps.Keys(s.ifaces)) {
		if p.ifaces[name] == nil {
			p.dropped = append(p.dropped, s.ifaces[name])
		}
	}

	if err := s.faults.Step("names"); err != nil {
		return nil, err
	}
	if p.names, err = s.host.names(cfg); err != nil {
		return nil, err
	}

	if err := s.faults.Step("read peers"); err != nil {
		return nil, err
	}
	kvs, _, err := s.store.List(ctx, peersPrefix)
	if err != nil {
		return nil, fmt.Errorf("read peers: %w", err)
	}
	if err := s.faults.Step("static peers"); err != nil {
		return nil, err
	}
	if p.static, err = planStatic(cfg, p.ifaces, kvs, s.now()); err != nil {
		return nil, err
	}
	p.rules = rulesFor(cfg, p.static.peers, s.now())
	if err := s.faults.Step("validate access"); err != nil {
		return nil, err
	}
	if err := s.host.access.validate(p.rules); err != nil {
		return nil, fmt.Errorf("access limits (table inet %s): %w", aclTableName, err)
	}

	for _, k := range p.keys {
		if err := s.faults.Step("write key " + k.iface); err != nil {
			return nil, err
		}
		if err := wireguard.WritePrivateKeyFile(k.path, k.key); err != nil {
			return nil, fmt.Errorf("interface %s: %w", k.iface, err)
		}
		p.keyFiles = append(p.keyFiles, k.path)
	}
	for _, w := range cfg.Section.WireGuard {
		in := p.ifaces[w.Interface]
		if in.dev != nil {
			continue
		}
		if err := s.faults.Step("open " + w.Interface); err != nil {
			return nil, err
		}
		dev, err := s.host.devices.open(in.opts)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", w.Interface, err)
		}
		in.dev = dev
		p.opened = append(p.opened, in)
	}

	if len(p.static.changes) > 0 {
		if err := s.faults.Step("write peers"); err != nil {
			return nil, err
		}
		ops := make([]store.Op, len(p.static.changes))
		for i, c := range p.static.changes {
			ops[i] = c.op
		}
		rev, err := s.store.Apply(ctx, ops...)
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("write static peers: the registry changed while the reload read it; reload again: %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("write static peers: %w", err)
		}
		p.undo = p.static.undo(rev)
	}
	return p, nil
}

// checkRestartOnly refuses, for every interface at once, a change that
// only a restart applies. The caller holds mu.
func (s *Service) checkRestartOnly(cfg *config.File[Config]) error {
	var errs []error
	for i, w := range cfg.Section.WireGuard {
		if old := s.ifaces[w.Interface]; old != nil && old.cfg.Userspace != w.Userspace {
			errs = append(errs, fmt.Errorf("vpn.wireguard[%d].userspace: interface %s changes between kernel and userspace only on restart", i, w.Interface))
		}
	}
	return errors.Join(errs...)
}

// interfaceKey reads the interface's private key, or makes one for the
// state directory and returns the path to keep it in; the caller writes
// it.
func (s *Service) interfaceKey(w *Interface) (wireguard.Key, string, error) {
	path := w.PrivateKeyFile
	if path == "" {
		path = filepath.Join(s.env.StateDir, w.Interface+".key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			k, err := wireguard.GeneratePrivateKey()
			if err != nil {
				return wireguard.Key{}, "", err
			}
			return k, path, nil
		}
	}
	k, err := wireguard.ReadPrivateKeyFile(path)
	if err != nil {
		return wireguard.Key{}, "", fmt.Errorf("interface %s: %w", w.Interface, err)
	}
	return k, "", nil
}

// newIface is the interface w of cfg with key, without a device yet: its
// pool, the router's addresses and the device settings.
func (s *Service) newIface(w Interface, key wireguard.Key, cfg *config.File[Config]) *iface {
	v4, v6 := w.poolPrefixes(&cfg.Site)
	pool := append(v4, v6...)
	router := routerAddrs(pool, w.Address)
	opts := wireguard.Options{Name: w.Interface, ListenPort: w.ListenPort, PrivateKey: key, MTU: w.MTU,
		FirewallMark: w.FirewallMark, Userspace: w.Userspace, SocketDir: runtimeDir(&cfg.Shared), Log: s.log.With("interface", w.Interface)}
	for _, a := range router {
		for _, p := range pool {
			if p.Contains(a) {
				opts.Addresses = append(opts.Addresses, netip.PrefixFrom(a, p.Bits()))
			}
		}
	}
	return &iface{cfg: w, key: key, opts: opts, pool: pool, router: router}
}

// rulesFor is the access limits of peers under cfg. acl.go computes them
// on a Service's config; a view holding only cfg lets a prepare compute
// them for a config that is not in place yet.
func rulesFor(cfg *config.File[Config], peers []storedPeer, now time.Time) []aclRule {
	return (&Service{cfg: cfg}).accessRules(peers, now)
}

// commit puts p in place as generation gen. The caller holds mu.
func (s *Service) commit(p *plan, gen int64) {
	s.cfg, s.generation, s.names = p.cfg, gen, p.names
	s.namesDirty = true
	for _, k := range p.keys {
		s.log.Info("made a private key for the interface", "interface", k.iface, "path", k.path, "public_key", k.key.PublicKey())
	}
	for _, in := range p.dropped {
		if err := in.dev.Close(); err != nil {
			s.log.Warn("close interface", "interface", in.cfg.Interface, "err", err)
		}
		s.log.Info("interface removed", "interface", in.cfg.Interface)
	}
	for _, in := range p.opened {
		if why := in.dev.Fallback(); why != "" {
			s.log.Warn("the kernel has no WireGuard; using the embedded wireguard-go", "interface", in.cfg.Interface, "reason", why)
		}
		s.logUp(in.cfg.Interface, in.dev)
	}
	s.ifaces = p.ifaces
	for _, name := range p.static.dropped {
		s.unpublish[name] = true
	}
	if err := s.push(p.static.peers, p.rules, p.why); err != nil {
		s.log.Error("the kernel refused part of the new config; retrying at the next reconcile", "generation", gen, "err", err)
	}
	s.publishNames(p.static.peers)
	select {
	case s.retick <- struct{}{}:
	default:
	}
}

// logUp says that the interface name is up on dev, and where an
// embedded device serves its UAPI socket; when wg(8), which looks in
// /var/run/wireguard only, cannot find it by its name, it says why.
func (s *Service) logUp(name string, dev device) {
	attrs := []any{"interface", name, "kind", dev.Kind(), "listen_port", dev.ListenPort(), "public_key", dev.PublicKey()}
	if sock := dev.Socket(); sock != "" {
		attrs = append(attrs, "uapi_socket", sock)
	}
	s.log.Info("interface up", attrs...)
	if why := dev.Unlisted(); why != "" {
		s.log.Info("wg(8) cannot find the interface by its name; see wg show in docs/vpn.md", "interface", name, "uapi_socket", dev.Socket(), "reason", why)
	}
}

// release takes back what a prepare changed: the registry's keys, the
// new interfaces, the new key files. The caller holds mu.
func (s *Service) release(p *plan) {
	if p.undo != nil {
		if _, err := s.store.Apply(context.Background(), p.undo...); err != nil {
			s.log.Error("static peers of an aborted reload not taken back", "err", err)
		}
	}
	for _, in := range slices.Backward(p.opened) {
		undo := in.dev.Close
		if in.dev.Adopted() {
			undo = in.dev.Detach // it was there before; it stays
		}
		if err := undo(); err != nil {
			s.log.Warn("close interface", "interface", in.cfg.Interface, "err", err)
		}
	}
	for _, path := range slices.Backward(p.keyFiles) {
		if err := os.Remove(path); err != nil {
			s.log.Warn("remove private key file", "path", path, "err", err)
		}
	}
}

// staticPlan is what a config's static peers change in the registry.
type staticPlan struct {
	// changes are the writes, for one store transaction.
	changes []storeChange
	// peers is the whole registry once they are written, by name.
	peers []storedPeer
	// dropped are static peers the config no longer declares.
	dropped []string
}

// storeChange is one write and the value it replaces (nil: none).
type storeChange struct {
	op  store.Op
	old []byte
}

// undo returns the writes that restore what the changes replaced, each
// conditional on the key still being as the transaction at rev left it.
func (sp staticPlan) undo(rev int64) []store.Op {
	var ops []store.Op
	for _, c := range sp.changes {
		switch {
		case c.op.Type == store.OpDelete:
			ops = append(ops, store.PutOp(c.op.Key, c.old, store.IfModRev(0)))
		case c.old == nil:
			ops = append(ops, store.DeleteOp(c.op.Key, store.IfModRev(rev)))
		default:
			ops = append(ops, store.PutOp(c.op.Key, c.old, store.IfModRev(rev)))
		}
	}
	return ops
}

// planStatic computes, in memory, the registry that holds cfg's static
// peers (keeping the addresses they had while those fit the pool) and no
// static peer cfg dropped, from the registry's keys kvs.
func planStatic(cfg *config.File[Config], ifaces map[string]*iface, kvs []store.KV, now time.Time) (staticPlan, error) {
	var sp staticPlan
	stored := map[string]storedPeer{}
	kvOf := map[string]store.KV{}
	for _, kv := range kvs {
		name := strings.TrimPrefix(kv.Key, peersPrefix)
		if strings.Contains(name, "/") {
			continue
		}
		var p storedPeer
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return sp, fmt.Errorf("decode %s (mod revision %d): %w", kv.Key, kv.ModRev, err)
		}
		stored[name], kvOf[name] = p, kv
	}
	put := func(p storedPeer) error {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode peer %s: %w", p.Name, err)
		}
		old := kvOf[p.Name]
		sp.changes = append(sp.changes, storeChange{op: store.PutOp(peersPrefix+p.Name, b, store.IfModRev(old.ModRev)), old: old.Value})
		stored[p.Name] = p
		return nil
	}
	ownKeys := map[string]string{}
	for name, in := range ifaces {
		ownKeys[in.key.PublicKey().String()] = name
	}
	declared := map[string]bool{}
	for i := range cfg.Section.WireGuard {
		w := &cfg.Section.WireGuard[i]
		in := ifaces[w.Interface]
		for j, decl := range w.Peers {
			at := fmt.Sprintf("vpn.wireguard[%d].peers[%d]", i, j)
			declared[decl.Name] = true
			old, exists := stored[decl.Name]
			if exists && !old.Static {
				return sp, fmt.Errorf("%s: peer name %q is taken by a peer added at run time; remove or rename that one first (edgectl peer rename %s NEW)", at, decl.Name, decl.Name)
			}
			p := storedPeer{Name: decl.Name, Interface: w.Interface, PublicKey: decl.PublicKey, Group: decl.Group,
				Keepalive: decl.Keepalive.D(), Enabled: true, Static: true, Created: now.UTC(), By: "config"}
			if exists {
				// An operator's peer disable holds until peer enable.
				p.Created, p.LastSeen, p.Enabled, p.Disabled = old.Created, old.LastSeen, old.Enabled, old.Disabled
			}
			if decl.Endpoint != "" {
				p.Endpoint, _ = netip.ParseAddrPort(decl.Endpoint)
			}
			for _, r := range decl.Routes {
				ps, _ := r.Prefixes(&cfg.Site)
				p.Routes = append(p.Routes, ps...)
			}
			switch {
			case len(decl.Addresses) > 0:
				p.Addresses = decl.Addresses
			case exists && old.Interface == w.Interface && fitsPool(old.Addresses, in.pool):
				p.Addresses = old.Addresses
			default:
				addrs, err := allocate(in.pool, in.router, usedAddrs(stored, decl.Name))
				if err != nil {
					return sp, fmt.Errorf("%s: %w", at, err)
				}
				p.Addresses = addrs
			}
			if iface, own := ownKeys[p.PublicKey]; own {
				return sp, fmt.Errorf("%s: public key %s is interface %s's own", at, p.PublicKey, iface)
			}
			if why := clash(stored, p); why != "" {
				return sp, fmt.Errorf("%s: %s", at, why)
			}
			if exists && samePeer(old, p) {
				continue
			}
			if err := put(p); err != nil {
				return sp, err
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(stored)) {
		if p := stored[name]; p.Static && !declared[name] {
			kv := kvOf[name]
			sp.changes = append(sp.changes, storeChange{op: store.DeleteOp(kv.Key, store.IfModRev(kv.ModRev)), old: kv.Value})
			sp.dropped = append(sp.dropped, name)
			delete(stored, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(stored)) {
		sp.peers = append(sp.peers, stored[name])
	}
	return sp, nil
}

// fitsPool reports whether addrs are one address in each prefix of pool.
func fitsPool(addrs []netip.Addr, pool []netip.Prefix) bool {
	if len(addrs) != len(pool) {
		return false
	}
	for _, p := range pool {
		if !slices.ContainsFunc(addrs, p.Contains) {
			return false
		}
	}
	return true
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
	for _, name := range slices.Sorted(maps.Keys(stored)) {
		o := stored[name]
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
