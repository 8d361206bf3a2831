package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homeedge/edge/dns/geoip"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	countryIn := filepath.Join(dir, "country.txt")
	if err := os.WriteFile(countryIn, []byte(`# networks of the benchmark
198.51.100.0/24 DE EU
203.0.113.0/24  JP    # no continent
192.0.2.0/24    BR SA
2001:db8:1::/48 US NA
127.0.0.0/8     US NA
203.0.113.7     - AS   # one address, continent only
`), 0o644); err != nil {
		t.Fatal(err)
	}
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	var stderr bytes.Buffer
	if code := run([]string{"-type", "country", "-o", country, countryIn}, nil, &stderr); code != 0 {
		t.Fatalf("run(country) = %d: %s", code, stderr.String())
	}
	asnIn := "198.51.100.0/24 64501 Example Org\n127.0.0.0/8 AS64500\n"
	if code := run([]string{"-type", "asn", "-o", asn}, strings.NewReader(asnIn), &stderr); code != 0 {
		t.Fatalf("run(asn) = %d: %s", code, stderr.String())
	}
	db, err := geoip.Open(geoip.Config{Country: country, ASN: asn}, geoip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for addr, want := range map[string]struct {
		country, continent string
		asn                uint32
	}{
		"198.51.100.1":  {"DE", "EU", 64501},
		"203.0.113.1":   {"JP", "", 0},
		"203.0.113.7":   {"", "AS", 0},
		"192.0.2.1":     {"BR", "SA", 0},
		"2001:db8:1::1": {"US", "NA", 0},
		"127.0.0.1":     {"US", "NA", 64500},
	} {
		r := db.Lookup(netip.MustParseAddr(addr))
		if r.Country != want.country || r.Continent != want.continent || r.ASN != want.asn {
			t.Errorf("Lookup(%s) = %s %s %d, want %s %s %d", addr, r.Country, r.Continent, r.ASN, want.country, want.continent, want.asn)
		}
	}

	city := filepath.Join(dir, "city.mmdb")
	if code := run([]string{"-type", "city", "-o", city, countryIn}, nil, &stderr); code != 0 {
		t.Fatalf("run(city) = %d: %s", code, stderr.String())
	}
	cdb, err := geoip.Open(geoip.Config{Country: city}, geoip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	if st := cdb.Status(); st[0].Type != "GeoLite2-City" {
		t.Errorf("city database type %q", st[0].Type)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.mmdb")
	for _, tc := range []struct {
		name  string
		args  []string
		input string
		code  int
		want  string
	}{
		{"no output", []string{"-type", "country"}, "", 2, "usage"},
		{"two inputs", []string{"-o", out, "a", "b"}, "", 2, "usage"},
		{"unknown type", []string{"-type", "isp", "-o", out}, "", 1, `unknown -type "isp"`},
		{"missing input", []string{"-o", out, filepath.Join(dir, "nope.txt")}, "", 1, "no such file"},
		{"bad prefix", []string{"-o", out}, "\n198.51.100.0/33 DE EU\n", 1, "stdin: line 2: \"198.51.100.0/33\" is not a prefix"},
		{"host bits", []string{"-o", out}, "198.51.100.1/24 DE\n", 1, "did you mean 198.51.100.0/24"},
		{"lower case", []string{"-o", out}, "198.51.100.0/24 de\n", 1, `line 1: country "de"`},
		{"bad continent", []string{"-o", out}, "198.51.100.0/24 DE Europe\n", 1, `continent "Europe"`},
		{"too many fields", []string{"-o", out}, "198.51.100.0/24 DE EU x\n", 1, "want PREFIX COUNTRY [CONTINENT]"},
		{"nothing", []string{"-o", out}, "198.51.100.0/24 -\n", 1, "give a country or a continent"},
		{"bad asn", []string{"-type", "asn", "-o", out}, "198.51.100.0/24 ASX\n", 1, `ASN "ASX"`},
		{"no asn", []string{"-type", "asn", "-o", out}, "198.51.100.0/24\n", 1, "want PREFIX ASN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(tc.input), &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("run(%q) = %d, %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("run(%q) wrote %s despite the error", tc.args, out)
			}
		})
	}
}
