package dns

import (
	"net"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/dns/zone"
)

// ednsSize is the UDP payload size edge-dns advertises and honours at most
// (DNS flag day 2020: avoids IP fragmentation).
const ednsSize = 1232

// ServeDNS implements mdns.Handler: every query and update arrives here.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	start := time.Now()
	rt := s.rt.Load()
	src, dst := addrOf(w.RemoteAddr()), addrOf(w.LocalAddr())
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	if req.Response || len(req.Question) != 1 {
		s.metrics.malformed.Inc()
		if !req.Response {
			s.reply(w, new(mdns.Msg).SetRcode(req, mdns.RcodeFormatError), proto, nil)
		}
		return
	}
	switch req.Opcode {
	case mdns.OpcodeQuery:
	case mdns.OpcodeUpdate:
		s.update(w, req, rt, src)
		return
	default:
		resp := new(mdns.Msg).SetRcode(req, mdns.RcodeNotImplemented)
		s.reply(w, resp, proto, req.IsEdns0())
		return
	}

	q := req.Question[0]
	opt := req.IsEdns0()
	resp := new(mdns.Msg)
	resp.SetReply(req)
	resp.Compress = true
	if opt != nil && opt.Version() != 0 {
		// RFC 6891 §6.1.3: BADVERS, with our OPT saying version 0.
		resp.Rcode = mdns.RcodeBadVers
		resp.SetEdns0(ednsSize, false)
		w.WriteMsg(resp)
		s.metrics.count("none", q.Qtype, resp.Rcode, proto, start)
		return
	}
	if q.Qclass != mdns.ClassINET {
		resp.Rcode = mdns.RcodeRefused
		s.reply(w, resp, proto, opt)
		s.logQuery(src, proto, q, resp.Rcode, "", "refused", start)
		markCacheable(w, s.metrics.count("none", q.Qtype, resp.Rcode, proto, start), -1, "", "")
		return
	}
	inside := containsAddr(rt.inside, src)
	if q.Qtype == mdns.TypeAXFR || q.Qtype == mdns.TypeIXFR {
		s.xfr.serve(w, req, rt, src, proto)
		return
	}

	view := rt.set.MatchView(src, dst)
	ecs := clientSubnet(opt)
	client := &zone.Client{Inside: inside, View: view, Locate: s.locator(src, ecs), Up: rt.up(s.health)}
	qname := zone.Lower(q.Name)
	res := rt.set.Lookup(qname, q.Qtype, client)
	viewName := "none"
	if view != nil {
		viewName = view.Name
	}
	fwd := s.fwd.Load()
	if res.Zone == nil {
		// Not ours. Inside clients asked for recursion get the resolver;
		// everyone else is refused: never an open resolver.
		if inside && req.RecursionDesired && fwd != nil {
			s.resolve(w, req, fwd, proto, opt, viewName, start)
			s.logQuery(src, proto, q, s.lastRcode(w), viewName, "resolver", start)
			return
		}
		resp.Rcode = mdns.RcodeRefused
		resp.RecursionAvailable = inside && fwd != nil
		s.reply(w, resp, proto, opt)
		s.logQuery(src, proto, q, resp.Rcode, viewName, "refused", start)
		markCacheable(w, s.metrics.count(viewName, q.Qtype, resp.Rcode, proto, start), -1, "", viewName)
		return
	}
	resp.Authoritative = !res.Referral
	resp.RecursionAvailable = inside && fwd != nil
	resp.Rcode = res.Rcode
	resp.Answer, resp.Ns, resp.Extra = res.Answer, res.Ns, res.Extra
	cacheable := true
	if res.Dangling != "" && inside && req.RecursionDesired && fwd != nil {
		// A CNAME chain left our zones: finish it for the inside client,
		// as a resolver in front of us would.
		s.continueChain(req, resp, res.Dangling, fwd)
		cacheable = false
	}
	var options []mdns.EDNS0
	if ecs != nil {
		// RFC 7871 §7.2.1: the scope says how much of the address the
		// answer depends on; 0 when it does not depend on it at all.
		scope := 0
		if res.GeoScope >= 0 {
			scope = min(res.GeoScope, addrBits(ecs.Family))
		}
		ecs.SourceScope = uint8(scope)
		options = append(options, ecs)
	}
	s.reply(w, resp, proto, opt, options...)
	counter := s.metrics.count(viewName, q.Qtype, resp.Rcode, proto, start)
	s.logQuery(src, proto, q, resp.Rcode, viewName, "authoritative", start)
	if cacheable {
		markCacheable(w, counter, res.GeoScope, res.Zone.Origin, viewName)
	}
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

// accept decides from the header alone whether a message is worth parsing:
// responses are dropped; QUERY (with at most an IXFR SOA and OPT plus TSIG
// beside the question) and NOTIFY as miekg/dns's default does; UPDATE with
// bounded sections; other opcodes get NOTIMP.
func (s *Server) accept(dh mdns.Header) mdns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		s.metrics.malformed.Inc()
		return mdns.MsgIgnore
	}
	opcode := int(dh.Bits>>11) & 0xF
	action := mdns.MsgAccept
	switch {
	case opcode == mdns.OpcodeUpdate:
		if dh.Qdcount != 1 || int(dh.Ancount)+int(dh.Nscount) > maxUpdateRRs || dh.Arcount > 2 {
			action = mdns.MsgReject
		}
	case opcode == mdns.OpcodeQuery || opcode == mdns.OpcodeNotify:
		if dh.Qdcount != 1 || dh.Ancount > 1 || dh.Nscount > 1 || dh.Arcount > 2 {
			action = mdns.MsgReject
		}
	default:
		return mdns.MsgRejectNotImplemented
	}
	if action != mdns.MsgAccept {
		s.metrics.malformed.Inc()
	}
	return action
}

// lastRcode is the rcode of what the handler wrote to w, where known.
func (s *Server) lastRcode(w mdns.ResponseWriter) int {
	if uw, ok := w.(*udpWriter); ok && len(uw.packed) >= 4 {
		return int(uw.packed[3] & 0x0f)
	}
	return -1
}
