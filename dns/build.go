package dns

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/dns/rrl"
	"github.com/homeedge/edge/dns/zone"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/store"
	"github.com/homeedge/edge/lb/health"
)

// A runtime is made in two steps, as the runner's reload contract asks
// (daemon.Service): prepare reads, opens and builds everything that can
// fail, and nobody can tell that it ran; commit puts the result in place
// and cannot fail. New is a reload's prepare, the bind, and the commit
// of generation 1. A record change (admin API, RFC 2136) prepares with
// the records it is about to store, stores them together with the zones'
// new serials in one transaction, and commits only once that succeeded.

// prepared is a runtime that prepare built, not yet in place.
type prepared struct {
	rt *snapshot
	// targets are the health checks of rt's records.
	targets []health.Target
	// zones are the serials of every zone of rt, for Server.given.
	zones map[string]storedSerial
	// serials are the ones to store: new serials, and ones an earlier
	// commit failed to store.
	serials map[string]storedSerial
	// changed are the zones whose serial is new, for NOTIFY.
	changed map[string]uint32
	// parts are the GeoIP databases, the resolver and the query log of a
	// reload; a record change keeps those it has.
	parts  daemon.Change
	reload bool
}

func (p *prepared) abort() { p.parts.Release() }

// prepareReload prepares the runtime of cfg and the stored records.
func (s *Server) prepareReload(cfg *config.File[Config]) (*prepared, error) {
	if err := s.faults.Step("read records"); err != nil {
		return nil, err
	}
	items, _, err := s.records.List(context.Background())
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	records := make(map[string]storedRecord, len(items))
	for _, it := range items {
		records[it.Name] = it.Value
	}
	return s.prepare(cfg, records, true)
}

// prepare builds the runtime of cfg and records (by store name) and, for
// a reload, opens what the config names (GeoIP databases, the resolver,
// the query log). It reads the store but writes nothing: the serials it
// computes are stored by the commit. The caller holds buildMu.
func (s *Server) prepare(cfg *config.File[Config], records map[string]storedRecord, reload bool) (_ *prepared, err error) {
	var parts daemon.Parts
	defer func() {
		if err != nil {
			parts.Abort()
		}
	}()
	var dynamic []mdns.RR
	for _, name := range slices.Sorted(maps.Keys(records)) {
		rr, err := mdns.NewRR(records[name].RR)
		if err != nil || rr == nil {
			s.log.Warn("stored record unreadable; skipped", "record", name, "err", err)
			continue
		}
		dynamic = append(dynamic, rr)
	}
	if err := s.faults.Step("read serials"); err != nil {
		return nil, err
	}
	stored, err := s.storedSerials()
	if err != nil {
		return nil, err
	}
	if reload {
		geo, err := s.prepareGeoIP(cfg.Section.GeoIP)
		if err != nil {
			return nil, err
		}
		parts.Add(geo)
		fwd, err := s.prepareForwarder(cfg.Section.Upstreams)
		if err != nil {
			return nil, err
		}
		parts.Add(fwd)
	}

	if err := s.faults.Step("build zones"); err != nil {
		return nil, err
	}
	p := &prepared{zones: map[string]storedSerial{}, serials: map[string]storedSerial{}, changed: map[string]uint32{}, reload: reload}
	now := time.Now()
	in := cfg.Section.buildInput(&cfg.Site, dynamic)
	in.Locate = func(path string) string {
		if pos, ok := cfg.Pos[cfg.Name+"."+path]; ok && cfg.Path != "" {
			return fmt.Sprintf("%s:%d", cfg.Path, pos.Line)
		}
		return ""
	}
	in.Serial = func(origin string, h uint64) uint32 {
		st, isNew := s.serialFor(stored, origin, h, now)
		p.zones[origin] = st
		if prev, ok := stored[origin]; !ok || prev != st {
			p.serials[origin] = st
		}
		if isNew {
			p.changed[origin] = st.Serial
		}
		return st.Serial
	}
	set, err := zone.Build(in)
	if err != nil {
		return nil, err
	}
	keys, err := s.readKeys(cfg.Section.Updates)
	if err != nil {
		return nil, err
	}
	rt := &snapshot{cfg: cfg, set: set, inside: cfg.Section.insidePrefixes(&cfg.Site), keys: keys, checked: map[mdns.RR]string{}}
	prev := s.rt.Load()
	if prev != nil {
		rt.generation = prev.generation
	}
	// Unchanged limits keep their counts across a reload.
	if prev != nil && prev.limiter.Config() == cfg.Section.RRL {
		rt.limiter = prev.limiter
	} else {
		rt.limiter = rrl.New(cfg.Section.RRL)
	}
	for _, c := range set.Checked() {
		addr := addrOfRR(c.RR)
		key := c.RR.Header().Name + " " + mdns.TypeToString[c.RR.Header().Rrtype] + " " + addr.String()
		rt.checked[c.RR] = key
		p.targets = append(p.targets, health.Target{Key: key, Addr: addr, Check: *c.Check})
	}
	if reload {
		ql, err := s.prepareQueryLog(cfg.Section.QueryLog)
		if err != nil {
			return nil, err
		}
		parts.Add(ql)
	}
	p.rt = rt
	p.parts = parts.Change()
	return p, nil
}

// readKeys reads the TSIG keys, from their files where they have one.
func (s *Server) readKeys(cfg UpdatesConfig) (map[string]*tsigKey, error) {
	keys := map[string]*tsigKey{}
	if len(cfg.Keys) == 0 {
		return keys, nil
	}
	if err := s.faults.Step("read tsig keys"); err != nil {
		return nil, err
	}
	for _, k := range cfg.Keys {
		secret, err := k.secret()
		if err != nil {
			return nil, err
		}
		keys[mdns.Fqdn(k.Name)] = &tsigKey{name: mdns.Fqdn(k.Name), algorithm: tsigAlgorithms[k.Algorithm], secret: secret, zones: fqdns(k.Zones)}
	}
	return keys, nil
}

// prepareQueryLog opens the query log of cfg; the commit swaps it in
// and closes the old one. The log is opened anew on every reload, so a
// file that logrotate moved is let go.
func (s *Server) prepareQueryLog(cfg QueryLogConfig) (daemon.Change, error) {
	if cfg.Path != "" && cfg.Sample != 0 {
		if err := s.faults.Step("open query log"); err != nil {
			return daemon.Change{}, err
		}
	}
	ql, err := openQueryLog(cfg)
	if err != nil {
		return daemon.Change{}, err
	}
	return daemon.Change{
		Commit: func(int64) {
			ql.start()
			s.qlog.Swap(ql).close()
		},
		Abort: ql.discard,
	}, nil
}

// commit puts p in place as config generation gen (0 for a record
// change, which keeps the generation). The caller holds buildMu.
//
// Health checks for new targets start (or carry on, for unchanged ones)
// before the new snapshot answers, so a first answer is never judged on
// nothing.
func (s *Server) commit(p *prepared, gen int64) {
	p.parts.Apply(gen)
	if p.reload {
		s.fcache.SetConfig(p.rt.cfg.Section.Cache)
	}
	if gen > 0 {
		p.rt.generation = gen
	}
	s.storeSerials(p.serials)
	s.given = p.zones
	s.health.Set(p.targets)
	old := s.rt.Swap(p.rt)
	s.cache.Store(newAnswerCache(s.metrics.cacheHits))
	s.metrics.zones.Set(float64(len(p.rt.set.Zones())))
	for _, z := range p.rt.set.Zones() {
		s.metrics.serial.WithLabelValues(z.Origin).Set(float64(z.SOA.Serial))
	}
	if old != nil {
		for _, z := range old.set.Zones() {
			if p.rt.set.Zone(z.Origin) == nil {
				s.metrics.serial.DeleteLabelValues(z.Origin)
			}
		}
		if len(p.changed) > 0 {
			reason := "reload"
			if !p.reload {
				reason = "records"
			}
			s.log.Info("zones changed", "reason", reason, "zones", len(p.changed))
		}
	}
	s.xfr.changed(old, p.rt, p.changed)
}

// Zone serials. A zone's serial changes exactly when its content does,
// never goes down, and follows the clock: a new serial is larger than
// the last one and at least the current Unix time, so a serial given
// before the state directory was lost is still exceeded. Serials are
// computed while preparing, from the store and from the serials of the
// last commit (given), and stored by the commit: a prepare that fails
// leaves the store as it was. A record change stores them in the same
// transaction as its records. A reload stores them in its commit, which
// cannot fail: when that write fails it is logged and counted
// (edge_dns_serial_store_failures_total), the zones keep answering with
// the new serials, and because given holds them the next prepare neither
// hands out a lower one nor forgets to store them again. Only a restart
// before that retry forgets a serial given; the clock rule still puts the
// next one above it, unless changes in quick succession had run the
// serials ahead of the clock by more than the restart took.

// storedSerials reads every zone's stored serial.
func (s *Server) storedSerials() (map[string]storedSerial, error) {
	items, _, err := s.serials.List(context.Background())
	if err != nil {
		return nil, fmt.Errorf("read zone serials: %w", err)
	}
	out := make(map[string]storedSerial, len(items))
	for _, it := range items {
		out[originOfKey(it.Name)] = it.Value
	}
	return out, nil
}

// serialFor returns the serial for zone origin with content hash h: the
// last one when the content is unchanged, else a new one (true).
func (s *Server) serialFor(stored map[string]storedSerial, origin string, h uint64, now time.Time) (storedSerial, bool) {
	last, ok := stored[origin]
	if g, given := s.given[origin]; given && (!ok || g.Serial > last.Serial) {
		last, ok = g, true
	}
	if ok && last.Hash == h {
		return last, false
	}
	return storedSerial{Hash: h, Serial: max(last.Serial+1, uint32(now.Unix()))}, true
}

// serialOps are the store operations that write serials.
func serialOps(serials map[string]storedSerial) ([]store.Op, error) {
	ops := make([]store.Op, 0, len(serials))
	for origin, st := range serials {
		b, err := encodeJSON(st)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.PutOp("serials/"+serialKey(origin), b))
	}
	return ops, nil
}

// storeSerials writes serials at commit time, where a failure can only
// be logged and counted (see above).
func (s *Server) storeSerials(serials map[string]storedSerial) {
	if len(serials) == 0 {
		return
	}
	ops, err := serialOps(serials)
	if err == nil {
		_, err = s.store.Apply(context.Background(), ops...)
	}
	if err != nil {
		s.metrics.serialStoreFailures.Inc()
		s.log.Error("zone serials not stored; they are served and stored with the next change", "zones", len(serials), "err", err)
	}
}

// recordEdit is a change of the stored records, by store name.
type recordEdit struct {
	put map[string]storedRecord
	// del are the records to delete, with the ModRev each must still
	// have.
	del map[string]int64
}

// changeRecords lists the stored records and asks edit for a change of
// them; then it prepares the runtime the changed records make, stores
// the change and the zones' new serials in one transaction, and commits.
// When any step fails nothing has changed. An edit that changes nothing
// returns early.
func (s *Server) changeRecords(ctx context.Context, edit func([]store.Item[storedRecord]) (recordEdit, error)) error {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	if err := s.faults.Step("read records"); err != nil {
		return err
	}
	items, _, err := s.records.List(ctx)
	if err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	e, err := edit(items)
	if err != nil || len(e.put)+len(e.del) == 0 {
		return err
	}
	records := make(map[string]storedRecord, len(items)+len(e.put))
	for _, it := range items {
		records[it.Name] = it.Value
	}
	var ops []store.Op
	for name, rev := range e.del {
		delete(records, name)
		ops = append(ops, store.DeleteOp("records/"+name, store.IfModRev(rev)))
	}
	for name, r := range e.put {
		records[name] = r
		b, err := encodeJSON(r)
		if err != nil {
			return err
		}
		ops = append(ops, store.PutOp("records/"+name, b))
	}
	p, err := s.prepare(s.rt.Load().cfg, records, false)
	if err != nil {
		return err
	}
	sops, err := serialOps(p.serials)
	if err == nil {
		err = s.faults.Step("store records")
	}
	if err == nil {
		_, err = s.store.Apply(ctx, append(ops, sops...)...)
	}
	if err != nil {
		p.abort()
		if errors.Is(err, store.ErrConflict) {
			return errRecordsChanged
		}
		return fmt.Errorf("store records: %w", err)
	}
	p.serials = nil // stored above
	s.commit(p, 0)
	return nil
}
