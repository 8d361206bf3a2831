// Package geoiptest builds small MaxMind DB (MMDB) files for tests and
// benchmarks: a GeoLite2-Country, GeoLite2-City or GeoLite2-ASN shaped
// database from a list of prefixes. The files are written with MaxMind's
// own writer (github.com/maxmind/mmdbwriter), so any MMDB reader (Knot's
// mod-geoip, PowerDNS's geoip backend, libmaxminddb, edge-dns) reads them
// like the real downloads.
//
// Reserved and documentation prefixes (127.0.0.0/8, 192.0.2.0/24,
// 198.51.100.0/24, 2001:db8::/32, ...) are allowed, since tests and labs use
// exactly those. Where entries overlap, later entries win.
package geoiptest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Database types written into the files' metadata, the same strings
// MaxMind uses for its free databases.
const (
	TypeCountry = "GeoLite2-Country"
	TypeCity    = "GeoLite2-City"
	TypeASN     = "GeoLite2-ASN"
)

// CountryEntry maps a network to a country and continent.
type CountryEntry struct {
	// Prefix is an IPv4 or IPv6 network.
	Prefix netip.Prefix
	// Country is an ISO 3166-1 alpha-2 code such as "DE"; empty leaves the
	// country out of the record (as MaxMind does for some anycast and
	// satellite networks), keeping only the continent.
	Country string
	// Continent is a two-letter continent code such as "EU"; empty leaves
	// it out.
	Continent string
}

// ASNEntry maps a network to an autonomous system.
type ASNEntry struct {
	// Prefix is an IPv4 or IPv6 network.
	Prefix netip.Prefix
	// ASN is the autonomous system number, such as 64501.
	ASN uint32
	// Org is the autonomous system's organization; empty leaves it out.
	Org string
}

// WriteCountry writes a GeoLite2-Country shaped database to path:
// continent.code, country.iso_code and registered_country.iso_code, each
// with an English name.
func WriteCountry(path string, entries []CountryEntry) error {
	return writeCountryLike(path, TypeCountry, entries, false)
}

// WriteCity writes a GeoLite2-City shaped database to path: the country
// fields of WriteCountry plus city, location, postal code and subdivision
// fields, so that readers must skip what they do not need.
func WriteCity(path string, entries []CountryEntry) error {
	return writeCountryLike(path, TypeCity, entries, true)
}

func writeCountryLike(path, dbType string, entries []CountryEntry, city bool) error {
	tree, err := newTree(dbType)
	if err != nil {
		return err
	}
	for i, e := range entries {
		rec := mmdbtype.Map{}
		if e.Continent != "" {
			rec["continent"] = mmdbtype.Map{
				"code":  mmdbtype.String(e.Continent),
				"names": mmdbtype.Map{"en": mmdbtype.String("Continent " + e.Continent)},
			}
		}
		if e.Country != "" {
			country := mmdbtype.Map{
				"iso_code": mmdbtype.String(e.Country),
				"names":    mmdbtype.Map{"en": mmdbtype.String("Country " + e.Country)},
			}
			rec["country"] = country
			rec["registered_country"] = country
		}
		if city {
			rec["city"] = mmdbtype.Map{
				"geoname_id": mmdbtype.Uint32(2950159),
				"names": mmdbtype.Map{
					"de": mmdbtype.String("Stadt " + e.Country),
					"en": mmdbtype.String("City " + e.Country),
				},
			}
			rec["location"] = mmdbtype.Map{
				"accuracy_radius": mmdbtype.Uint16(100),
				"latitude":        mmdbtype.Float64(52.5),
				"longitude":       mmdbtype.Float64(13.4),
				"time_zone":       mmdbtype.String("Europe/Berlin"),
			}
			rec["postal"] = mmdbtype.Map{"code": mmdbtype.String("10115")}
			rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{
				"iso_code": mmdbtype.String("BE"),
				"names":    mmdbtype.Map{"en": mmdbtype.String("Subdivision")},
			}}
		}
		if err := insert(tree, e.Prefix, rec); err != nil {
			return fmt.Errorf("entry %d (%s): %w", i, e.Prefix, err)
		}
	}
	return writeTree(path, tree)
}

// WriteASN writes a GeoLite2-ASN shaped database to path:
// autonomous_system_number and autonomous_system_organization.
func WriteASN(path string, entries []ASNEntry) error {
	tree, err := newTree(TypeASN)
	if err != nil {
		return err
	}
	for i, e := range entries {
		rec := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(e.ASN)}
		if e.Org != "" {
			rec["autonomous_system_organization"] = mmdbtype.String(e.Org)
		}
		if err := insert(tree, e.Prefix, rec); err != nil {
			return fmt.Errorf("entry %d (%s): %w", i, e.Prefix, err)
		}
	}
	return writeTree(path, tree)
}

func newTree(dbType string) (*mmdbwriter.Tree, error) {
	return mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": dbType + " test database written by geoiptest"},
		Languages:               []string{"en"},
		IncludeReservedNetworks: true,
		RecordSize:              28,
	})
}

func insert(tree *mmdbwriter.Tree, p netip.Prefix, rec mmdbtype.Map) error {
	if !p.IsValid() {
		return fmt.Errorf("invalid prefix")
	}
	if p != p.Masked() {
		return fmt.Errorf("prefix has host bits set; use %s", p.Masked())
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("write IPv4-mapped prefixes as plain IPv4")
	}
	addr := p.Addr().WithZone("")
	return tree.Insert(&net.IPNet{
		IP:   addr.AsSlice(),
		Mask: net.CIDRMask(p.Bits(), addr.BitLen()),
	}, rec)
}

// writeTree writes the database next to path and renames it into place,
// so a process watching path never sees a half-written file.
func writeTree(path string, tree *mmdbwriter.Tree) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
