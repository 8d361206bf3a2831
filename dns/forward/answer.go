package forward

import (
	"github.com/miekg/dns"
)

// ednsSize is the EDNS UDP payload size edge-dns advertises, upstream and
// to clients: 1232 bytes fits the IPv6 minimum MTU without fragmentation
// (DNS flag day 2020). Larger answers come over TCP.
const ednsSize = 1232

// kind classifies an answer for caching.
type kind uint8

const (
	// kindPositive: NOERROR with records in the answer section.
	kindPositive kind = iota
	// kindNegative: NXDOMAIN or NODATA (RFC 2308).
	kindNegative
	// kindFailure: SERVFAIL made here when no upstream answered
	// (cached for failure_ttl, RFC 9520; never served stale).
	kindFailure
	// kindOther: anything else an upstream said (FORMERR, NOTIMP, a
	// truncated answer, ...), passed on but never cached.
	kindOther
)

// answer is an upstream reply reduced to what every client gets: no OPT
// (EDNS is per hop), no ECS, TTLs already clamped. It never changes once
// made, so cache entries and coalesced waiters share it; replies copy the
// records.
type answer struct {
	kind  kind
	rcode int
	// ad is the upstream's Authenticated Data bit.
	ad                bool
	answer, ns, extra []dns.RR
	// ede are the upstream's Extended DNS Errors (RFC 8914), kept so that a
	// client learns why (DNSSEC bogus, blocked, ...).
	ede []*dns.EDNS0_EDE
	// ttl is how long the answer may be cached, in seconds; 0 means not
	// at all.
	ttl uint32
}

// newAnswer turns the upstream reply r into an answer under the TTL rules
// of st. It takes over r's records and changes their TTLs.
func newAnswer(r *dns.Msg, st *settings) *answer {
	a := &answer{rcode: r.Rcode, ad: r.AuthenticatedData, kind: kindOther}
	a.answer = keepRecords(r.Answer, nil)
	a.ns = keepRecords(r.Ns, nil)
	a.extra = keepRecords(r.Extra, &a.ede)
	if r.Truncated {
		return a
	}
	switch {
	case r.Rcode == dns.RcodeSuccess && len(a.answer) > 0:
		a.kind = kindPositive
		a.ttl = st.maxTTL
		forEach(a, func(h *dns.RR_Header) {
			h.Ttl = min(max(h.Ttl, st.minTTL), st.maxTTL)
			a.ttl = min(a.ttl, h.Ttl)
		})
	case r.Rcode == dns.RcodeNameError || r.Rcode == dns.RcodeSuccess:
		a.kind = kindNegative
		var soa *dns.SOA
		for _, rr := range a.ns {
			if s, ok := rr.(*dns.SOA); ok {
				soa = s
				break
			}
		}
		if soa == nil || st.negTTL == 0 {
			// RFC 2308 §5: without an SOA there is no negative TTL, so
			// the answer is not cached.
			forEach(a, func(h *dns.RR_Header) { h.Ttl = min(h.Ttl, st.maxTTL) })
			return a
		}
		// RFC 2308 §5: the negative TTL is the smaller of the SOA's own
		// TTL and its MINIMUM field; the SOA is sent with it.
		neg := min(soa.Hdr.Ttl, soa.Minttl, st.negTTL, st.maxTTL)
		a.ttl = neg
		forEach(a, func(h *dns.RR_Header) {
			if h == &soa.Hdr {
				h.Ttl = neg
			} else {
				h.Ttl = min(h.Ttl, st.maxTTL)
			}
			a.ttl = min(a.ttl, h.Ttl)
		})
	}
	return a
}

// keepRecords drops OPT and transaction signatures, which belong to one
// hop, collecting the OPT's Extended DNS Errors into ede; every other
// option (ECS above all, cookies, padding) is left behind.
func keepRecords(rrs []dns.RR, ede *[]*dns.EDNS0_EDE) []dns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.OPT:
			if ede != nil {
				for _, o := range rr.Option {
					if e, ok := o.(*dns.EDNS0_EDE); ok && len(*ede) < 4 {
						*ede = append(*ede, e)
					}
				}
			}
			continue
		case *dns.TSIG:
			continue
		case nil:
			continue
		}
		out = append(out, rr)
	}
	return out
}

func forEach(a *answer, f func(*dns.RR_Header)) {
	for _, sec := range [][]dns.RR{a.answer, a.ns, a.extra} {
		for _, rr := range sec {
			f(rr.Header())
		}
	}
}

// failure is the SERVFAIL made when no upstream answered; the EDEs say
// why, ttl is failure_ttl.
func failure(ede []*dns.EDNS0_EDE, ttl uint32) *answer {
	return &answer{kind: kindFailure, rcode: dns.RcodeServerFailure, ede: ede, ttl: ttl}
}

// client is what a reply needs to know about the query it answers.
type client struct {
	edns bool
	do   bool
}

func clientOf(req *dns.Msg) client {
	if opt := req.IsEdns0(); opt != nil {
		return client{edns: true, do: opt.Do()}
	}
	return client{}
}

// reply renders a for req. A fresh answer's TTLs drop by age seconds; a
// stale one's are all staleTTL (RFC 8767 §4). more are EDEs added here.
func (a *answer) reply(req *dns.Msg, cl client, age uint32, stale bool, staleTTL uint32, more ...*dns.EDNS0_EDE) *dns.Msg {
	rcode := a.rcode
	if rcode > 0xF && !cl.edns {
		// Only an OPT record can carry an extended rcode.
		rcode = dns.RcodeServerFailure
	}
	b := newReplyBuf(req, rcode)
	m := &b.msg
	m.AuthenticatedData = a.ad && (req.AuthenticatedData || cl.do)
	m.Answer = copyRecords(a.answer, age, stale, staleTTL, 0)
	m.Ns = copyRecords(a.ns, age, stale, staleTTL, 0)
	if cl.edns {
		b.opt = makeOPT(cl, a.ede, more)
		if len(a.extra) == 0 {
			b.extra[0] = &b.opt
			m.Extra = b.extra[:]
		} else {
			m.Extra = append(copyRecords(a.extra, age, stale, staleTTL, 1), &b.opt)
		}
	} else {
		m.Extra = copyRecords(a.extra, age, stale, staleTTL, 0)
	}
	return m
}

// copyRecords copies rrs with their TTLs decayed by age seconds, or set
// to staleTTL; spare is extra capacity for what the caller appends.
func copyRecords(rrs []dns.RR, age uint32, stale bool, staleTTL uint32, spare int) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs), len(rrs)+spare)
	for i, rr := range rrs {
		c := copyRR(rr)
		h := c.Header()
		switch {
		case stale:
			h.Ttl = staleTTL
		case h.Ttl > age:
			h.Ttl -= age
		default:
			h.Ttl = 0
		}
		out[i] = c
	}
	return out
}

// copyRR copies rr so that its header can change. The most common types
// share their address bytes with the cached record instead of copying
// them: nothing changes a record's data once it is cached, and a reply
// is only packed.
func copyRR(rr dns.RR) dns.RR {
	switch rr := rr.(type) {
	case *dns.A:
		c := *rr
		return &c
	case *dns.AAAA:
		c := *rr
		return &c
	case *dns.CNAME:
		c := *rr
		return &c
	}
	return dns.Copy(rr)
}

// replyBuf holds a reply and its fixed parts in one allocation: the
// cache-hit path is what edge-dns does most.
type replyBuf struct {
	msg   dns.Msg
	q     [1]dns.Question
	opt   dns.OPT
	extra [1]dns.RR
}

// newReplyBuf starts a reply to req: same ID, opcode, question, RD and
// CD; recursion available, since only clients allowed to recurse get here.
func newReplyBuf(req *dns.Msg, rcode int) *replyBuf {
	b := &replyBuf{}
	b.msg = dns.Msg{
		MsgHdr: dns.MsgHdr{
			Id:                 req.Id,
			Response:           true,
			Opcode:             req.Opcode,
			RecursionDesired:   req.RecursionDesired,
			RecursionAvailable: true,
			CheckingDisabled:   req.CheckingDisabled,
			Rcode:              rcode,
		},
		Compress: true,
	}
	if len(req.Question) > 0 {
		b.q[0] = req.Question[0]
		b.msg.Question = b.q[:]
	}
	return b
}

// makeOPT makes the reply's OPT record: our payload size, the client's DO
// bit, and the EDEs, ours first.
func makeOPT(cl client, ede []*dns.EDNS0_EDE, more []*dns.EDNS0_EDE) dns.OPT {
	o := dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: ednsSize}}
	if cl.do {
		o.SetDo()
	}
	if n := len(ede) + len(more); n > 0 {
		o.Option = make([]dns.EDNS0, 0, n)
		for _, e := range more {
			o.Option = append(o.Option, e)
		}
		for _, e := range ede {
			o.Option = append(o.Option, e)
		}
	}
	return o
}

// errorReply answers req with rcode and, when the client speaks EDNS, an
// EDE saying why.
func errorReply(req *dns.Msg, cl client, rcode int, ede *dns.EDNS0_EDE) *dns.Msg {
	b := newReplyBuf(req, rcode)
	if cl.edns {
		var more []*dns.EDNS0_EDE
		if ede != nil {
			more = []*dns.EDNS0_EDE{ede}
		}
		b.opt = makeOPT(cl, nil, more)
		b.extra[0] = &b.opt
		b.msg.Extra = b.extra[:]
	}
	return &b.msg
}
