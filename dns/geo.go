package dns

import (
	"fmt"

	"github.com/homeedge/edge/dns/geoip"
	"github.com/homeedge/edge/dns/zone"
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

// prepareGeoIP opens the databases of cfg when its config changed, or
// checks the open ones' files when it did not (a reload is when an
// operator expects a replaced file to count). It returns the function
// that puts the result in place, to run once the rest of the rebuild has
// succeeded, and the one that undoes the preparation otherwise.
func (s *Server) prepareGeoIP(cfg *geoip.Config) (commit, abort func(), err error) {
	old := s.geo.Load()
	noop := func() {}
	switch {
	case cfg == nil:
		return func() {
			s.geo.Store(nil)
			s.geoCfg = nil
			if old != nil {
				old.Close()
			}
		}, noop, nil
	case old != nil && s.geoCfg != nil && *s.geoCfg == *cfg:
		if err := old.Reload(); err != nil {
			s.log.Warn("geoip database not reloaded; the last good one stays", "err", err)
		}
		return noop, noop, nil
	}
	db, err := geoip.Open(*cfg, geoip.Options{Log: s.log, Metrics: s.registry, Namespace: "edge_dns"})
	if err != nil {
		return nil, nil, fmt.Errorf("dns.geoip: %w", err)
	}
	db.OnChange(func() { s.cache.Store(newAnswerCache(s.metrics.cacheHits)) })
	c := *cfg
	return func() {
		s.geo.Store(db)
		s.geoCfg = &c
		if old != nil {
			old.Close()
		}
	}, func() { db.Close() }, nil
}
