package geoip

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/homeedge/edge/dns/geoip/geoiptest"
)

// benchNets is how many networks the benchmark databases hold: one /24
// (and one /48) per network, spread over the address space.
const benchNets = 20000

var continents = []string{"EU", "NA", "AS", "SA", "AF", "OC"}

func benchV4(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 0}), 24)
}

func benchV6(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i)}), 48)
}

// writeBenchDBs writes a country (or city) and an ASN database of
// benchNets IPv4 and IPv6 networks. Countries repeat every 250 networks
// (about as many records as GeoLite2-Country has), autonomous systems
// every asns networks.
func writeBenchDBs(b *testing.B, city bool, asns int) (country, asn string) {
	b.Helper()
	dir := b.TempDir()
	var ce []geoiptest.CountryEntry
	var ae []geoiptest.ASNEntry
	for i := range benchNets {
		cc := fmt.Sprintf("%c%c", 'A'+i%25, 'A'+(i/25)%10)
		for _, p := range []netip.Prefix{benchV4(i), benchV6(i)} {
			ce = append(ce, geoiptest.CountryEntry{Prefix: p, Country: cc, Continent: continents[i%250%len(continents)]})
			ae = append(ae, geoiptest.ASNEntry{Prefix: p, ASN: uint32(64500 + i%asns), Org: fmt.Sprintf("Org %d", i%asns)})
		}
	}
	country, asn = filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	write := geoiptest.WriteCountry
	if city {
		write = geoiptest.WriteCity
	}
	if err := write(country, ce); err != nil {
		b.Fatal(err)
	}
	if err := geoiptest.WriteASN(asn, ae); err != nil {
		b.Fatal(err)
	}
	return country, asn
}

// BenchmarkLookup measures Lookup over 4096 client addresses in as many
// networks. "hot" is the steady state of a DNS server (the records the
// clients map to fit the cache); "cold-asn" gives every client its own
// autonomous system, so most ASN lookups decode (the cost of a cache
// miss); "walk-only" is the library's tree walk alone, the floor.
func BenchmarkLookup(b *testing.B) {
	for _, bc := range []struct {
		name     string
		city, v6 bool
		asns     int
		noASN    bool
		walkOnly bool
	}{
		{name: "country/v4", asns: 1000, noASN: true},
		{name: "country+asn/v4", asns: 1000},
		{name: "country+asn/v6", asns: 1000, v6: true},
		{name: "city+asn/v4", asns: 1000, city: true},
		{name: "country+asn/v4/cold-asn", asns: benchNets},
		{name: "walk-only/v4", asns: 1000, noASN: true, walkOnly: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			country, asn := writeBenchDBs(b, bc.city, bc.asns)
			cfg := Config{Country: country, ASN: asn}
			if bc.noASN {
				cfg.ASN = ""
			}
			db, err := Open(cfg, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			addrs := make([]netip.Addr, 4096)
			for i := range addrs {
				j := (i * 7919) % benchNets
				if bc.v6 {
					a := benchV6(j).Addr().As16()
					a[15] = byte(i)
					addrs[i] = netip.AddrFrom16(a)
				} else {
					a := benchV4(j).Addr().As4()
					a[3] = byte(i)
					addrs[i] = netip.AddrFrom4(a)
				}
			}
			if bc.walkOnly {
				r := db.country.cur.Load().reader
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					_ = r.Lookup(addrs[i&4095]).Prefix()
				}
				return
			}
			for _, a := range addrs { // warm the caches
				db.Lookup(a)
			}
			b.ReportAllocs()
			var r Result
			for i := 0; b.Loop(); i++ {
				r = db.Lookup(addrs[i&4095])
			}
			if r.Country == "" {
				b.Fatal("no country")
			}
		})
	}
}

// BenchmarkLookupParallel is the hot case on every core at once: lookups
// share nothing writable, so it should scale with the cores.
func BenchmarkLookupParallel(b *testing.B) {
	country, asn := writeBenchDBs(b, false, 1000)
	db, err := Open(Config{Country: country, ASN: asn}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		a := benchV4((i * 7919) % benchNets).Addr().As4()
		a[3] = byte(i)
		addrs[i] = netip.AddrFrom4(a)
		db.Lookup(addrs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			db.Lookup(addrs[i&4095])
		}
	})
}
