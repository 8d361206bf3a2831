package dns

import (
	"net"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/dns/zone"
)

// ednsSize is the UDP payload size edge-dns advertises and honours at most
// (DNS flag day 2020: avoids IP fragmentation).
const ednsSize = 1232

// ServeDNS implements mdns.Handler: queries over TCP, and updates and
// transfers, arrive here. UDP queries come through the UDP loop, which
// calls handle itself to learn whether it may keep the answer packed.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	s.handle(w, req, proto, s.rt.Load())
}

// handle answers req on w from rt and returns whether and how the
// answer may be reused (only the UDP loop does).
func (s *Server) handle(w mdns.ResponseWriter, req *mdns.Msg, proto string, rt *snapshot) cacheability {
	start := time.Now()
	src, dst := addrOf(w.RemoteAddr()), addrOf(w.LocalAddr())
	if req.Response {
		s.metrics.malformed.Inc()
		return cacheability{}
	}
	// An OPT in the query is answered with one (RFC 6891 §7), errors
	// included; more than one is itself an error (§6.1.1).
	opt, opts := req.IsEdns0(), 0
	for _, rr := range req.Extra {
		if rr.Header().Rrtype == mdns.TypeOPT {
			opts++
		}
	}
	if opts > 1 || len(req.Question) != 1 || req.Opcode == mdns.OpcodeQuery && (len(req.Answer) > 1 || len(req.Ns) > 1 || len(req.Extra) > 2) {
		s.metrics.malformed.Inc()
		if opts > 1 {
			opt = nil
		}
		s.reply(w, new(mdns.Msg).SetRcode(req, mdns.RcodeFormatError), proto, opt)
		return cacheability{}
	}
	switch req.Opcode {
	case mdns.OpcodeQuery:
	case mdns.OpcodeUpdate:
		s.update(w, req, rt, src)
		return cacheability{}
	default:
		resp := new(mdns.Msg).SetRcode(req, mdns.RcodeNotImplemented)
		s.reply(w, resp, proto, opt)
		return cacheability{}
	}

	q := req.Question[0]
	if opt != nil && opt.Version() != 0 {
		// RFC 6891 §6.1.3: BADVERS, with our OPT saying version 0; the DO
		// bit is echoed (RFC 3225 §3).
		resp := new(mdns.Msg)
		resp.SetReply(req)
		resp.Rcode = mdns.RcodeBadVers
		resp.SetEdns0(ednsSize, opt.Do())
		w.WriteMsg(resp)
		s.metrics.count("none", q.Qtype, resp.Rcode, proto, start)
		return cacheability{}
	}
	if q.Qclass == mdns.ClassINET && (q.Qtype == mdns.TypeAXFR || q.Qtype == mdns.TypeIXFR) {
		s.xfr.serve(w, req, rt, src, proto)
		return cacheability{}
	}
	fwd := s.fwd.Load()
	a := s.answer(rt, req, src, dst, fwd != nil)
	if a.recurse {
		resp := s.resolve(req, fwd, proto, opt)
		if err := w.WriteMsg(resp); err != nil {
			s.metrics.writeErrors.Inc()
		}
		c := resolvedCacheability(resp, a.cache.view)
		c.counter = s.metrics.count(a.cache.view, q.Qtype, resp.Rcode, proto, start)
		s.logQuery(src, proto, q, resp.Rcode, a.cache.view, "resolver", start)
		return c
	}
	if a.chase != "" {
		// A CNAME chain left our zones: finish it for the inside client,
		// as a resolver in front of us would.
		s.continueChain(req, a.msg, a.chase, fwd)
	}
	s.reply(w, a.msg, proto, opt, a.options...)
	a.cache.counter = s.metrics.count(a.metricsView, q.Qtype, a.msg.Rcode, proto, start)
	s.logQuery(src, proto, q, a.msg.Rcode, a.cache.view, a.source, start)
	return a.cache
}

// answer is the reply to one query, before the transport sends it, and
// what the transport may do with it.
type answer struct {
	msg *mdns.Msg
	// options go into the reply's OPT record (the ECS scope).
	options []mdns.EDNS0
	// source says how the answer was made, for the query log:
	// authoritative or refused.
	source string
	// metricsView is the view's name as the query metrics count it,
	// "none" for no view.
	metricsView string
	// recurse says the question is for the resolver: msg is unset and
	// the caller asks it.
	recurse bool
	// chase is where a CNAME chain left our zones, for the resolver to
	// finish; msg holds the chain so far.
	chase string
	cache cacheability
}

// cacheability says whether a packed copy of an answer may answer the
// same question (the answer cache's key) again, and how.
type cacheability struct {
	ok bool
	// scope is -1 for an answer that does not depend on the client's
	// address; else the answer holds for every client in the client's
	// prefix of that length (a GeoIP choice).
	scope int
	// ttl, when positive, bounds the life of a packed copy; otherwise it
	// lives as long as the data (the cache is replaced on any change).
	ttl time.Duration
	// zone is the zone that answered, "" for none: rate limiting groups
	// errors by zone.
	zone string
	// view is the view that answered, for the query log.
	view string
	// counter counts the answer's queries; the cache counts its hits
	// there too.
	counter prometheus.Counter
}

// answer computes the reply to a query from rt for a client at src
// asking dst, and its cacheability. It only reads: the zones, the GeoIP
// databases and the health checks' verdicts. haveResolver says whether
// a resolver is configured.
func (s *Server) answer(rt *snapshot, req *mdns.Msg, src, dst netip.Addr, haveResolver bool) answer {
	q := req.Question[0]
	opt := req.IsEdns0()
	resp := new(mdns.Msg)
	resp.SetReply(req)
	resp.Compress = true
	if q.Qclass != mdns.ClassINET {
		resp.Rcode = mdns.RcodeRefused
		return answer{msg: resp, source: "refused", metricsView: "none", cache: cacheability{ok: true, scope: -1}}
	}
	inside := containsAddr(rt.inside, src)
	view := rt.set.MatchView(src, dst)
	ecs := clientSubnet(opt)
	client := &zone.Client{Inside: inside, View: view, Locate: s.locator(src, ecs), Up: rt.up(s.health)}
	res := rt.set.Lookup(zone.Lower(q.Name), q.Qtype, client)
	viewName := "none"
	if view != nil {
		viewName = view.Name
	}
	if res.Zone == nil {
		// Not ours. Inside clients asked for recursion get the resolver;
		// everyone else is refused: never an open resolver.
		if inside && req.RecursionDesired && haveResolver {
			return answer{recurse: true, metricsView: viewName, cache: cacheability{view: viewName}}
		}
		resp.Rcode = mdns.RcodeRefused
		resp.RecursionAvailable = inside && haveResolver
		return answer{msg: resp, source: "refused", metricsView: viewName, cache: cacheability{ok: true, scope: -1, view: viewName}}
	}
	resp.Authoritative = !res.Referral
	resp.RecursionAvailable = inside && haveResolver
	resp.Rcode = res.Rcode
	resp.Answer, resp.Ns, resp.Extra = res.Answer, res.Ns, res.Extra
	a := answer{msg: resp, source: "authoritative", metricsView: viewName,
		cache: cacheability{ok: true, scope: res.GeoScope, zone: res.Zone.Origin, view: viewName}}
	if res.Dangling != "" && inside && req.RecursionDesired && haveResolver {
		// The resolver's part of the answer has TTLs of its own.
		a.chase, a.cache.ok = res.Dangling, false
	}
	if ecs != nil {
		// RFC 7871 §7.2.1: the scope says how much of the address the
		// answer depends on; 0 when it does not depend on it at all.
		scope := 0
		if res.GeoScope >= 0 {
			scope = min(res.GeoScope, addrBits(ecs.Family))
		}
		ecs.SourceScope = uint8(scope)
		a.options = append(a.options, ecs)
	}
	return a
}

// resolvedCacheability lets the UDP loop keep a resolver answer for a
// moment: at most microCache, and never past the shortest TTL in it, so
// the TTLs a client sees are at most that much too long.
func resolvedCacheability(resp *mdns.Msg, view string) cacheability {
	life := microCache
	for _, sec := range [][]mdns.RR{resp.Answer, resp.Ns} {
		for _, rr := range sec {
			life = min(life, time.Duration(rr.Header().Ttl)*time.Second)
		}
	}
	if life <= 0 || resp.Truncated {
		return cacheability{view: view}
	}
	return cacheability{ok: true, scope: -1, ttl: life, view: view}
}

// reply adds the OPT record when the query had one (RFC 6891: exactly
// then), truncates to what the client can take over UDP, and sends.
func (s *Server) reply(w mdns.ResponseWriter, resp *mdns.Msg, proto string, opt *mdns.OPT, options ...mdns.EDNS0) {
	size := mdns.MinMsgSize
	if opt != nil {
		o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
		o.SetUDPSize(ednsSize)
		o.SetDo(opt.Do())
		o.Option = append(o.Option, options...)
		resp.Extra = append(resp.Extra, o)
		size = int(min(max(opt.UDPSize(), mdns.MinMsgSize), ednsSize))
	}
	if proto == "udp" {
		resp.Truncate(size)
		if resp.Truncated {
			s.metrics.truncated.Inc()
		}
	} else {
		resp.Truncate(mdns.MaxMsgSize)
	}
	if err := w.WriteMsg(resp); err != nil {
		s.metrics.writeErrors.Inc()
	}
}

// clientSubnet returns a copy of the query's EDNS Client Subnet option,
// masked to its source prefix, or nil.
func clientSubnet(opt *mdns.OPT) *mdns.EDNS0_SUBNET {
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		e, ok := o.(*mdns.EDNS0_SUBNET)
		if !ok {
			continue
		}
		bits := addrBits(e.Family)
		if bits == 0 || int(e.SourceNetmask) > bits {
			return nil
		}
		a, ok := netip.AddrFromSlice(e.Address)
		if !ok {
			return nil
		}
		if bits == 32 {
			a = a.Unmap()
		}
		p, err := a.Prefix(int(e.SourceNetmask))
		if err != nil {
			return nil
		}
		return &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: e.Family, SourceNetmask: e.SourceNetmask, Address: p.Addr().AsSlice()}
	}
	return nil
}

func addrBits(family uint16) int {
	switch family {
	case 1:
		return 32
	case 2:
		return 128
	}
	return 0
}

// locator returns the client's location lookup: the ECS subnet when the
// query carried one, else the source address.
func (s *Server) locator(src netip.Addr, ecs *mdns.EDNS0_SUBNET) func() zone.Location {
	return func() zone.Location {
		l := zone.Location{Addr: src, Bits: src.BitLen()}
		if ecs != nil {
			a, _ := netip.AddrFromSlice(ecs.Address)
			if ecs.Family == 1 {
				a = a.Unmap()
			}
			l.Addr, l.Bits = a, int(ecs.SourceNetmask)
		}
		s.locate(&l)
		return l
	}
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxUpdateRRs bounds the records one UPDATE may carry.
const maxUpdateRRs = 1000

// accept decides from the header alone whether a message is worth
// parsing: responses are dropped, and so is a message whose counts no
// well-formed QUERY, NOTIFY or UPDATE could have (FORMERR, unparsed).
// Anything smaller is parsed, and the handler answers FORMERR or NOTIMP
// itself, with an OPT when the query had one (RFC 6891 §7).
func (s *Server) accept(dh mdns.Header) mdns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		s.metrics.malformed.Inc()
		return mdns.MsgIgnore
	}
	opcode := int(dh.Bits>>11) & 0xF
	action := mdns.MsgAccept
	limit := 8 // a query: the question, an IXFR SOA, OPT, TSIG, and some slack
	if opcode == mdns.OpcodeUpdate {
		limit = maxUpdateRRs + 8
	}
	if dh.Qdcount > 8 || int(dh.Ancount)+int(dh.Nscount)+int(dh.Arcount) > limit {
		action = mdns.MsgReject
	}
	if action != mdns.MsgAccept {
		s.metrics.malformed.Inc()
	}
	return action
}
