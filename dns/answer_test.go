package dns

import (
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestAnswer checks the answers the handler computes and what each lets
// a transport reuse.
func TestAnswer(t *testing.T) {
	s := newHandlerOnly(t, `  inside: [lan]
  zones:
    - name: example.net
      records:
        - {name: www, type: A, value: 192.0.2.10}
        - {name: geo, type: A, value: 192.0.2.80, geo: [{networks: [198.51.100.0/24], value: 192.0.2.81}]}
        - {name: ext, type: CNAME, value: www.other.org.}
  views:
    - name: lan
      match: {networks: [lan]}
      records:
        - {name: www.example.net, type: A, value: 192.168.1.10}
`)
	rt := s.rt.Load()
	outside, inside, dst := netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("192.168.1.20"), netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name         string
		qname        string
		qclass       uint16
		rd           bool
		src          netip.Addr
		haveResolver bool
		wantRcode    int
		wantAnswers  int
		want         cacheability
		wantRecurse  bool
		wantChase    string
	}{
		{name: "authoritative", qname: "www.example.net.", src: outside, wantAnswers: 1,
			want: cacheability{ok: true, scope: -1, zone: "example.net.", view: "none"}},
		{name: "view", qname: "www.example.net.", src: inside, wantAnswers: 1,
			want: cacheability{ok: true, scope: -1, zone: "example.net.", view: "lan"}},
		{name: "geo choice", qname: "geo.example.net.", src: outside, wantAnswers: 1,
			want: cacheability{ok: true, scope: 32, zone: "example.net.", view: "none"}}, // no GeoIP database: the address itself
		{name: "nxdomain", qname: "nope.example.net.", src: outside, wantRcode: mdns.RcodeNameError,
			want: cacheability{ok: true, scope: -1, zone: "example.net.", view: "none"}},
		{name: "other class", qname: "version.bind.", qclass: mdns.ClassCHAOS, src: outside, wantRcode: mdns.RcodeRefused,
			want: cacheability{ok: true, scope: -1}},
		{name: "not ours, outside", qname: "www.other.org.", rd: true, src: outside, haveResolver: true, wantRcode: mdns.RcodeRefused,
			want: cacheability{ok: true, scope: -1, view: "none"}},
		{name: "not ours, inside without RD", qname: "www.other.org.", src: inside, haveResolver: true, wantRcode: mdns.RcodeRefused,
			want: cacheability{ok: true, scope: -1, view: "lan"}},
		{name: "not ours, inside", qname: "www.other.org.", rd: true, src: inside, haveResolver: true, wantRecurse: true,
			want: cacheability{view: "lan"}},
		{name: "chain left our zones", qname: "ext.example.net.", rd: true, src: inside, haveResolver: true, wantAnswers: 1, wantChase: "www.other.org.",
			want: cacheability{scope: -1, zone: "example.net.", view: "lan"}},
		{name: "chain without a resolver", qname: "ext.example.net.", rd: true, src: inside, wantAnswers: 1,
			want: cacheability{ok: true, scope: -1, zone: "example.net.", view: "lan"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := new(mdns.Msg)
			req.SetQuestion(tc.qname, mdns.TypeA)
			req.RecursionDesired = tc.rd
			if tc.qclass != 0 {
				req.Question[0].Qclass = tc.qclass
			}
			a := s.answer(rt, req, tc.src, dst, tc.haveResolver)
			if a.cache != tc.want || a.recurse != tc.wantRecurse || a.chase != tc.wantChase {
				t.Errorf("answer(%s from %s) cache %+v recurse %v chase %q; want %+v, %v, %q", tc.qname, tc.src, a.cache, a.recurse, a.chase, tc.want, tc.wantRecurse, tc.wantChase)
			}
			if a.recurse {
				return
			}
			if a.msg.Rcode != tc.wantRcode || len(a.msg.Answer) != tc.wantAnswers {
				t.Errorf("answer(%s from %s) = %s with %d answers, want %s with %d", tc.qname, tc.src,
					mdns.RcodeToString[a.msg.Rcode], len(a.msg.Answer), mdns.RcodeToString[tc.wantRcode], tc.wantAnswers)
			}
		})
	}
}

func TestResolvedCacheability(t *testing.T) {
	msg := func(ttls ...uint32) *mdns.Msg {
		m := new(mdns.Msg)
		for _, ttl := range ttls {
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: "a.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: ttl}})
		}
		return m
	}
	truncated := msg(60)
	truncated.Truncated = true
	tests := []struct {
		name string
		msg  *mdns.Msg
		want cacheability
	}{
		{"long TTLs", msg(300, 60), cacheability{ok: true, scope: -1, ttl: microCache, view: "v"}},
		{"no records", msg(), cacheability{ok: true, scope: -1, ttl: microCache, view: "v"}},
		{"a TTL of 0", msg(300, 0), cacheability{view: "v"}},
		{"truncated", truncated, cacheability{view: "v"}},
	}
	for _, tc := range tests {
		if got := resolvedCacheability(tc.msg, "v"); got != tc.want {
			t.Errorf("resolvedCacheability(%s) = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if microCache > time.Second {
		t.Errorf("microCache = %v: resolver TTLs would be served that much too long", microCache)
	}
}
