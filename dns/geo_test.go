package dns

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/dns/geoip/geoiptest"
)

func writeGeo(t *testing.T, dir string, de string) (string, string) {
	t.Helper()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geoiptest.WriteCountry(country, []geoiptest.CountryEntry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: de, Continent: "EU"},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "US", Continent: "NA"},
		{Prefix: netip.MustParsePrefix("192.0.2.0/25"), Country: "BR", Continent: "SA"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := geoiptest.WriteASN(asn, []geoiptest.ASNEntry{
		{Prefix: netip.MustParsePrefix("192.0.2.128/25"), ASN: 64500, Org: "Example"},
	}); err != nil {
		t.Fatal(err)
	}
	return country, asn
}

func TestGeoIPAnswers(t *testing.T) {
	dir := t.TempDir()
	country, asn := writeGeo(t, dir, "DE")
	section := `  geoip: {country: ` + country + `, asn: ` + asn + `}
  zones:
    - name: example.net
      records:
        - name: www
          type: A
          value: 192.0.2.80
          geo:
            - {country: [DE], value: 192.0.2.81}
            - {continent: [NA], value: 192.0.2.82}
            - {asn: [64500], value: 192.0.2.83}
`
	ts := startServer(t, section)
	ecs := func(addr string, bits uint8) func(*mdns.Msg) {
		return func(m *mdns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: bits, Address: net.ParseIP(addr).To4()})
		}
	}
	scope := func(r *mdns.Msg) int {
		for _, o := range r.IsEdns0().Option {
			if e, ok := o.(*mdns.EDNS0_SUBNET); ok {
				return int(e.SourceScope)
			}
		}
		return -1
	}
	tests := []struct {
		name      string
		ecs       string
		bits      uint8
		want      string
		wantScope int
	}{
		{"country", "198.51.100.0", 24, "192.0.2.81", 24},
		{"continent", "203.0.113.0", 24, "192.0.2.82", 24},
		{"asn", "192.0.2.128", 25, "192.0.2.83", 25},
		{"default", "192.0.2.0", 25, "192.0.2.80", 25},
		// Nothing is known in 0.0.0.0/1: the answer holds for all of it.
		{"unknown address", "100.64.0.0", 24, "192.0.2.80", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second answer comes from the cache
				r := ts.query("www.example.net.", mdns.TypeA, ecs(tc.ecs, tc.bits))
				if answers(r) != tc.want || scope(r) != tc.wantScope {
					t.Errorf("ECS %s/%d = %s scope %d, want %s scope %d", tc.ecs, tc.bits, answers(r), scope(r), tc.want, tc.wantScope)
				}
			}
		})
	}

	// A replaced database counts on the next reload; its answers are not
	// served from the old cache.
	writeGeo(t, dir, "FR")
	if err := ts.reload(section); err != nil {
		t.Fatal(err)
	}
	if r := ts.query("www.example.net.", mdns.TypeA, ecs("198.51.100.0", 24)); answers(r) != "192.0.2.80" {
		t.Errorf("after the database moved 198.51.100.0/24 to FR: %s, want the default", answers(r))
	}
	// A broken config (missing file) fails the reload; the old database stays.
	if err := ts.reload(`  geoip: {country: /nonexistent.mmdb}
` + section[len("  geoip: {country: "+country+", asn: "+asn+"}\n"):]); err == nil {
		t.Errorf("reload with a missing database succeeded")
	}
	if r := ts.query("www.example.net.", mdns.TypeA, ecs("203.0.113.0", 24)); answers(r) != "192.0.2.82" {
		t.Errorf("after a failed reload: %s, want the old database's answer", answers(r))
	}
}
