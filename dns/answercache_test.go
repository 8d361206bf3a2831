package dns

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestAnswerCache(t *testing.T) {
	ts := startServer(t, zones+`  views:
    - name: loopback
      match: {networks: [127.0.0.2/32]}
      records:
        - {name: www.example.net, type: A, value: 192.168.1.10}
`)
	hits := func() float64 {
		mfs, _ := ts.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "edge_dns_answer_cache_hits_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	for i := range 3 {
		r := ts.query("www.example.net.", mdns.TypeA)
		if answers(r) != "192.0.2.10" {
			t.Fatalf("query %d = %v", i, r)
		}
	}
	if h := hits(); h != 2 {
		t.Errorf("cache hits after 3 equal queries = %v, want 2", h)
	}
	// The cached reply carries the asker's ID and spelling.
	m := new(mdns.Msg)
	m.SetQuestion("WWW.example.NET.", mdns.TypeA)
	m.Id = 4242
	m.RecursionDesired = false
	r, _, err := (&mdns.Client{Timeout: 2e9}).Exchange(m, ts.addr)
	if err != nil || r.Id != 4242 || r.Question[0].Name != "WWW.example.NET." || r.RecursionDesired || answers(r) != "192.0.2.10" {
		t.Errorf("cached reply = %v, %v", r, err)
	}
	// Another client address (another view) gets its own answer.
	c := &mdns.Client{Timeout: 2e9, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}}}
	for range 2 {
		m := new(mdns.Msg)
		m.SetQuestion("www.example.net.", mdns.TypeA)
		r, _, err := c.Exchange(m, ts.addr)
		if err != nil || answers(r) != "192.168.1.10" {
			t.Fatalf("from 127.0.0.2 = %v, %v; want the view's answer", r, err)
		}
	}
	if r := ts.query("www.example.net.", mdns.TypeA); answers(r) != "192.0.2.10" {
		t.Errorf("from 127.0.0.1 after the view's answers were cached = %v", r)
	}
	// A change replaces the cache.
	if err := ts.reload(strings.Replace(zones, "192.0.2.10}", "192.0.2.12}", 1)); err != nil {
		t.Fatal(err)
	}
	if r := ts.query("www.example.net.", mdns.TypeA); answers(r) != "192.0.2.12" {
		t.Errorf("after reload = %v, want the new answer", answers(r))
	}
	// EDNS and plain queries do not share entries.
	r = ts.query("www.example.net.", mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(1232, false) })
	if r.IsEdns0() == nil {
		t.Errorf("EDNS query answered without OPT (a plain answer from the cache?)")
	}
	if r := ts.query("www.example.net.", mdns.TypeA); r.IsEdns0() != nil {
		t.Errorf("plain query answered with OPT")
	}
}

func TestParseKey(t *testing.T) {
	s := newHandlerOnly(t, zones)
	rt := s.rt.Load()
	pack := func(build func(m *mdns.Msg)) []byte {
		m := new(mdns.Msg)
		m.SetQuestion("Www.Example.Net.", mdns.TypeA)
		build(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	src := netip.MustParseAddr("192.168.1.100")
	tests := []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"plain", pack(func(*mdns.Msg) {}), true},
		{"edns", pack(func(m *mdns.Msg) { m.SetEdns0(4096, true) }), true},
		{"ecs", pack(func(m *mdns.Msg) {
			m.SetEdns0(4096, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0).To4()})
		}), true},
		{"ecs with host bits", hostBits(pack(func(m *mdns.Msg) {
			m.SetEdns0(4096, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 20, Address: net.IPv4(198, 51, 96, 0).To4()})
		})), false},
		{"cookie", pack(func(m *mdns.Msg) {
			m.SetEdns0(4096, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0102030405060708"})
		}), false},
		{"edns version 1", pack(func(m *mdns.Msg) { m.SetEdns0(4096, false); m.IsEdns0().SetVersion(1) }), false},
		{"update", pack(func(m *mdns.Msg) { m.Opcode = mdns.OpcodeUpdate }), false},
		{"response", pack(func(m *mdns.Msg) { m.Response = true }), false},
		{"tsig", pack(func(m *mdns.Msg) { m.SetTsig("k.", mdns.HmacSHA256, 300, 0); m.Extra[0].(*mdns.TSIG).MAC = "00" }), false},
		{"axfr", pack(func(m *mdns.Msg) { m.Question[0].Qtype = mdns.TypeAXFR }), false},
		{"short", []byte{0, 1, 0, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, qend, ok := parseKey(tc.pkt, src, netip.Addr{}, containsAddr(rt.inside, src), rt)
			if ok != tc.ok {
				t.Fatalf("parseKey ok = %v, want %v", ok, tc.ok)
			}
			if ok && (k.name != "\x03www\x07example\x03net\x00" || qend != 12+len(k.name) || !k.inside || k.qtype != mdns.TypeA) {
				t.Errorf("parseKey = %+v, qend %d", k, qend)
			}
		})
	}
}

// hostBits sets bits past the /20 of a packet ending in an ECS option
// (miekg/dns masks them when packing).
func hostBits(pkt []byte) []byte {
	pkt[len(pkt)-1] = 100
	return pkt
}

// FuzzParseKey checks the raw parser against miekg/dns: whatever it
// accepts must unpack to the same question.
func FuzzParseKey(f *testing.F) {
	s := newHandlerOnly(f, zones)
	rt := s.rt.Load()
	m := new(mdns.Msg)
	m.SetQuestion("www.example.net.", mdns.TypeA)
	b, _ := m.Pack()
	f.Add(b)
	m.SetEdns0(1232, true)
	b, _ = m.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		k, qend, ok := parseKey(pkt, netip.MustParseAddr("192.0.2.1"), netip.Addr{}, false, rt)
		if !ok {
			return
		}
		var msg mdns.Msg
		if err := msg.Unpack(pkt); err != nil {
			t.Fatalf("parseKey accepted what miekg/dns rejects: %v", err)
		}
		q := msg.Question[0]
		name := make([]byte, 256)
		n, err := mdns.PackDomainName(strings.ToLower(q.Name), name, 0, nil, false)
		if err == nil && string(name[:n]) != k.name && !strings.Contains(q.Name, "\\") {
			t.Fatalf("key name %q, message name %q", k.name, q.Name)
		}
		if q.Qtype != k.qtype || q.Qclass != k.qclass || qend > len(pkt) {
			t.Fatalf("key %+v, question %v", k, q)
		}
	})
}
