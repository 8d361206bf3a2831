package zone

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/homeedge/edge/internal/config"
)

// FuzzRecord feeds arbitrary record names, types and values (what the
// config, the admin API and updates hand in) through validation, the
// build and lookups: no panic, and a record that validates builds.
func FuzzRecord(f *testing.F) {
	f.Add("www", "A", "192.0.2.1", "x.example.net.")
	f.Add("@", "MX", "10 mail", "example.net.")
	f.Add("*.dev", "TXT", "hello \"world\"", "y.dev.example.net.")
	f.Add("_sip._udp", "SRV", "10 5 5060 sip.example.net.", "_sip._udp.example.net.")
	f.Add("c", "CAA", "0 issue \"letsencrypt.org\"", "c.example.net.")
	f.Add("a", "CNAME", "a", "a.example.net.")
	f.Fuzz(func(t *testing.T, name, typ, value, qname string) {
		rc := RecordConfig{Name: name, Type: typ, Value: value}
		c := &config.Checker{}
		rc.validate(c, "example.net.", false)
		if c.Failed() {
			return
		}
		s, err := Build(Input{Zones: []ZoneConfig{{Name: "example.net", TTL: config.Duration(300e9), Records: []RecordConfig{rc}}}})
		if err != nil {
			return // a CNAME beside other data and the like
		}
		if _, ok := dns.IsDomainName(qname); !ok {
			return
		}
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.StringToType[typ], dns.TypeANY, dns.TypeCNAME} {
			r := s.Lookup(Fqdn(qname), qt, &Client{Inside: true})
			for _, rr := range append(append(r.Answer, r.Ns...), r.Extra...) {
				if dns.Len(rr) <= 0 {
					t.Fatalf("empty record in answer: %v", rr)
				}
			}
		}
	})
}

// FuzzZoneFile feeds arbitrary master-file text to the build: errors, not
// panics.
func FuzzZoneFile(f *testing.F) {
	f.Add("$ORIGIN example.net.\n$TTL 600\nwww IN A 192.0.2.1\nmail IN MX 10 www\n")
	f.Add("@ IN SOA a. b. 1 2 3 4 5\n@ IN NS ns1\n")
	f.Add("$INCLUDE /etc/passwd\n")
	f.Add("www IN TXT ( \"a\"\n \"b\" )\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "z.zone")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Build(Input{Zones: []ZoneConfig{{Name: "example.net", TTL: config.Duration(300e9), File: path}}})
		if err != nil {
			return
		}
		for _, e := range s.Zone("example.net").Entries() {
			if !isBelow(e.RR.Header().Name, "example.net.") {
				t.Fatalf("record outside the zone accepted: %v", e.RR)
			}
		}
	})
}
