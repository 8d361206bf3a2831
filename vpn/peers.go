package vpn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/store"
	"github.com/homeedge/edge/vpn/clientconf"
	"github.com/homeedge/edge/vpn/wireguard"
)

// getPeer reads one peer and its ModRev; an absent peer is a 404 naming
// it.
func (s *Service) getPeer(ctx context.Context, name string) (storedPeer, int64, error) {
	p, modRev, err := s.peers.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return p, 0, ctlapi.Errorf(http.StatusNotFound, "no peer %q", name)
	}
	return p, modRev, err
}

// storedPeers reads the registry by name. The caller holds mu.
func (s *Service) storedPeers(ctx context.Context) (map[string]storedPeer, error) {
	items, _, err := s.peers.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("read peers: %w", err)
	}
	m := make(map[string]storedPeer, len(items))
	for _, it := range items {
		m[it.Name] = it.Value
	}
	return m, nil
}

// pickInterface returns the named interface, or the first one.
func (s *Service) pickInterface(name string) (*iface, error) {
	if name == "" {
		if len(s.cfg.Section.WireGuard) == 0 {
			return nil, ctlapi.Errorf(http.StatusConflict, "no WireGuard interface is configured (vpn.wireguard)")
		}
		name = s.cfg.Section.WireGuard[0].Interface
	}
	in := s.ifaces[name]
	if in == nil {
		var names []string
		for _, w := range s.cfg.Section.WireGuard {
			names = append(names, w.Interface)
		}
		return nil, ctlapi.Errorf(http.StatusNotFound, "--interface: no interface %q; vpn.wireguard has %s", name, strings.Join(names, ", "))
	}
	return in, nil
}

// expiresValue is how a log line shows an expiry: the time, or "never"
// for a peer without one (whose Expires is the zero time).
func expiresValue(t time.Time) slog.Value {
	if t.IsZero() {
		return slog.StringValue("never")
	}
	return slog.TimeValue(t)
}

// parseLength reads "30d", "12h": a length from now.
func parseLength(text string) (time.Duration, error) {
	d, err := config.ParseDuration(text)
	if err != nil {
		return 0, err
	}
	if d < time.Second {
		return 0, fmt.Errorf("%s is shorter than a second", text)
	}
	return d, nil
}

// resolveAccess reads the access entries of peer add --access (see
// access.go) against the site's networks; an error names the flag and
// the entry.
func (s *Service) resolveAccess(refs []string) ([]accessEntry, error) {
	var out []accessEntry
	for _, r := range refs {
		es, err := parseAccess(r, &s.cfg.Site)
		if err != nil {
			return nil, fmt.Errorf("--access %q: %w", r, err)
		}
		out = append(out, es...)
	}
	return out, nil
}

// addPeer registers a peer, puts it on its device, publishes its name and
// returns its client config. Without a public key edge-vpn makes the key
// pair and returns the private key in the config, once; it keeps only
// the public key.
func (s *Service) addPeer(ctx context.Context, req ctlapi.VPNPeerAdd, by string) (ctlapi.VPNPeerConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bad := func(format string, args ...any) (ctlapi.VPNPeerConfig, error) {
		return ctlapi.VPNPeerConfig{}, ctlapi.Errorf(http.StatusBadRequest, format, args...)
	}
	if !ValidPeerName(req.Name) {
		return bad("invalid peer name %q; %s", req.Name, peerNameRule)
	}
	in, err := s.pickInterface(req.Interface)
	if err != nil {
		return ctlapi.VPNPeerConfig{}, err
	}
	if req.Group != "" {
		if _, ok := in.cfg.Access.Groups[req.Group]; !ok {
			return bad("--group %q: unknown group; interface %s's access.groups has %s", req.Group, in.cfg.Interface, strings.Join(sortedKeys(in.cfg.Access.Groups), ", "))
		}
	}
	access, err := s.resolveAccess(req.Access)
	if err != nil {
		return bad("%v", err)
	}
	if req.QR != "" && req.QR != "terminal" && req.QR != "png" {
		return bad("qr %q: use terminal or png", req.QR)
	}
	stored, err := s.storedPeers(ctx)
	if err != nil {
		return ctlapi.VPNPeerConfig{}, err
	}
	if _, dup := stored[req.Name]; dup {
		return ctlapi.VPNPeerConfig{}, ctlapi.Errorf(http.StatusConflict, "peer %s exists; choose another name, or remove it first", req.Name)
	}
	var priv wireguard.Key
	var pub wireguard.Key
	if req.PublicKey != "" {
		if pub, err = wireguard.ParseKey(strings.TrimSpace(req.PublicKey)); err != nil {
			return bad("--pubkey: not a public key: %v", err)
		}
	} else {
		if priv, err = wireguard.GeneratePrivateKey(); err != nil {
			return ctlapi.VPNPeerConfig{}, err
		}
		pub = priv.PublicKey()
	}
	for _, other := range s.ifaces {
		if other.dev.PublicKey() == pub {
			return bad("public key %s is interface %s's own", pub, other.cfg.Interface)
		}
	}
	p := storedPeer{Name: req.Name, Interface: in.cfg.Interface, PublicKey: pub.String(), FullTunnel: req.FullTunnel,
		Group: req.Group, Access: access, Enabled: true, Created: s.now().UTC(), By: by}
	if req.PresharedKey {
		psk, err := wireguard.GeneratePresharedKey()
		if err != nil {
			return ctlapi.VPNPeerConfig{}, err
		}
		p.PresharedKey = psk.String()
	}
	if req.Expires != "" {
		d, err := parseLength(req.Expires)
		if err != nil {
			return bad("--expires: %v", err)
		}
		p.Expires = s.now().Add(d).UTC()
	}
	if p.Addresses, err = allocate(in.pool, in.router, usedAddrs(stored, "")); err != nil {
		return ctlapi.VPNPeerConfig{}, ctlapi.Errorf(http.StatusConflict, "%v", err)
	}
	if why := clash(stored, p); why != "" {
		return ctlapi.VPNPeerConfig{}, ctlapi.Errorf(http.StatusConflict, "%s", why)
	}
	if _, err := s.peers.Create(ctx, p.Name, p); err != nil {
		if errors.Is(err, store.ErrExists) {
			return ctlapi.VPNPeerConfig{}, ctlapi.Errorf(http.StatusConflict, "peer %s exists", p.Name)
		}
		return ctlapi.VPNPeerConfig{}, err
	}
	s.namesDirty = true
	if err := s.reconcile(ctx, "add"); err != nil {
		// The device refused the peer: take it out of the registry again,
		// so that nothing half-added remains.
		s.peers.Delete(ctx, p.Name)
		s.reconcile(ctx, "undo add")
		return ctlapi.VPNPeerConfig{}, fmt.Errorf("add peer %s: %w", p.Name, err)
	}
	s.metrics.changes.WithLabelValues("add").Inc()
	s.log.Info("peer added", "peer", p.Name, "interface", p.Interface, "addresses", p.Addresses, "public_key", p.PublicKey,
		"key_made_here", !priv.IsZero(), "full_tunnel", p.FullTunnel, "expires", expiresValue(p.Expires), "by", by)
	return s.peerConfig(p, priv, req.QR)
}

// peerConfig renders p's client config (with priv when it is known, only
// at add time) and the QR code asked for. The caller holds mu.
func (s *Service) peerConfig(p storedPeer, priv wireguard.Key, qr string) (ctlapi.VPNPeerConfig, error) {
	in := s.ifaces[p.Interface]
	if in == nil {
		return ctlapi.VPNPeerConfig{}, ctlapi.Errorf(http.StatusConflict, "peer %s is on interface %s, which is not configured", p.Name, p.Interface)
	}
	c := clientconf.Config{Name: p.Name, ServerPublicKey: in.dev.PublicKey().String(), PresharedKey: p.PresharedKey,
		Endpoint: in.cfg.Endpoint, MTU: in.cfg.Client.MTU, Keepalive: in.cfg.Client.Keepalive.D()}
	if !priv.IsZero() {
		c.PrivateKey = priv.String()
	}
	for _, a := range p.Addresses {
		c.Addresses = append(c.Addresses, netip.PrefixFrom(a, a.BitLen()))
	}
	c.DNS = in.cfg.Client.DNS
	if len(c.DNS) == 0 {
		c.DNS = in.router
	}
	c.DNSSearch = in.cfg.Client.Search
	if len(c.DNSSearch) == 0 && s.cfg.Site.LocalDomain != "" {
		c.DNSSearch = []string{s.cfg.Site.LocalDomain}
	}
	if p.FullTunnel {
		c.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	} else {
		c.AllowedIPs = s.splitTunnel(in)
	}
	if err := c.Validate(); err != nil {
		return ctlapi.VPNPeerConfig{}, fmt.Errorf("client config of %s: %w", p.Name, err)
	}
	out := ctlapi.VPNPeerConfig{Peer: s.apiPeer(p, nil), Config: c.Render(), PrivateKey: c.PrivateKey != ""}
	var err error
	switch qr {
	case "terminal":
		out.QRText, err = clientconf.QRTerminal(out.Config)
	case "png":
		out.QRPNG, err = clientconf.QRPNG(out.Config, 0)
	}
	return out, err
}

// splitTunnel is what a split-tunnel client routes through the tunnel:
// client.allowed_ips, or every network of site.networks and the pool.
func (s *Service) splitTunnel(in *iface) []netip.Prefix {
	var out []netip.Prefix
	refs := in.cfg.Client.AllowedIPs
	if len(refs) == 0 {
		for _, name := range slices.Sorted(maps.Keys(s.cfg.Site.Networks)) {
			refs = append(refs, config.NetRef(name))
		}
	}
	for _, r := range refs {
		ps, _ := r.Prefixes(&s.cfg.Site)
		out = append(out, ps...)
	}
	for _, p := range in.pool {
		if !slices.ContainsFunc(out, func(q netip.Prefix) bool { return q.Overlaps(p) }) {
			out = append(out, p)
		}
	}
	return out
}

// removePeer takes a peer off its device, then out of the registry: its
// addresses are free only once no device holds the peer.
func (s *Service) removePeer(ctx context.Context, name, by string) (ctlapi.VPNPeer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, modRev, err := s.getPeer(ctx, name)
	if err != nil {
		return ctlapi.VPNPeer{}, err
	}
	if p.Static {
		return ctlapi.VPNPeer{}, ctlapi.Errorf(http.StatusConflict, "peer %s is declared in the config (vpn.wireguard[].peers); remove it there and reload", name)
	}
	off := p
	off.Enabled, off.Disabled = false, "removing"
	if _, err := s.peers.Put(ctx, name, off, store.IfModRev(modRev)); err != nil {
		return ctlapi.VPNPeer{}, err
	}
	if err := s.reconcile(ctx, "remove"); err != nil {
		s.peers.Put(ctx, name, p)
		return ctlapi.VPNPeer{}, fmt.Errorf("remove peer %s: the device still holds it: %w", name, err)
	}
	if _, err := s.peers.Delete(ctx, name); err != nil {
		return ctlapi.VPNPeer{}, err
	}
	s.unpublishName(p.Name)
	s.metrics.changes.WithLabelValues("remove").Inc()
	s.log.Info("peer removed", "peer", name, "by", by)
	return s.apiPeer(p, nil), nil
}

// updatePeer enables, disables, renames or re-dates a peer.
func (s *Service) updatePeer(ctx context.Context, req ctlapi.VPNPeerUpdate, by string) (ctlapi.VPNPeer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, modRev, err := s.getPeer(ctx, req.Name)
	if err != nil {
		return ctlapi.VPNPeer{}, err
	}
	if p.Static && (req.Rename != "" || req.Expires != "") {
		return ctlapi.VPNPeer{}, ctlapi.Errorf(http.StatusConflict, "peer %s is declared in the config; rename or date it there", req.Name)
	}
	old := p
	if req.Enabled != nil {
		p.Enabled = *req.Enabled
		p.Disabled = ""
		if !p.Enabled {
			p.Disabled = "by " + by
		} else if !p.Expires.IsZero() && !p.Expires.After(s.now()) && req.Expires == "" {
			return ctlapi.VPNPeer{}, ctlapi.Errorf(http.StatusConflict, "peer %s expired at %s; give it a new expiry to enable it (--expires 30d or never)", p.Name, p.Expires.Format(time.DateTime))
		}
	}
	switch req.Expires {
	case "":
	case "never":
		p.Expires = time.Time{}
	default:
		d, err := parseLength(req.Expires)
		if err != nil {
			return ctlapi.VPNPeer{}, ctlapi.Errorf(http.StatusBadRequest, "--expires: %v", err)
		}
		p.Expires = s.now().Add(d).UTC()
		if p.Disabled == "expired" {
			p.Enabled, p.Disabled = true, ""
		}
	}
	rename := req.Rename != "" && req.Rename != p.Name
	if rename {
		if !ValidPeerName(req.Rename) {
			return ctlapi.VPNPeer{}, ctlapi.Errorf(http.StatusBadRequest, "invalid peer name %q; %s", req.Rename, peerNameRule)
		}
		p.Name = req.Rename
		ops := []store.Op{store.DeleteOp(peersPrefix+old.Name, store.IfModRev(modRev))}
		b, err := json.Marshal(p)
		if err != nil {
			return ctlapi.VPNPeer{}, err
		}
		put := store.PutOp(peersPrefix+p.Name, b, store.IfModRev(0))
		if _, err := s.store.Apply(ctx, append(ops, put)...); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return ctlapi.VPNPeer{}, ctlapi.Errorf(http.StatusConflict, "peer %s exists; choose another name", p.Name)
			}
			return ctlapi.VPNPeer{}, err
		}
		s.unpublishName(old.Name)
		s.namesDirty = true
	} else if _, err := s.peers.Put(ctx, p.Name, p, store.IfModRev(modRev)); err != nil {
		return ctlapi.VPNPeer{}, err
	}
	if err := s.reconcile(ctx, "update"); err != nil {
		return ctlapi.VPNPeer{}, err
	}
	s.metrics.changes.WithLabelValues("update").Inc()
	attrs := []any{"peer", p.Name}
	if rename {
		attrs = append(attrs, "renamed_from", old.Name)
	}
	s.log.Info("peer changed", append(attrs, "enabled", p.Enabled, "expires", expiresValue(p.Expires), "by", by)...)
	return s.apiPeer(p, s.deviceStatus()), nil
}

// deviceStatus is every device's peer status by public key. The caller
// holds mu.
func (s *Service) deviceStatus() map[string]wireguard.PeerStatus {
	m := map[string]wireguard.PeerStatus{}
	for _, in := range s.ifaces {
		st, err := in.dev.Peers()
		if err != nil {
			continue
		}
		for _, ps := range st {
			m[ps.PublicKey.String()] = ps
		}
	}
	return m
}

// listPeers returns every peer with its device status.
func (s *Service) listPeers(ctx context.Context) ([]ctlapi.VPNPeer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, err := s.storedPeers(ctx)
	if err != nil {
		return nil, err
	}
	st := s.deviceStatus()
	out := make([]ctlapi.VPNPeer, 0, len(stored))
	for _, name := range slices.Sorted(maps.Keys(stored)) {
		out = append(out, s.apiPeer(stored[name], st))
	}
	return out, nil
}

// showPeer returns one peer.
func (s *Service) showPeer(ctx context.Context, name string) (ctlapi.VPNPeer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, _, err := s.getPeer(ctx, name)
	if err != nil {
		return ctlapi.VPNPeer{}, err
	}
	return s.apiPeer(p, s.deviceStatus()), nil
}

// configOf prints a peer's client config again, without a private key.
func (s *Service) configOf(ctx context.Context, name, qr string) (ctlapi.VPNPeerConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, _, err := s.getPeer(ctx, name)
	if err != nil {
		return ctlapi.VPNPeerConfig{}, err
	}
	if qr != "" && qr != "terminal" && qr != "png" {
		return ctlapi.VPNPeerConfig{}, ctlapi.Errorf(http.StatusBadRequest, "qr %q: use terminal or png", qr)
	}
	return s.peerConfig(p, wireguard.Key{}, qr)
}

// apiPeer describes p, with its device status when st has it.
func (s *Service) apiPeer(p storedPeer, st map[string]wireguard.PeerStatus) ctlapi.VPNPeer {
	out := ctlapi.VPNPeer{Name: p.Name, Interface: p.Interface, PublicKey: p.PublicKey, FullTunnel: p.FullTunnel,
		PresharedKey: p.PresharedKey != "", Group: p.Group, Enabled: p.Enabled, Disabled: p.Disabled,
		Created: p.Created, By: p.By, Static: p.Static}
	for _, a := range p.Addresses {
		out.Addresses = append(out.Addresses, a.String())
		out.AllowedIPs = append(out.AllowedIPs, netip.PrefixFrom(a, a.BitLen()).String())
	}
	for _, r := range p.Routes {
		out.AllowedIPs = append(out.AllowedIPs, r.String())
	}
	for _, a := range s.accessOf(p) {
		out.Access = append(out.Access, a.String())
	}
	if s.names != nil {
		out.DNSName = s.names.fqdn(p.Name)
	}
	if !p.Expires.IsZero() {
		t := p.Expires
		out.Expires = &t
	}
	now := s.now()
	switch {
	case p.active(now):
		out.State = "active"
	case p.Enabled:
		out.State = "expired"
	default:
		out.State = "disabled"
	}
	if ps, ok := st[p.PublicKey]; ok {
		if ps.Endpoint.IsValid() {
			out.Endpoint = ps.Endpoint.String()
		}
		if !ps.LastHandshake.IsZero() {
			t := ps.LastHandshake.UTC()
			out.LastHandshake = &t
		}
		out.RxBytes, out.TxBytes = ps.RxBytes, ps.TxBytes
	} else if !p.LastSeen.IsZero() {
		t := p.LastSeen
		out.LastHandshake = &t
	}
	return out
}
