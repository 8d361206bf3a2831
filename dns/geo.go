package dns

import (
	"fmt"

	"github.com/homeedge/edge/dns/geoip"
	"github.com/homeedge/edge/dns/zone"
	"github.com/homeedge/edge/internal/daemon"
)

// locate fills in a location from the GeoIP databases. Its scope is the
// longest prefix of the database networks that matched: the answer holds
// for every address that shares it.
func (s *Server) locate(l *zone.Location) {
	l.Scope = l.Bits
	db := s.geo.Load()
	if db == nil || !l.Addr.IsValid() {
		return
	}
	r := db.Lookup(l.Addr)
	l.Country, l.Continent, l.ASN = r.Country, r.Continent, r.ASN
	scope := 0
	for _, p := range []int{r.CountryPrefix.Bits(), r.ASNPrefix.Bits()} {
		scope = max(scope, p)
	}
	if scope > 0 {
		l.Scope = scope
	}
}

// prepareGeoIP opens the databases of cfg when its config changed. When
// it did not, the commit checks the open ones' files (a reload is when an
// operator expects a replaced file to count; a file that does not load
// is logged and the last good one stays).
func (s *Server) prepareGeoIP(cfg *geoip.Config) (daemon.Change, error) {
	old := s.geo.Load()
	switch {
	case cfg == nil:
		return daemon.Change{Commit: func(int64) {
			s.geo.Store(nil)
			s.geoCfg = nil
			if old != nil {
				old.Close()
			}
		}}, nil
	case old != nil && s.geoCfg != nil && *s.geoCfg == *cfg:
		return daemon.Change{Commit: func(int64) {
			if err := old.Reload(); err != nil {
				s.log.Warn("geoip database not reloaded; the last good one stays", "err", err)
			}
		}}, nil
	}
	if err := s.faults.Step("open geoip"); err != nil {
		return daemon.Change{}, err
	}
	db, err := geoip.Open(*cfg, geoip.Options{Log: s.log, Metrics: s.registry, Namespace: "edge_dns"})
	if err != nil {
		return daemon.Change{}, fmt.Errorf("dns.geoip: %w", err)
	}
	db.OnChange(func() { s.cache.Store(newAnswerCache(s.metrics.cacheHits)) })
	c := *cfg
	return daemon.Change{
		Commit: func(int64) {
			s.geo.Store(db)
			s.geoCfg = &c
			if old != nil {
				old.Close()
			}
		},
		Abort: func() { db.Close() },
	}, nil
}
