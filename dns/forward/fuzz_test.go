package forward

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/homeedge/edge/dns/zone"
)

// FuzzCacheAnswer feeds arbitrary upstream replies through the path an
// answer takes: newAnswer, the cache, a lookup (fresh or stale) and the
// reply to a client asking the same question in another case. It checks
// that nothing panics, that TTLs never wrap below zero (a TTL past max_ttl
// would be one), and that the key of a question finds its answer.
func FuzzCacheAnswer(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint32(0), false, false)
		f.Add(b, uint32(299), true, false)
		f.Add(b, uint32(4000), false, true)
	}
	pos := reply(dns.RcodeSuccess, "a. 300 IN A 192.0.2.1", "a. 0 IN A 192.0.2.2", "a. 4294967295 IN A 192.0.2.3")
	seed(pos)
	nx := reply(dns.RcodeNameError)
	nx.Ns = []dns.RR{mustRR("a. 3600 IN SOA ns.a. h.a. 1 2 3 4 4294967295")}
	seed(nx)
	nodata := reply(dns.RcodeSuccess)
	nodata.Ns = []dns.RR{mustRR("a. 60 IN SOA ns.a. h.a. 1 2 3 4 0")}
	seed(nodata)
	withOpt := reply(dns.RcodeSuccess, "A. 30 IN CNAME b.", "b. 20 IN A 192.0.2.1")
	withOpt.SetEdns0(1232, true)
	withOpt.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: 3, ExtraText: "x"}, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 8, Address: []byte{10, 0, 0, 0}}}
	seed(withOpt)
	tc := reply(dns.RcodeSuccess)
	tc.Truncated = true
	seed(tc)

	f.Fuzz(func(t *testing.T, data []byte, ageSecs uint32, do, cd bool) {
		var m dns.Msg
		if m.Unpack(data) != nil || len(m.Question) != 1 {
			return
		}
		q := m.Question[0]
		clock := newFakeClock()
		cfg := DefaultCacheConfig()
		cfg.Size = 4
		c := NewCache(cfg, CacheOptions{Now: clock.Now})
		st := c.settings()

		req := new(dns.Msg)
		req.Id = 4242
		req.RecursionDesired = true
		req.CheckingDisabled = cd
		req.Question = []dns.Question{{Name: upper(q.Name), Qtype: q.Qtype, Qclass: q.Qclass}}
		if do || ageSecs&1 == 0 { // some clients without EDNS
			req.SetEdns0(4096, do)
		}
		k := key{name: zone.Lower(q.Name), qtype: q.Qtype, qclass: q.Qclass}
		if do {
			k.flags |= flagDO
		}
		if cd {
			k.flags |= flagCD
		}
		if rk := (key{name: zone.Lower(req.Question[0].Name), qtype: q.Qtype, qclass: q.Qclass, flags: k.flags}); rk != k {
			t.Fatalf("key of %q = %+v, key of %q = %+v, want equal", q.Name, k, req.Question[0].Name, rk)
		}

		a := newAnswer(&m, st)
		if a.ttl > st.maxTTL {
			t.Fatalf("newAnswer() ttl = %d, more than max_ttl %d", a.ttl, st.maxTTL)
		}
		if a.ttl > 0 && a.kind != kindPositive && a.kind != kindNegative {
			t.Fatalf("newAnswer() kind %d has ttl %d, want only positive and negative answers cached", a.kind, a.ttl)
		}
		if a.ttl > 0 {
			forEach(a, func(h *dns.RR_Header) {
				if h.Ttl < a.ttl || h.Ttl > st.maxTTL {
					t.Fatalf("record TTL %d outside [entry ttl %d, max_ttl %d]", h.Ttl, a.ttl, st.maxTTL)
				}
			})
		}
		c.put(k, a, c.clock())
		age := time.Duration(ageSecs%(3*86400)) * time.Second
		clock.Advance(age)
		l, ok := c.get(k, c.clock(), st)
		fresh := a.ttl > 0 && uint32(age/time.Second) < a.ttl
		if fresh != (ok && l.fresh) {
			t.Fatalf("get(%+v) after %s = found %v fresh %v, want fresh %v (ttl %d)", k, age, ok, l.fresh, fresh, a.ttl)
		}
		if !ok {
			return
		}
		r := l.ans.reply(req, clientOf(req), uint32(age/time.Second), l.stale, st.staleTTL)
		if r.Id != req.Id || len(r.Question) != 1 || r.Question[0] != req.Question[0] {
			t.Fatalf("reply id %d question %v, want id %d question %v", r.Id, r.Question, req.Id, req.Question)
		}
		for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
			for _, rr := range sec {
				h := rr.Header()
				if h.Rrtype == dns.TypeOPT {
					continue
				}
				switch {
				case l.stale && h.Ttl != st.staleTTL:
					t.Fatalf("stale record TTL = %d, want %d", h.Ttl, st.staleTTL)
				case !l.stale && (h.Ttl == 0 || h.Ttl > st.maxTTL-uint32(age/time.Second)):
					t.Fatalf("fresh record TTL = %d after %s (entry ttl %d): wrapped or expired", h.Ttl, age, a.ttl)
				}
			}
		}
		if _, err := r.Pack(); err == dns.ErrExtendedRcode {
			t.Fatalf("reply with rcode %d cannot be packed: %v", r.Rcode, err)
		}
		// Other Pack errors come from odd records; they must not panic.
	})
}

// upper upper-cases ASCII letters, as a client using 0x20 might.
func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
