package geoiptest

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/oschwald/geoip2-golang/v2"
)

// The files must read like MaxMind's own through MaxMind's reader: that
// is what makes them stand-ins for GeoLite2 in tests and benchmarks.
func TestFilesReadAsGeoLite2(t *testing.T) {
	dir := t.TempDir()
	entries := []CountryEntry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "DE", Continent: "EU"},
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Country: "US", Continent: "NA"},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Continent: "EU"},
		// Later entries win where they overlap.
		{Prefix: netip.MustParsePrefix("198.51.100.128/25"), Country: "FR", Continent: "EU"},
	}
	country, city, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := WriteCountry(country, entries); err != nil {
		t.Fatal(err)
	}
	if err := WriteCity(city, entries); err != nil {
		t.Fatal(err)
	}
	if err := WriteASN(asn, []ASNEntry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/22"), ASN: 64501, Org: "Example-Org"},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), ASN: 64502},
	}); err != nil {
		t.Fatal(err)
	}

	type want struct {
		country, registered, continent string
		network                        string
	}
	cases := map[string]want{
		"198.51.100.1":     {"DE", "DE", "EU", "198.51.100.0/25"},
		"198.51.100.200":   {"FR", "FR", "EU", "198.51.100.128/25"},
		"2001:db8:1::1":    {"US", "US", "NA", "2001:db8:1::/48"},
		"192.0.2.1":        {"", "", "EU", "192.0.2.0/24"},
		"::ffff:192.0.2.1": {"", "", "EU", "::ffff:192.0.2.0/120"},
	}
	for _, path := range []string{country, city} {
		r, err := geoip2.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for addr, w := range cases {
			var got want
			if path == city {
				c, err := r.City(netip.MustParseAddr(addr))
				if err != nil {
					t.Fatalf("City(%s): %v", addr, err)
				}
				if c.City.Names.English == "" || c.Location.Latitude == nil {
					t.Errorf("City(%s) = %+v, want city and location fields", addr, c)
				}
				got = want{c.Country.ISOCode, c.RegisteredCountry.ISOCode, c.Continent.Code, c.Traits.Network.String()}
			} else {
				c, err := r.Country(netip.MustParseAddr(addr))
				if err != nil {
					t.Fatalf("Country(%s): %v", addr, err)
				}
				got = want{c.Country.ISOCode, c.RegisteredCountry.ISOCode, c.Continent.Code, c.Traits.Network.String()}
			}
			if got != w {
				t.Errorf("%s: lookup(%s) = %+v, want %+v", filepath.Base(path), addr, got, w)
			}
		}
		if typ := r.Metadata().DatabaseType; typ != map[string]string{country: TypeCountry, city: TypeCity}[path] {
			t.Errorf("%s: database type %q", path, typ)
		}
		r.Close()
	}

	r, err := geoip2.Open(asn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for addr, w := range map[string]struct {
		asn uint
		org string
	}{"198.51.101.1": {64501, "Example-Org"}, "2001:db8:5::1": {64502, ""}, "10.0.0.1": {0, ""}} {
		a, err := r.ASN(netip.MustParseAddr(addr))
		if err != nil {
			t.Fatalf("ASN(%s): %v", addr, err)
		}
		if a.AutonomousSystemNumber != w.asn || a.AutonomousSystemOrganization != w.org {
			t.Errorf("ASN(%s) = %d %q, want %d %q", addr, a.AutonomousSystemNumber, a.AutonomousSystemOrganization, w.asn, w.org)
		}
	}
	if typ := r.Metadata().DatabaseType; typ != TypeASN {
		t.Errorf("asn database type %q", typ)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		prefix netip.Prefix
	}{
		{"invalid", netip.Prefix{}},
		{"host bits", netip.MustParsePrefix("198.51.100.1/24")},
		{"mapped", netip.MustParsePrefix("::ffff:198.51.100.0/120")},
	} {
		path := filepath.Join(dir, "x.mmdb")
		if err := WriteCountry(path, []CountryEntry{{Prefix: tc.prefix, Country: "DE"}}); err == nil {
			t.Errorf("%s: WriteCountry(%v) succeeded, want an error", tc.name, tc.prefix)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s: a failed write left %s behind", tc.name, path)
		}
	}
	if err := WriteASN(filepath.Join(dir, "missing-dir", "x.mmdb"), nil); err == nil {
		t.Error("WriteASN into a missing directory succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
