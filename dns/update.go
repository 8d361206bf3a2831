package dns

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/dns/zone"
	"github.com/homeedge/edge/internal/store"
)

// update applies an RFC 2136 UPDATE signed with a TSIG key allowed for the
// zone. Prerequisites are checked against the zone as outside clients see
// it; changes are stored in one transaction. Names the config declares
// cannot be changed (REFUSED, and the log says which).
func (s *Server) update(w mdns.ResponseWriter, req *mdns.Msg, rt *snapshot, src netip.Addr) {
	q := req.Question[0]
	origin := zone.Lower(q.Name)
	respond := func(rcode int, result, why string) {
		resp := new(mdns.Msg).SetRcode(req, rcode)
		if t := req.IsTsig(); t != nil && w.TsigStatus() == nil {
			resp.SetTsig(t.Hdr.Name, t.Algorithm, t.Fudge, time.Now().Unix())
		}
		w.WriteMsg(resp)
		s.metrics.updates.WithLabelValues(result).Inc()
		if result == "applied" {
			s.log.Info("update applied", "zone", origin, "client", src, "key", req.IsTsig().Hdr.Name, "changes", len(req.Ns))
		} else {
			s.log.Warn("update refused", "zone", origin, "client", src, "rcode", rcodeLabel(rcode), "reason", why)
		}
	}
	if t := req.IsTsig(); t == nil {
		respond(mdns.RcodeRefused, "refused", "not signed; updates need a TSIG key")
		return
	} else if err := w.TsigStatus(); err != nil {
		// RFC 8945 §5.2: a bad signature or unknown key is NOTAUTH, with
		// the TSIG error in an unsigned TSIG record.
		tsigErrorReply(w, req, new(mdns.Msg).SetRcode(req, mdns.RcodeNotAuth), err)
		s.metrics.updates.WithLabelValues("badkey").Inc()
		s.log.Warn("update refused", "zone", origin, "client", src, "key", t.Hdr.Name, "reason", "tsig: "+err.Error())
		return
	}
	key := signedBy(w, req, rt)
	if key == nil {
		respond(mdns.RcodeNotAuth, "badkey", "unknown key")
		return
	}
	if q.Qtype != mdns.TypeSOA || q.Qclass != mdns.ClassINET {
		respond(mdns.RcodeFormatError, "error", "zone section must be SOA IN")
		return
	}
	z := rt.set.Zone(origin)
	if z == nil || z.Generated {
		respond(mdns.RcodeNotAuth, "notauth", "not a zone of ours")
		return
	}
	if !slices.Contains(key.zones, origin) {
		respond(mdns.RcodeRefused, "refused", "key "+key.name+" may not update "+origin)
		return
	}
	lookup := func(name string, t uint16) []mdns.RR {
		res := rt.set.Lookup(name, t, &zone.Client{Inside: true})
		var out []mdns.RR
		for _, rr := range res.Answer {
			if rr.Header().Name == name && (t == mdns.TypeANY || rr.Header().Rrtype == t) {
				out = append(out, rr)
			}
		}
		return out
	}
	nameInUse := func(name string) bool {
		for _, e := range z.Entries() {
			if e.RR.Header().Name == name {
				return true
			}
		}
		return false
	}
	if rcode, why := checkPrereqs(req.Answer, origin, lookup, nameInUse); rcode != mdns.RcodeSuccess {
		respond(rcode, "prereq", why)
		return
	}

	// Prescan (RFC 2136 §3.4.1) then build the change.
	var adds []mdns.RR
	type deletion struct {
		name  string
		t     uint16
		match mdns.RR
	}
	var dels []deletion
	for _, rr := range req.Ns {
		h := rr.Header()
		name := zone.Lower(h.Name)
		if !mdns.IsSubDomain(origin, name) {
			respond(mdns.RcodeNotZone, "error", name+" is outside the zone")
			return
		}
		switch h.Class {
		case mdns.ClassINET:
			if !slices.Contains(zone.SupportedTypes, mdns.TypeToString[h.Rrtype]) || h.Rrtype == mdns.TypeNS && name == origin {
				respond(mdns.RcodeRefused, "refused", "type "+mdns.TypeToString[h.Rrtype]+" cannot be updated")
				return
			}
			cp := mdns.Copy(rr)
			cp.Header().Name = name
			adds = append(adds, cp)
		case mdns.ClassANY:
			if h.Ttl != 0 || h.Rdlength != 0 {
				respond(mdns.RcodeFormatError, "error", "delete RRset with data")
				return
			}
			t := h.Rrtype
			if t == mdns.TypeANY {
				t = 0
			}
			dels = append(dels, deletion{name: name, t: t})
		case mdns.ClassNONE:
			if h.Ttl != 0 {
				respond(mdns.RcodeFormatError, "error", "delete RR with a TTL")
				return
			}
			cp := mdns.Copy(rr)
			cp.Header().Name, cp.Header().Class = name, mdns.ClassINET
			dels = append(dels, deletion{name: name, t: h.Rrtype, match: cp})
		default:
			respond(mdns.RcodeFormatError, "error", "bad class in update")
			return
		}
	}
	for _, rr := range adds {
		if src := z.Source(rr.Header().Name, rr.Header().Rrtype); src == "config" || src == "file" {
			respond(mdns.RcodeRefused, "refused", fmt.Sprintf("%s %s is declared %s", rr.Header().Name, mdns.TypeToString[rr.Header().Rrtype], declaredAt(z, rr.Header().Name, rr.Header().Rrtype, src)))
			return
		}
	}
	for _, d := range dels {
		if src := z.Source(d.name, d.t); src == "config" || src == "file" {
			respond(mdns.RcodeRefused, "refused", fmt.Sprintf("%s is declared %s", d.name, declaredAt(z, d.name, d.t, src)))
			return
		}
	}

	now := time.Now().UTC()
	err := s.changeRecords(context.Background(), func(items []store.Item[storedRecord]) (recordEdit, error) {
		e := recordEdit{put: map[string]storedRecord{}, del: map[string]int64{}}
		for _, it := range items {
			rr, err := mdns.NewRR(it.Value.RR)
			if err != nil || rr == nil {
				continue
			}
			for _, d := range dels {
				h := rr.Header()
				if h.Name == d.name && (d.t == 0 || h.Rrtype == d.t) && (d.match == nil || mdns.IsDuplicate(rr, d.match)) {
					e.del[it.Name] = it.ModRev
				}
			}
		}
		for _, rr := range adds {
			// RFC 2136 §3.4.2.2: a CNAME does not join other data, nor
			// other data a CNAME; such adds are ignored.
			name, t := rr.Header().Name, rr.Header().Rrtype
			if t == mdns.TypeCNAME && hasOtherData(lookup(name, mdns.TypeANY), mdns.TypeCNAME) ||
				t != mdns.TypeCNAME && len(lookup(name, mdns.TypeCNAME)) > 0 {
				continue
			}
			key := recordKey(rr)
			if _, deleted := e.del[key]; deleted {
				continue
			}
			e.put[key] = storedRecord{RR: rr.String(), Source: "update", Created: now}
		}
		return e, nil
	})
	if err != nil {
		respond(mdns.RcodeServerFailure, "error", err.Error())
		return
	}
	respond(mdns.RcodeSuccess, "applied", "")
}

func hasOtherData(rrs []mdns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype != t {
			return true
		}
	}
	return false
}

// checkPrereqs evaluates the prerequisite section (RFC 2136 §3.2).
func checkPrereqs(prereqs []mdns.RR, origin string, lookup func(string, uint16) []mdns.RR, nameInUse func(string) bool) (int, string) {
	valueSets := map[string][]mdns.RR{}
	for _, rr := range prereqs {
		h := rr.Header()
		name := zone.Lower(h.Name)
		if h.Ttl != 0 {
			return mdns.RcodeFormatError, "prerequisite with a TTL"
		}
		if !mdns.IsSubDomain(origin, name) {
			return mdns.RcodeNotZone, name + " is outside the zone"
		}
		switch h.Class {
		case mdns.ClassANY:
			if h.Rdlength != 0 {
				return mdns.RcodeFormatError, "prerequisite with data"
			}
			if h.Rrtype == mdns.TypeANY {
				if !nameInUse(name) {
					return mdns.RcodeNameError, name + " is not in use"
				}
			} else if len(lookup(name, h.Rrtype)) == 0 {
				return mdns.RcodeNXRrset, name + " " + mdns.TypeToString[h.Rrtype] + " does not exist"
			}
		case mdns.ClassNONE:
			if h.Rdlength != 0 {
				return mdns.RcodeFormatError, "prerequisite with data"
			}
			if h.Rrtype == mdns.TypeANY {
				if nameInUse(name) {
					return mdns.RcodeYXDomain, name + " is in use"
				}
			} else if len(lookup(name, h.Rrtype)) > 0 {
				return mdns.RcodeYXRrset, name + " " + mdns.TypeToString[h.Rrtype] + " exists"
			}
		case mdns.ClassINET:
			k := name + " " + mdns.TypeToString[h.Rrtype]
			cp := mdns.Copy(rr)
			cp.Header().Name = name
			valueSets[k] = append(valueSets[k], cp)
		default:
			return mdns.RcodeFormatError, "bad class in prerequisite"
		}
	}
	for _, want := range valueSets {
		h := want[0].Header()
		have := lookup(h.Name, h.Rrtype)
		if len(have) != len(want) {
			return mdns.RcodeNXRrset, h.Name + " " + mdns.TypeToString[h.Rrtype] + " differs"
		}
		for _, rr := range want {
			if !slices.ContainsFunc(have, func(o mdns.RR) bool { return mdns.IsDuplicate(o, rr) }) {
				return mdns.RcodeNXRrset, h.Name + " " + mdns.TypeToString[h.Rrtype] + " differs"
			}
		}
	}
	return mdns.RcodeSuccess, ""
}
