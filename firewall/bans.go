package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/store"
	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// storedBan is a run-time ban as the state store keeps it, under its
// address.
type storedBan struct {
	Addr netip.Addr `json:"addr"`
	// Expires is when the ban ends; zero for a ban without end.
	Expires time.Time `json:"expires,omitzero"`
	Comment string    `json:"comment,omitempty"`
	Created time.Time `json:"created"`
	By      string    `json:"by,omitempty"`
}

// minBan is the shortest ban: shorter ones are typing mistakes (--for 5
// means nothing).
const minBan = time.Second

// activeBans returns the stored bans that have not ended.
func (s *Service) activeBans(ctx context.Context) ([]storedBan, error) {
	items, _, err := s.bans.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("read bans from the state store: %w", err)
	}
	now := s.clock.Now()
	out := make([]storedBan, 0, len(items))
	for _, it := range items {
		if b := it.Value; b.Expires.IsZero() || b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out, nil
}

// restoreBans puts the stored bans into the kernel's ban sets with the
// time each has left (after a reboot the boot ruleset has none; after a
// restart they are there already, and this refreshes them to the store's
// times). The caller holds mu. A failure is logged: the bans stay stored
// and the next start tries again.
func (s *Service) restoreBans(ctx context.Context) {
	bans, err := s.activeBans(ctx)
	if err != nil {
		s.log.Error("bans not restored", "err", err)
		return
	}
	now := s.clock.Now()
	byFamily := map[*ruleset.Set][]ruleset.Element{}
	for _, b := range bans {
		set, err := s.banSetFor(b.Addr)
		if err != nil {
			s.log.Error("bans not restored", "err", err)
			return
		}
		e := ruleset.Element{Prefix: netip.PrefixFrom(b.Addr, b.Addr.BitLen()), Comment: banComment(b)}
		if !b.Expires.IsZero() {
			if e.Timeout = b.Expires.Sub(now).Round(time.Second); e.Timeout < time.Second {
				continue
			}
		}
		byFamily[set] = append(byFamily[set], e)
	}
	n := 0
	for set, els := range byFamily {
		if err := s.kernel.UpdateSet(set, els, nil); err != nil {
			s.log.Error("bans not restored", "set", set.Name, "err", err)
			continue
		}
		n += len(els)
	}
	if n > 0 {
		s.log.Info("bans restored from the state store", "bans", n)
	}
}

// countBans counts active bans, static ones included; the caller holds
// mu.
func (s *Service) countBans() (int, error) {
	bans, err := s.activeBans(context.Background())
	if err != nil {
		return 0, err
	}
	n := len(bans)
	for _, a := range s.cur.cfg.Section.Bans.Static {
		if !slices.ContainsFunc(bans, func(b storedBan) bool { return b.Addr == a.Unmap() }) {
			n++
		}
	}
	return n, nil
}

// expireBans deletes ended bans from the store, each only if nobody
// refreshed it meanwhile.
func (s *Service) expireBans(ctx context.Context) {
	items, _, err := s.bans.List(ctx)
	if err != nil {
		s.log.Warn("expire bans: read the state store", "err", err)
		return
	}
	now := s.clock.Now()
	for _, it := range items {
		if b := it.Value; !b.Expires.IsZero() && !b.Expires.After(now) {
			if _, err := s.bans.Delete(ctx, it.Name, store.IfModRev(it.ModRev)); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("expire bans: delete", "addr", it.Name, "err", err)
				continue
			}
			s.log.Info("ban ended", "addr", it.Name)
		}
	}
}

// parseBanAddr reads an address to ban and refuses what a ban cannot
// mean.
func parseBanAddr(text string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(text))
	if err != nil {
		if p, perr := netip.ParsePrefix(text); perr == nil {
			return netip.Addr{}, fmt.Errorf("%s is a network; bans take one address (put networks in a set under firewall.sets)", p)
		}
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", text)
	}
	a = a.Unmap()
	switch {
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%s: an address with a zone cannot be banned", a)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
		return netip.Addr{}, fmt.Errorf("%s is an unspecified, loopback or multicast address; it cannot be banned", a)
	}
	return a, nil
}

// banLength reads a ban's length against the config's limits; zero is a
// ban without end.
func banLength(text string, b fwconfig.Bans) (time.Duration, error) {
	max := b.MaxTimeout.D()
	switch strings.TrimSpace(text) {
	case "":
		return b.DefaultTimeout.D(), nil
	case "forever", "permanent", "0":
		if max > 0 {
			return 0, fmt.Errorf("bans.max_timeout is %s, so a ban must end; ban for at most that, or list the address under bans.static", config.Duration(max))
		}
		return 0, nil
	}
	var d config.Duration
	if err := d.UnmarshalText([]byte(text)); err != nil {
		return 0, fmt.Errorf("ban length %q: %v", text, err)
	}
	switch {
	case d.D() < minBan:
		return 0, fmt.Errorf("ban length %s is shorter than %s", d, minBan)
	case max > 0 && d.D() > max:
		return 0, fmt.Errorf("ban length %s is longer than bans.max_timeout (%s)", d, config.Duration(max))
	}
	return d.D(), nil
}

// banSetFor returns the ban set of a's family in the loaded ruleset.
func (s *Service) banSetFor(a netip.Addr) (*ruleset.Set, error) {
	name := fwconfig.BanSet + "_v6"
	if a.Is4() {
		name = fwconfig.BanSet + "_v4"
	}
	set := s.setByName(name)
	if set == nil {
		return nil, fmt.Errorf("the loaded ruleset has no set %s", name)
	}
	return set, nil
}

// ban adds or refreshes a run-time ban: first in the store, then in the
// kernel's ban set; if the kernel refuses, the store goes back to what it
// held, so nothing half-done remains.
func (s *Service) ban(ctx context.Context, req ctlapi.FWBanRequest, by string) (ctlapi.FWBanResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := &s.cur.cfg.Section
	addr, err := parseBanAddr(req.Addr)
	if err != nil {
		return ctlapi.FWBanResult{}, ctlapi.Errorf(http.StatusBadRequest, "%v", err)
	}
	if slices.ContainsFunc(cfg.Bans.Static, func(a netip.Addr) bool { return a.Unmap() == addr }) {
		return ctlapi.FWBanResult{}, ctlapi.Errorf(http.StatusConflict, "%s is banned for good by the config (firewall.bans.static)", addr)
	}
	d, err := banLength(req.For, cfg.Bans)
	if err != nil {
		return ctlapi.FWBanResult{}, ctlapi.Errorf(http.StatusBadRequest, "%v", err)
	}
	if len(req.Comment) > 100 || strings.ContainsAny(req.Comment, "\"\n\\") {
		return ctlapi.FWBanResult{}, ctlapi.Errorf(http.StatusBadRequest, "a ban comment has at most 100 characters and no quotes, backslashes or newlines")
	}
	set, err := s.banSetFor(addr)
	if err != nil {
		return ctlapi.FWBanResult{}, err
	}
	now := s.clock.Now()
	key := addr.String()
	old, modRev, err := s.bans.Get(ctx, key)
	exists := err == nil && (old.Expires.IsZero() || old.Expires.After(now))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return ctlapi.FWBanResult{}, fmt.Errorf("read ban %s: %w", key, err)
	}
	b := storedBan{Addr: addr, Comment: req.Comment, Created: now.UTC(), By: by}
	if exists {
		b.Created = old.Created
		if b.Comment == "" {
			b.Comment = old.Comment
		}
	}
	if d > 0 {
		b.Expires = now.Add(d).UTC()
	}
	if _, err := s.bans.Put(ctx, key, b, store.IfModRev(modRev)); err != nil {
		return ctlapi.FWBanResult{}, fmt.Errorf("store ban %s: %w", key, err)
	}
	elem := ruleset.Element{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Timeout: d, Comment: banComment(b)}
	if err := s.kernel.UpdateSet(set, []ruleset.Element{elem}, nil); err != nil {
		s.restoreBan(ctx, key, old, modRev != 0)
		return ctlapi.FWBanResult{}, fmt.Errorf("ban %s: %w", addr, err)
	}
	s.metrics.banChanges.WithLabelValues("ban").Inc()
	s.log.Info("banned", "addr", addr, "for", config.Duration(d), "refreshed", exists, "by", by, "comment", b.Comment)
	return ctlapi.FWBanResult{Ban: apiBan(b, true), Refreshed: exists, Warnings: s.banWarnings(addr)}, nil
}

// restoreBan puts the store back after the kernel refused a change.
func (s *Service) restoreBan(ctx context.Context, key string, old storedBan, existed bool) {
	var err error
	if existed {
		_, err = s.bans.Put(ctx, key, old)
	} else {
		_, err = s.bans.Delete(ctx, key)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("could not undo the stored ban after the kernel refused it", "addr", key, "err", err)
	}
}

// banComment is the kernel element's comment: the operator's, else who
// made the ban.
func banComment(b storedBan) string {
	if b.Comment != "" {
		return b.Comment
	}
	return "edgectl " + b.By
}

// banWarnings says when a ban cannot take effect: the address is in a
// zone the ban set does not cover.
func (s *Service) banWarnings(addr netip.Addr) []string {
	cfg := &s.cur.cfg.Section
	var out []string
	for _, name := range cfg.ZoneNames() {
		if slices.Contains(cfg.Bans.Zones, name) {
			continue
		}
		v4, v6 := fwconfig.Prefixes(&s.cur.cfg.Site, cfg.Zones[name].Networks)
		for _, p := range append(v4, v6...) {
			if p.Contains(addr) {
				out = append(out, fmt.Sprintf("%s is in zone %s (%s), which bans do not cover (firewall.bans.zones: %s); traffic from it there is not dropped",
					addr, name, p, strings.Join(cfg.Bans.Zones, ", ")))
				break
			}
		}
	}
	return out
}

// unban lifts a run-time ban from the store and the kernel.
func (s *Service) unban(ctx context.Context, req ctlapi.FWUnbanRequest, by string) (ctlapi.FWBanResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := parseBanAddr(req.Addr)
	if err != nil {
		return ctlapi.FWBanResult{}, ctlapi.Errorf(http.StatusBadRequest, "%v", err)
	}
	if slices.ContainsFunc(s.cur.cfg.Section.Bans.Static, func(a netip.Addr) bool { return a.Unmap() == addr }) {
		return ctlapi.FWBanResult{}, ctlapi.Errorf(http.StatusConflict, "%s is banned by the config (firewall.bans.static); remove it there and reload", addr)
	}
	set, err := s.banSetFor(addr)
	if err != nil {
		return ctlapi.FWBanResult{}, err
	}
	key := addr.String()
	old, modRev, err := s.bans.Get(ctx, key)
	inStore := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return ctlapi.FWBanResult{}, fmt.Errorf("read ban %s: %w", key, err)
	}
	inKernel := false
	live, err := s.kernel.SetElements(set.Name)
	if err != nil {
		return ctlapi.FWBanResult{}, err
	}
	for _, e := range live {
		if e.Prefix.Addr() == addr {
			inKernel = true
		}
	}
	if !inStore && !inKernel {
		return ctlapi.FWBanResult{}, ctlapi.Errorf(http.StatusNotFound, "%s is not banned", addr)
	}
	if inStore {
		if _, err := s.bans.Delete(ctx, key, store.IfModRev(modRev)); err != nil {
			return ctlapi.FWBanResult{}, fmt.Errorf("remove ban %s: %w", key, err)
		}
	}
	if err := s.kernel.UpdateSet(set, nil, []ruleset.Element{{Prefix: netip.PrefixFrom(addr, addr.BitLen())}}); err != nil {
		if inStore {
			s.restoreBan(ctx, key, old, true)
		}
		return ctlapi.FWBanResult{}, fmt.Errorf("unban %s: %w", addr, err)
	}
	s.metrics.banChanges.WithLabelValues("unban").Inc()
	s.log.Info("unbanned", "addr", addr, "by", by)
	if !inStore {
		old = storedBan{Addr: addr}
	}
	return ctlapi.FWBanResult{Ban: apiBan(old, false)}, nil
}

// listBans returns the config's static bans and the run-time ones, each
// marked active when the kernel's ban set holds it.
func (s *Service) listBans(ctx context.Context) ([]ctlapi.FWBan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[netip.Addr]nft.SetElement{}
	for _, name := range []string{fwconfig.BanSet + "_v4", fwconfig.BanSet + "_v6"} {
		els, err := s.kernel.SetElements(name)
		if err != nil {
			return nil, err
		}
		for _, e := range els {
			live[e.Prefix.Addr()] = e
		}
	}
	var out []ctlapi.FWBan
	for _, a := range s.cur.cfg.Section.Bans.Static {
		a = a.Unmap()
		_, ok := live[a]
		out = append(out, ctlapi.FWBan{Addr: a.String(), Source: "config", Active: ok})
	}
	bans, err := s.activeBans(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range bans {
		_, ok := live[b.Addr]
		out = append(out, apiBan(b, ok))
	}
	slices.SortFunc(out, func(a, b ctlapi.FWBan) int {
		return netip.MustParseAddr(a.Addr).Compare(netip.MustParseAddr(b.Addr))
	})
	return out, nil
}

func apiBan(b storedBan, active bool) ctlapi.FWBan {
	out := ctlapi.FWBan{Addr: b.Addr.String(), Source: "runtime", Comment: b.Comment, Created: b.Created, By: b.By, Active: active}
	if !b.Expires.IsZero() {
		t := b.Expires
		out.Expires = &t
	}
	return out
}
