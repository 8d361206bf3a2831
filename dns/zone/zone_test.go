package zone

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/homeedge/edge/internal/config"
)

type section struct {
	Zones []ZoneConfig `yaml:"zones"`
	Views []ViewConfig `yaml:"views"`
}

func (s *section) Validate(c *config.Checker) {
	for i := range s.Zones {
		s.Zones[i].Validate(c.Key("zones").Index(i))
	}
	for i := range s.Views {
		s.Views[i].Validate(c.Key("views").Index(i))
	}
}

const testConfig = `version: 1
site:
  domain: example.net
  local_domain: home.arpa
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
    vpn: [10.100.0.0/24]
dns:
  zones:
    - name: example.net
      ns: [ns1.example.net, ns2.example.org]
      records:
        - {name: "@", type: A, value: 192.0.2.1}
        - {name: "@", type: MX, values: ["10 mail.example.net.", "20 mx.other.org."]}
        - {name: mail, type: A, value: 192.0.2.25}
        - {name: ns1, type: A, value: 192.0.2.1}
        - {name: www, type: A, value: 192.0.2.10}
        - {name: www, type: AAAA, value: "2001:db8::10"}
        - {name: alias, type: CNAME, value: www}
        - {name: outside, type: CNAME, value: www.other.org.}
        - {name: loop1, type: CNAME, value: loop2}
        - {name: loop2, type: CNAME, value: loop1}
        - {name: "*.dev", type: A, value: 192.0.2.99}
        - {name: x.ent.dev, type: A, value: 192.0.2.98}
        - {name: self, type: CNAME, value: self}
        - {name: intosub, type: CNAME, value: host.sub}
        - {name: "@", type: TXT, value: "v=spf1 -all"}
        - {name: a.b.deep, type: TXT, value: "hello world"}
        - {name: sub, type: NS, value: ns.sub.example.net.}
        - {name: ns.sub, type: A, value: 192.0.2.53}
        - {name: _sip._udp, type: SRV, value: "10 5 5060 mail.example.net."}
        - {name: geo, type: A, value: 192.0.2.100, geo: [
            {country: [DE], value: 198.51.100.100},
            {continent: [NA], values: [203.0.113.100, 203.0.113.101]},
            {networks: [10.9.0.0/16], value: 192.0.2.109}]}
    - name: home.arpa
      records:
        - {name: nas, type: A, value: 192.168.1.10}
        - {name: nas, type: AAAA, value: "fd00:1::10"}
  views:
    - name: inside
      match: {networks: [lan, vpn]}
      inherit: [MX]
      records:
        - {name: www.example.net, type: A, value: 192.168.1.10}
        - {name: example.net, type: A, value: 192.168.1.1}
`

func buildTest(t *testing.T, yaml string) *Set {
	t.Helper()
	f, err := config.Parse([]byte(yaml), "edge.yaml", "dns", func() section { return section{} })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var inside []netip.Prefix
	for _, n := range []string{"lan", "vpn"} {
		inside = append(inside, f.Site.Networks[n]...)
	}
	s, err := Build(Input{Site: &f.Site, Zones: f.Section.Zones, Views: f.Section.Views, Inside: inside})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return s
}

// short renders a result compactly: rcode, answers, authority, extra.
func short(r Result) string {
	var b strings.Builder
	if r.Zone == nil {
		return "NOT-OURS"
	}
	b.WriteString(dns.RcodeToString[r.Rcode])
	if r.Referral {
		b.WriteString(" REFERRAL")
	}
	for _, sec := range []struct {
		name string
		rrs  []dns.RR
	}{{"an", r.Answer}, {"ns", r.Ns}, {"ex", r.Extra}} {
		if len(sec.rrs) == 0 {
			continue
		}
		var parts []string
		for _, rr := range sec.rrs {
			h := rr.Header()
			data := strings.TrimPrefix(rr.String(), h.String())
			if h.Rrtype == dns.TypeSOA {
				data = "..."
			}
			parts = append(parts, h.Name+" "+dns.TypeToString[h.Rrtype]+" "+data)
		}
		sort.Strings(parts)
		b.WriteString(" | " + sec.name + ": " + strings.Join(parts, ", "))
	}
	return b.String()
}

func TestLookup(t *testing.T) {
	s := buildTest(t, testConfig)
	outside := &Client{}
	tests := []struct {
		name  string
		qname string
		qtype uint16
		c     *Client
		want  string
	}{
		{"apex A", "example.net.", dns.TypeA, outside, "NOERROR | an: example.net. A 192.0.2.1"},
		{"A", "www.example.net.", dns.TypeA, outside, "NOERROR | an: www.example.net. A 192.0.2.10"},
		{"NODATA has SOA", "mail.example.net.", dns.TypeAAAA, outside, "NOERROR | ns: example.net. SOA ..."},
		{"NXDOMAIN has SOA", "nope.example.net.", dns.TypeA, outside, "NXDOMAIN | ns: example.net. SOA ..."},
		{"empty non-terminal is NODATA", "b.deep.example.net.", dns.TypeA, outside, "NOERROR | ns: example.net. SOA ..."},
		{"TXT", "a.b.deep.example.net.", dns.TypeTXT, outside, `NOERROR | an: a.b.deep.example.net. TXT "hello world"`},
		{"CNAME chased", "alias.example.net.", dns.TypeA, outside, "NOERROR | an: alias.example.net. CNAME www.example.net., www.example.net. A 192.0.2.10"},
		{"CNAME asked", "alias.example.net.", dns.TypeCNAME, outside, "NOERROR | an: alias.example.net. CNAME www.example.net."},
		{"CNAME out of our zones", "outside.example.net.", dns.TypeA, outside, "NOERROR | an: outside.example.net. CNAME www.other.org."},
		{"CNAME loop stops", "loop1.example.net.", dns.TypeA, outside, "NOERROR | an: loop1.example.net. CNAME loop2.example.net., loop2.example.net. CNAME loop1.example.net."},
		{"wildcard", "x.dev.example.net.", dns.TypeA, outside, "NOERROR | an: x.dev.example.net. A 192.0.2.99"},
		{"wildcard deeper", "y.x.dev.example.net.", dns.TypeA, outside, "NOERROR | an: y.x.dev.example.net. A 192.0.2.99"},
		{"wildcard NODATA", "x.dev.example.net.", dns.TypeAAAA, outside, "NOERROR | ns: example.net. SOA ..."},
		{"no wildcard past an existing name", "z.b.deep.example.net.", dns.TypeA, outside, "NXDOMAIN | ns: example.net. SOA ..."},
		{"referral", "host.sub.example.net.", dns.TypeA, outside, "NOERROR REFERRAL | ns: sub.example.net. NS ns.sub.example.net. | ex: ns.sub.example.net. A 192.0.2.53"},
		{"MX with additional", "example.net.", dns.TypeMX, outside, "NOERROR | an: example.net. MX 10 mail.example.net., example.net. MX 20 mx.other.org. | ex: mail.example.net. A 192.0.2.25"},
		{"SRV", "_sip._udp.example.net.", dns.TypeSRV, outside, "NOERROR | an: _sip._udp.example.net. SRV 10 5 5060 mail.example.net. | ex: mail.example.net. A 192.0.2.25"},
		{"NS at apex", "example.net.", dns.TypeNS, outside, "NOERROR | an: example.net. NS ns1.example.net., example.net. NS ns2.example.org. | ex: ns1.example.net. A 192.0.2.1"},
		{"SOA at apex", "example.net.", dns.TypeSOA, outside, "NOERROR | an: example.net. SOA ..."},
		{"ANY is minimal", "www.example.net.", dns.TypeANY, outside, "NOERROR | an: www.example.net. A 192.0.2.10"},
		// RFC 4592 2.2.2: an empty non-terminal exists; no wildcard for it.
		{"empty non-terminal below a wildcard", "ent.dev.example.net.", dns.TypeA, outside, "NOERROR | ns: example.net. SOA ..."},
		{"below the empty non-terminal", "y.ent.dev.example.net.", dns.TypeA, outside, "NXDOMAIN | ns: example.net. SOA ..."},
		// RFC 8482 4.1: ANY gets an RRset of the name, whatever its type.
		{"ANY at an SRV-only name", "_sip._udp.example.net.", dns.TypeANY, outside, "NOERROR | an: _sip._udp.example.net. SRV 10 5 5060 mail.example.net."},
		// RFC 1034 3.6.2: ANY matches the CNAME itself; no restart.
		{"ANY at a CNAME owner", "alias.example.net.", dns.TypeANY, outside, "NOERROR | an: alias.example.net. CNAME www.example.net."},
		// RFC 1034 4.3.2 step 3b, after a CNAME: the chain, then the referral.
		{"CNAME into a delegation", "intosub.example.net.", dns.TypeA, outside, "NOERROR | an: intosub.example.net. CNAME host.sub.example.net. | ns: sub.example.net. NS ns.sub.example.net. | ex: ns.sub.example.net. A 192.0.2.53"},
		{"CNAME to itself, once", "self.example.net.", dns.TypeA, outside, "NOERROR | an: self.example.net. CNAME self.example.net."},
		{"not ours", "www.other.org.", dns.TypeA, outside, "NOT-OURS"},
		{"inside zone hidden from outside", "nas.home.arpa.", dns.TypeA, outside, "NOT-OURS"},
		{"inside zone for inside", "nas.home.arpa.", dns.TypeA, &Client{Inside: true}, "NOERROR | an: nas.home.arpa. A 192.168.1.10"},
		{"reverse v4", "10.1.168.192.in-addr.arpa.", dns.TypePTR, &Client{Inside: true, View: s.MatchView(netip.MustParseAddr("192.168.1.100"), netip.Addr{})}, "NOERROR | an: 10.1.168.192.in-addr.arpa. PTR nas.home.arpa., 10.1.168.192.in-addr.arpa. PTR www.example.net."},
		{"reverse v6", "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, &Client{Inside: true}, "NOERROR | an: 0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa. PTR nas.home.arpa."},
		{"reverse hidden from outside", "10.1.168.192.in-addr.arpa.", dns.TypePTR, outside, "NOT-OURS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := short(s.Lookup(tc.qname, tc.qtype, tc.c)); got != tc.want {
				t.Errorf("Lookup(%s, %s) =\n  %s\nwant\n  %s", tc.qname, dns.TypeToString[tc.qtype], got, tc.want)
			}
		})
	}
}

func TestViews(t *testing.T) {
	s := buildTest(t, testConfig)
	lanClient := netip.MustParseAddr("192.168.1.100")
	v := s.MatchView(lanClient, netip.Addr{})
	if v == nil || v.Name != "inside" {
		t.Fatalf("MatchView(%s) = %v, want inside", lanClient, v)
	}
	if got := s.MatchView(netip.MustParseAddr("198.51.100.10"), netip.Addr{}); got != nil {
		t.Errorf("MatchView(outside) = %v, want none", got.Name)
	}
	if got := s.MatchView(netip.MustParseAddr("::ffff:10.100.0.5"), netip.Addr{}); got == nil {
		t.Errorf("MatchView(mapped vpn address) = nil, want inside")
	}
	in := &Client{Inside: true, View: v}
	tests := []struct {
		qname string
		qtype uint16
		want  string
	}{
		{"www.example.net.", dns.TypeA, "NOERROR | an: www.example.net. A 192.168.1.10"},
		// The view owns www: the public AAAA must not leak.
		{"www.example.net.", dns.TypeAAAA, "NOERROR | ns: example.net. SOA ..."},
		{"example.net.", dns.TypeA, "NOERROR | an: example.net. A 192.168.1.1"},
		// MX is inherited from the zone for names the view owns.
		{"example.net.", dns.TypeMX, "NOERROR | an: example.net. MX 10 mail.example.net., example.net. MX 20 mx.other.org. | ex: mail.example.net. A 192.0.2.25"},
		// The apex's NS and SOA are never hidden by a view that owns the
		// apex; its other types are, unless inherited.
		{"example.net.", dns.TypeNS, "NOERROR | an: example.net. NS ns1.example.net., example.net. NS ns2.example.org. | ex: ns1.example.net. A 192.0.2.1"},
		{"example.net.", dns.TypeSOA, "NOERROR | an: example.net. SOA ..."},
		{"example.net.", dns.TypeTXT, "NOERROR | ns: example.net. SOA ..."},
		// Names the view does not declare come from the zone.
		{"mail.example.net.", dns.TypeA, "NOERROR | an: mail.example.net. A 192.0.2.25"},
		// A CNAME into a view-owned name follows the view.
		{"alias.example.net.", dns.TypeA, "NOERROR | an: alias.example.net. CNAME www.example.net., www.example.net. A 192.168.1.10"},
	}
	for _, tc := range tests {
		if got := short(s.Lookup(tc.qname, tc.qtype, in)); got != tc.want {
			t.Errorf("inside Lookup(%s, %s) =\n  %s\nwant\n  %s", tc.qname, dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
}

func TestGeo(t *testing.T) {
	s := buildTest(t, testConfig)
	tests := []struct {
		name      string
		loc       Location
		want      string
		wantScope int
	}{
		{"country", Location{Country: "DE", Continent: "EU", Addr: netip.MustParseAddr("198.51.100.10"), Bits: 32, Scope: 24}, "NOERROR | an: geo.example.net. A 198.51.100.100", 24},
		{"continent", Location{Country: "US", Continent: "NA", Addr: netip.MustParseAddr("203.0.113.10"), Bits: 32, Scope: 20}, "NOERROR | an: geo.example.net. A 203.0.113.100, geo.example.net. A 203.0.113.101", 20},
		{"network", Location{Addr: netip.MustParseAddr("10.9.3.4"), Bits: 32, Scope: 8}, "NOERROR | an: geo.example.net. A 192.0.2.109", 16},
		{"default", Location{Country: "JP", Continent: "AS", Addr: netip.MustParseAddr("192.0.2.77"), Bits: 24, Scope: 16}, "NOERROR | an: geo.example.net. A 192.0.2.100", 24},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			c := &Client{Locate: func() Location { calls++; return tc.loc }}
			r := s.Lookup("geo.example.net.", dns.TypeA, c)
			if got := short(r); got != tc.want || r.GeoScope != tc.wantScope {
				t.Errorf("Lookup(geo) = %s scope %d, want %s scope %d", got, r.GeoScope, tc.want, tc.wantScope)
			}
			if calls != 1 {
				t.Errorf("Locate called %d times, want 1", calls)
			}
		})
	}
	// An answer that does not depend on location never locates.
	r := s.Lookup("www.example.net.", dns.TypeA, &Client{Locate: func() Location { t.Error("Locate called for a plain answer"); return Location{} }})
	if r.GeoScope != -1 {
		t.Errorf("GeoScope of a plain answer = %d, want -1", r.GeoScope)
	}
}

func TestHealthFilter(t *testing.T) {
	s := buildTest(t, testConfig)
	down := map[string]bool{"203.0.113.100": true}
	c := &Client{
		Locate: func() Location { return Location{Continent: "NA"} },
		Up:     func(rr dns.RR) bool { return !down[rr.(*dns.A).A.String()] },
	}
	if got := short(s.Lookup("geo.example.net.", dns.TypeA, c)); got != "NOERROR | an: geo.example.net. A 203.0.113.101" {
		t.Errorf("with one value down = %s", got)
	}
	down["203.0.113.101"] = true
	if got := short(s.Lookup("geo.example.net.", dns.TypeA, c)); !strings.Contains(got, "203.0.113.100") || !strings.Contains(got, "203.0.113.101") {
		t.Errorf("with every value down = %s, want all values (better than nothing)", got)
	}
}

func TestBuildErrors(t *testing.T) {
	base := "version: 1\nsite: {networks: {lan: [192.168.1.0/24]}}\ndns:\n"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"bad value", "  zones: [{name: example.net, records: [{name: www, type: A, value: 300.1.1.1}]}]\n", `dns.zones[0].records[0].value: invalid A value "300.1.1.1"`},
		{"AAAA in A", "  zones: [{name: example.net, records: [{name: www, type: A, value: \"2001:db8::1\"}]}]\n", `invalid A value`},
		{"unknown type", "  zones: [{name: example.net, records: [{name: www, type: HINFO, value: x}]}]\n", `dns.zones[0].records[0].type: unknown type "HINFO"`},
		{"no value", "  zones: [{name: example.net, records: [{name: www, type: A}]}]\n", "dns.zones[0].records[0]: www A has no value"},
		{"outside zone", "  zones: [{name: example.net, records: [{name: www.other.org., type: A, value: 192.0.2.1}]}]\n", `name "www.other.org." is outside the zone example.net.`},
		{"bad country", "  zones: [{name: example.net, records: [{name: g, type: A, value: 192.0.2.1, geo: [{country: [de], value: 192.0.2.2}]}]}]\n", `dns.zones[0].records[0].geo[0].country[0]: country "de"`},
		{"geo without match", "  zones: [{name: example.net, records: [{name: g, type: A, value: 192.0.2.1, geo: [{value: 192.0.2.2}]}]}]\n", "geo[0]: give country, continent, asn or networks"},
		{"view without match", "  views: [{name: inside, records: []}]\n", "dns.views[0].match: a view needs networks"},
		{"view unknown network", "  views: [{name: inside, match: {networks: [dmz]}}]\n", `unknown network "dmz"`},
		{"two CNAME values", "  zones: [{name: example.net, records: [{name: a, type: CNAME, values: [b, c]}]}]\n", "a CNAME has exactly one value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(base+tc.in), "edge.yaml", "dns", func() section { return section{} })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("config error = %v, want %q", err, tc.want)
			}
		})
	}

	// Problems only the build sees.
	buildTests := []struct {
		name string
		in   string
		want string
	}{
		{"duplicate zone", "  zones: [{name: example.net}, {name: Example.NET.}]\n", "zones[1].name: zone example.net. is declared twice"},
		{"duplicate record", "  zones: [{name: example.net, records: [{name: www, type: A, value: 192.0.2.1}, {name: www, type: A, value: 192.0.2.2}]}]\n", "zones[0].records[1]: www.example.net. A is declared twice"},
		{"CNAME and data", "  zones: [{name: example.net, records: [{name: www, type: A, value: 192.0.2.1}, {name: www, type: CNAME, value: x}]}]\n", "www.example.net. has a CNAME and other records"},
		{"view name in no zone", "  zones: [{name: example.net}]\n  views: [{name: inside, match: {networks: [lan]}, records: [{name: printer.lan, type: A, value: 192.168.1.5}]}]\n", "views[0].records[0].name: printer.lan. is in no zone"},
		{"missing zone file", "  zones: [{name: example.net, file: /nonexistent/example.net.zone}]\n", "zones[0].file: open /nonexistent/example.net.zone: no such file or directory"},
	}
	for _, tc := range buildTests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse([]byte(base+tc.in), "edge.yaml", "dns", func() section { return section{} })
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			_, err = Build(Input{Site: &f.Site, Zones: f.Section.Zones, Views: f.Section.Views})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestZoneFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "example.net.zone")
	os.WriteFile(file, []byte(`$ORIGIN example.net.
$TTL 600
@      IN SOA ignored. ignored. 1 2 3 4 5
@      IN NS  ignored.example.net.
ftp    IN A   192.0.2.21
www    IN A   192.0.2.22
`), 0o644)
	s := buildTest(t, "version: 1\ndns:\n  zones: [{name: example.net, file: "+file+", records: [{name: www, type: A, value: 192.0.2.10}]}]\n")
	if got := short(s.Lookup("ftp.example.net.", dns.TypeA, &Client{})); got != "NOERROR | an: ftp.example.net. A 192.0.2.21" {
		t.Errorf("file record = %s", got)
	}
	// The config's www replaces the file's RRset of the same type.
	if got := short(s.Lookup("www.example.net.", dns.TypeA, &Client{})); got != "NOERROR | an: www.example.net. A 192.0.2.10" {
		t.Errorf("www = %s, want the config's", got)
	}
	if got := short(s.Lookup("example.net.", dns.TypeNS, &Client{})); got != "NOERROR | an: example.net. NS ns1.example.net." {
		t.Errorf("apex NS = %s, want the config's, not the file's", got)
	}
	os.WriteFile(file, []byte("$ORIGIN example.net.\nwww IN A 192.0.2.300\n"), 0o644)
	f, _ := config.Parse([]byte("version: 1\ndns:\n  zones: [{name: example.net, file: "+file+"}]\n"), "edge.yaml", "dns", func() section { return section{} })
	_, err := Build(Input{Site: &f.Site, Zones: f.Section.Zones})
	if err == nil || !strings.Contains(err.Error(), "example.net.zone") || !strings.Contains(err.Error(), "line: 2") {
		t.Errorf("broken zone file error = %v, want the file and line", err)
	}
}

func TestDynamicAndSerial(t *testing.T) {
	f, err := config.Parse([]byte(testConfig), "edge.yaml", "dns", func() section { return section{} })
	if err != nil {
		t.Fatal(err)
	}
	laptop, _ := dns.NewRR("laptop.vpn.home.arpa. 60 IN A 10.100.0.2")
	clash, _ := dns.NewRR("www.example.net. 60 IN A 203.0.113.66")
	hashes := map[string]uint64{}
	serial := func(origin string, h uint64) uint32 { hashes[origin] = h; return 7 }
	s, err := Build(Input{Site: &f.Site, Zones: f.Section.Zones, Dynamic: []dns.RR{laptop, clash}, Inside: f.Site.Networks["vpn"], Serial: serial})
	if err != nil {
		t.Fatal(err)
	}
	in := &Client{Inside: true}
	if got := short(s.Lookup("laptop.vpn.home.arpa.", dns.TypeA, in)); got != "NOERROR | an: laptop.vpn.home.arpa. A 10.100.0.2" {
		t.Errorf("dynamic record = %s", got)
	}
	if got := short(s.Lookup("www.example.net.", dns.TypeA, &Client{})); got != "NOERROR | an: www.example.net. A 192.0.2.10" {
		t.Errorf("dynamic record over a config name = %s, want the config's", got)
	}
	if got := short(s.Lookup("2.0.100.10.in-addr.arpa.", dns.TypePTR, in)); got != "NOERROR | an: 2.0.100.10.in-addr.arpa. PTR laptop.vpn.home.arpa." {
		t.Errorf("PTR of a dynamic record = %s", got)
	}
	if s.Zone("example.net").SOA.Serial != 7 {
		t.Errorf("serial = %d, want 7 from the Serial func", s.Zone("example.net").SOA.Serial)
	}
	// The same content hashes the same; a change changes the hash.
	first := hashes["home.arpa."]
	s2, _ := Build(Input{Site: &f.Site, Zones: f.Section.Zones, Dynamic: []dns.RR{laptop}, Serial: serial})
	_ = s2
	if hashes["home.arpa."] != first {
		t.Errorf("home.arpa hash changed without a change")
	}
	Build(Input{Site: &f.Site, Zones: f.Section.Zones, Serial: serial})
	if hashes["home.arpa."] == first {
		t.Errorf("home.arpa hash unchanged after removing a record")
	}
}

func TestRecordsCanonical(t *testing.T) {
	s := buildTest(t, "version: 1\ndns:\n  zones: [{name: example.net, records: [{name: b, type: A, value: 192.0.2.2}, {name: a, type: A, value: 192.0.2.1}, {name: a.b, type: A, value: 192.0.2.3}]}]\n")
	var names []string
	for _, rr := range s.Zone("example.net").Records() {
		names = append(names, rr.Header().Name+"/"+dns.TypeToString[rr.Header().Rrtype])
	}
	want := []string{"example.net./SOA", "example.net./NS", "a.example.net./A", "b.example.net./A", "a.b.example.net./A"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("Records() order (-want +got):\n%s", diff)
	}
}

func TestReverseZoneName(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.1.0/24": "1.168.192.in-addr.arpa.",
		"10.200.0.0/16":  "200.10.in-addr.arpa.",
		"10.0.0.0/8":     "10.in-addr.arpa.",
		"192.168.1.0/25": "1.168.192.in-addr.arpa.",
		"fd00:1::/64":    "0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa.",
		"fd00:100::/56":  "0.0.0.0.0.0.0.0.1.0.0.0.d.f.ip6.arpa.",
	} {
		if got := reverseZoneName(netip.MustParsePrefix(in)); got != want {
			t.Errorf("reverseZoneName(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestViewInterfaces(t *testing.T) {
	f, err := config.Parse([]byte(`version: 1
dns:
  zones: [{name: example.net, records: [{name: www, type: A, value: 192.0.2.10}]}]
  views:
    - name: lan
      match: {interfaces: [br-lan]}
      records: [{name: www.example.net, type: A, value: 192.168.1.10}]
`), "edge.yaml", "dns", func() section { return section{} })
	if err != nil {
		t.Fatal(err)
	}
	ifAddrs := func(name string) ([]netip.Addr, error) {
		if name != "br-lan" {
			return nil, fmt.Errorf("interface %s: no such network interface", name)
		}
		return []netip.Addr{netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("fd00:1::1")}, nil
	}
	s, err := Build(Input{Site: &f.Site, Zones: f.Section.Zones, Views: f.Section.Views, InterfaceAddrs: ifAddrs})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("192.168.1.100")
	if v := s.MatchView(src, netip.MustParseAddr("192.168.1.1")); v == nil || v.Name != "lan" {
		t.Errorf("query to br-lan's address matched %v, want lan", v)
	}
	if v := s.MatchView(src, netip.MustParseAddr("fd00:1::1")); v == nil {
		t.Errorf("query to br-lan's IPv6 address matched no view")
	}
	if v := s.MatchView(src, netip.MustParseAddr("192.0.2.1")); v != nil {
		t.Errorf("query to the wan address matched %s, want none", v.Name)
	}
	f.Section.Views[0].Match.Interfaces = []string{"wg9"}
	if _, err := Build(Input{Site: &f.Site, Zones: f.Section.Zones, Views: f.Section.Views, InterfaceAddrs: ifAddrs}); err == nil || !strings.Contains(err.Error(), "views[0].match.interfaces[0]: interface wg9") {
		t.Errorf("unknown interface error = %v", err)
	}
}

// TestReverseZoneSOA: a generated reverse zone names the site's servers
// (the local domain's zone, else the public one), not localhost.
func TestReverseZoneSOA(t *testing.T) {
	tests := []struct {
		name, config, wantSOA, wantNS string
	}{
		{"local domain's zone", testConfig, "ns1.home.arpa. hostmaster.home.arpa.", "ns1.home.arpa."},
		{"public zone when no local one", strings.Replace(testConfig, "    - name: home.arpa\n", "    - name: home.example\n", 1),
			"ns1.example.net. hostmaster.example.net.", "ns1.example.net. ns2.example.org."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := buildTest(t, tc.config)
			z := s.Zone("1.168.192.in-addr.arpa.")
			if z == nil {
				t.Fatal("no reverse zone for the lan")
			}
			if got := z.SOA.Ns + " " + z.SOA.Mbox; got != tc.wantSOA {
				t.Errorf("SOA = %s, want %s", got, tc.wantSOA)
			}
			r := s.Lookup("1.168.192.in-addr.arpa.", dns.TypeNS, &Client{Inside: true})
			var ns []string
			for _, rr := range r.Answer {
				ns = append(ns, rr.(*dns.NS).Ns)
			}
			if got := strings.Join(ns, " "); got != tc.wantNS {
				t.Errorf("NS = %s, want %s", got, tc.wantNS)
			}
		})
	}
}

func TestParseRR(t *testing.T) {
	tests := []struct {
		typ, value, want, err string
	}{
		// A ";" inside quotes is data (RFC 8659 parameters).
		{"CAA", `0 issue "ca.example; accounturi=https://ca.example/acct/1"`, `0 issue "ca.example; accounturi=https://ca.example/acct/1"`, ""},
		{"TXT", "a; b", `"a; b"`, ""},
		{"MX", "10 mail ; comment", "", "no comments or directives"},
		{"CAA", `0 issue "ca.example" ; x`, "", "no comments or directives"},
		{"A", "192.0.2.1\n192.0.2.2", "", "no comments or directives"},
		{"A", "192.0.2.x", "", `invalid A value "192.0.2.x": not valid A data`},
		{"MX", "ten mail", "", `invalid MX value "ten mail": bad pref field`},
	}
	for _, tc := range tests {
		rr, err := ParseRR("example.net.", "x.example.net.", tc.typ, 300, tc.value)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "line:") {
				t.Errorf("ParseRR(%s %q) error = %v, want one containing %q and no parser position", tc.typ, tc.value, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseRR(%s %q) error = %v", tc.typ, tc.value, err)
		case !strings.HasSuffix(rr.String(), tc.want):
			t.Errorf("ParseRR(%s %q) = %s, want data %s", tc.typ, tc.value, rr, tc.want)
		}
	}
}
