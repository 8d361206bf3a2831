package geoip

import (
	"path/filepath"
	"time"

	"github.com/homeedge/edge/internal/config"
)

// DefaultCheckInterval is how often the database files are checked for
// changes unless the config says otherwise. A stat per file every 10s costs
// nothing and picks up a weekly geoipupdate run soon enough.
const DefaultCheckInterval = config.Duration(10 * time.Second)

// Config names the database files. Either may be empty: an unset Country
// leaves Result.Country and Result.Continent empty, an unset ASN leaves
// Result.ASN 0.
type Config struct {
	// Country is the path of a country or city database: GeoLite2-Country,
	// GeoLite2-City, GeoIP2-Country/City/Enterprise, DBIP-Country-Lite or
	// DBIP-City-Lite. Only country.iso_code (or registered_country.iso_code)
	// and continent.code are read, so a city database works as well.
	Country string `yaml:"country"`
	// ASN is the path of an ASN database: GeoLite2-ASN, DBIP-ASN-Lite or
	// GeoIP2-ISP. Only autonomous_system_number is read.
	ASN string `yaml:"asn"`
	// CheckInterval is how often the files are checked (size, mtime,
	// inode) and reloaded when they changed.
	CheckInterval config.Duration `yaml:"check_interval"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.CheckInterval = DefaultCheckInterval
}

// Validate reports paths that are not absolute (the daemon's working
// directory is not the operator's) and an interval that is not positive.
// It does not open the files: Open does, and says what is wrong with them.
func (c *Config) Validate(v *config.Checker) {
	for _, f := range []struct{ key, path string }{{"country", c.Country}, {"asn", c.ASN}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			v.Key(f.key).Errorf("path %q is not absolute; write the full path, such as /var/lib/GeoIP/GeoLite2-Country.mmdb", f.path)
		}
	}
	if c.CheckInterval <= 0 {
		v.Key("check_interval").Errorf("must be more than 0, such as 10s or 1m")
	}
}
