package dns

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/dns/zone"
)

// historyDepth is how many versions of each zone are kept for IXFR. Older
// (or, after a restart, any earlier) serials get a full transfer, which
// RFC 1995 allows.
const historyDepth = 32

// transfers serves AXFR and IXFR to configured secondaries and sends them
// NOTIFY when a zone changes.
type transfers struct {
	s *Server
	// mu guards history.
	mu      sync.Mutex
	history map[string][]zoneVersion
	notify  chan notifyJob
}

type zoneVersion struct {
	serial  uint32
	records []mdns.RR // without the SOA
}

type notifyJob struct {
	origin string
	serial uint32
	to     SecondaryConfig
}

func newTransfers(s *Server) *transfers {
	return &transfers{s: s, history: map[string][]zoneVersion{}, notify: make(chan notifyJob, 1024)}
}

// changed records new zone versions and queues NOTIFYs for them.
func (t *transfers) changed(old, rt *snapshot, changed map[string]uint32) {
	t.mu.Lock()
	for _, z := range rt.set.Zones() {
		h := t.history[z.Origin]
		if len(h) > 0 && h[len(h)-1].serial == z.SOA.Serial {
			continue
		}
		h = append(h, zoneVersion{serial: z.SOA.Serial, records: z.Records()[1:]})
		if len(h) > historyDepth {
			h = h[len(h)-historyDepth:]
		}
		t.history[z.Origin] = h
	}
	t.mu.Unlock()
	for origin, serial := range changed {
		for _, sec := range rt.cfg.Section.Transfers.Secondaries {
			if sec.Notify != nil && !*sec.Notify || !secondaryHas(sec, origin) {
				continue
			}
			select {
			case t.notify <- notifyJob{origin: origin, serial: serial, to: sec}:
			default:
				t.s.metrics.notifies.WithLabelValues("dropped").Inc()
			}
		}
	}
}

func secondaryHas(sec SecondaryConfig, origin string) bool {
	return len(sec.Zones) == 0 || slices.ContainsFunc(sec.Zones, func(z string) bool { return zone.Fqdn(z) == origin })
}

// run sends queued NOTIFYs until ctx ends.
func (t *transfers) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-t.notify:
			t.sendNotify(ctx, job)
		}
	}
}

// sendNotify sends one NOTIFY (RFC 1996), signed with the secondary's key,
// retrying a few times.
func (t *transfers) sendNotify(ctx context.Context, job notifyJob) {
	m := new(mdns.Msg)
	m.SetNotify(job.origin)
	if z := t.s.rt.Load().set.Zone(job.origin); z != nil {
		m.Answer = []mdns.RR{z.SOA}
	}
	m.SetTsig(mdns.Fqdn(job.to.Key), t.s.rt.Load().keys[mdns.Fqdn(job.to.Key)].algorithm, 300, time.Now().Unix())
	c := &mdns.Client{Net: "udp", Timeout: 2 * time.Second, TsigProvider: keyring{t.s}}
	var err error
	for attempt := range 3 {
		if ctx.Err() != nil {
			return
		}
		var r *mdns.Msg
		r, _, err = c.ExchangeContext(ctx, m, job.to.Address)
		if err == nil && r.Rcode == mdns.RcodeSuccess {
			t.s.metrics.notifies.WithLabelValues("ok").Inc()
			t.s.log.Info("notify sent", "zone", job.origin, "serial", job.serial, "secondary", job.to.Address)
			return
		}
		if err == nil {
			err = rcodeError(r.Rcode)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt+1) * time.Second):
		}
	}
	t.s.metrics.notifies.WithLabelValues("failed").Inc()
	t.s.log.Warn("notify failed", "zone", job.origin, "secondary", job.to.Address, "err", err)
}

type rcodeError int

func (e rcodeError) Error() string { return "answered " + rcodeLabel(int(e)) }

// serve answers AXFR and IXFR: only over TCP (IXFR over UDP gets TC),
// only to a request signed with a secondary's key that may have the zone.
func (t *transfers) serve(w mdns.ResponseWriter, req *mdns.Msg, rt *snapshot, src netip.Addr, proto string) {
	q := req.Question[0]
	kind := "axfr"
	if q.Qtype == mdns.TypeIXFR {
		kind = "ixfr"
	}
	refuse := func(rcode int, why string) {
		t.s.metrics.transfers.WithLabelValues(kind, "refused").Inc()
		t.s.log.Warn("transfer refused", "zone", q.Name, "client", src, "type", kind, "reason", why)
		resp := new(mdns.Msg).SetRcode(req, rcode)
		if t := req.IsTsig(); t != nil && w.TsigStatus() == nil {
			resp.SetTsig(t.Hdr.Name, t.Algorithm, t.Fudge, time.Now().Unix())
		}
		w.WriteMsg(resp)
	}
	if tt := req.IsTsig(); tt != nil && w.TsigStatus() != nil {
		t.s.metrics.transfers.WithLabelValues(kind, "refused").Inc()
		t.s.log.Warn("transfer refused", "zone", q.Name, "client", src, "type", kind, "reason", "tsig: "+w.TsigStatus().Error())
		tsigErrorReply(w, req, new(mdns.Msg).SetRcode(req, mdns.RcodeNotAuth), w.TsigStatus())
		return
	}
	key := signedBy(w, req, rt)
	if key == nil {
		refuse(mdns.RcodeRefused, "not signed with a known key")
		return
	}
	origin := zone.Lower(q.Name)
	z := rt.set.Zone(origin)
	if z == nil {
		refuse(mdns.RcodeNotAuth, "not a zone of ours")
		return
	}
	allowed := false
	for _, sec := range rt.cfg.Section.Transfers.Secondaries {
		if mdns.Fqdn(sec.Key) == key.name && secondaryHas(sec, origin) {
			allowed = true
		}
	}
	if !allowed {
		refuse(mdns.RcodeRefused, "key "+key.name+" may not transfer this zone")
		return
	}
	if proto == "udp" {
		resp := new(mdns.Msg)
		resp.SetReply(req)
		resp.Truncated = true
		resp.SetTsig(key.name, key.algorithm, 300, time.Now().Unix())
		w.WriteMsg(resp)
		return
	}
	var rrs []mdns.RR
	if kind == "ixfr" {
		rrs = t.ixfr(z, req)
	}
	if rrs == nil {
		kind = "axfr"
		rrs = append(append([]mdns.RR{z.SOA}, z.Records()[1:]...), z.SOA)
	}
	ch := make(chan *mdns.Envelope)
	tr := new(mdns.Transfer)
	done := make(chan error, 1)
	go func() { done <- tr.Out(w, req, ch) }()
	for i := 0; i < len(rrs); i += 500 {
		ch <- &mdns.Envelope{RR: rrs[i:min(i+500, len(rrs))]}
	}
	close(ch)
	if err := <-done; err != nil {
		t.s.metrics.transfers.WithLabelValues(kind, "error").Inc()
		t.s.log.Warn("transfer failed", "zone", origin, "client", src, "err", err)
		return
	}
	t.s.metrics.transfers.WithLabelValues(kind, "ok").Inc()
	t.s.log.Info("zone transferred", "zone", origin, "client", src, "type", kind, "serial", z.SOA.Serial, "key", key.name)
}

// ixfr returns the incremental answer (RFC 1995) from the client's serial
// to the current one, or nil when only a full transfer can do.
func (t *transfers) ixfr(z *zone.Zone, req *mdns.Msg) []mdns.RR {
	if len(req.Ns) == 0 {
		return nil
	}
	soa, ok := req.Ns[0].(*mdns.SOA)
	if !ok {
		return nil
	}
	if soa.Serial == z.SOA.Serial {
		return []mdns.RR{z.SOA}
	}
	t.mu.Lock()
	hist := t.history[z.Origin]
	t.mu.Unlock()
	i := slices.IndexFunc(hist, func(v zoneVersion) bool { return v.serial == soa.Serial })
	if i < 0 || hist[len(hist)-1].serial != z.SOA.Serial {
		return nil
	}
	out := []mdns.RR{z.SOA}
	for ; i+1 < len(hist); i++ {
		from, to := hist[i], hist[i+1]
		fromSOA := *z.SOA
		fromSOA.Serial = from.serial
		toSOA := *z.SOA
		toSOA.Serial = to.serial
		out = append(out, &fromSOA)
		out = append(out, difference(from.records, to.records)...)
		out = append(out, &toSOA)
		out = append(out, difference(to.records, from.records)...)
	}
	return append(out, z.SOA)
}

// difference returns the records of a that are not in b.
func difference(a, b []mdns.RR) []mdns.RR {
	in := make(map[string]bool, len(b))
	for _, rr := range b {
		in[rr.String()] = true
	}
	var out []mdns.RR
	for _, rr := range a {
		if !in[rr.String()] {
			out = append(out, rr)
		}
	}
	return out
}
