package dns

import (
	"cmp"
	"slices"

	"github.com/homeedge/edge/internal/ctlapi"
)

// Status implements daemon.Statuser.
func (s *Server) Status() any {
	rt := s.rt.Load()
	st := ctlapi.DNSStatus{Generation: rt.generation, Health: []ctlapi.HealthTarget{}}
	for _, z := range rt.set.Zones() {
		st.Zones = append(st.Zones, ctlapi.DNSZone{Name: z.Origin, Serial: z.SOA.Serial, Inside: z.Inside, Reverse: z.Generated})
	}
	slices.SortFunc(st.Zones, func(a, b ctlapi.DNSZone) int { return cmp.Compare(a.Name, b.Name) })
	for _, v := range rt.set.Views() {
		st.Views = append(st.Views, v.Name)
	}
	st.Health = append(st.Health, s.health.Status()...)
	if db := s.geo.Load(); db != nil {
		for _, d := range db.Status() {
			st.GeoIP = append(st.GeoIP, ctlapi.DNSGeoIPDB{
				DB: d.DB, Path: d.Path, Type: d.Type, BuildTime: d.BuildTime, LoadedAt: d.LoadedAt,
				LastError: d.LastError, LastErrorAt: d.LastErrorAt,
			})
		}
	}
	if f := s.fwd.Load(); f != nil {
		fs := f.Status()
		c := fs.Cache
		r := &ctlapi.DNSResolver{Policy: string(fs.Policy), Cache: ctlapi.DNSCacheStats{
			Entries: c.Entries, Size: c.Size, Hits: c.Hits, Misses: c.Misses, Stale: c.Stale,
			Prefetches: c.Prefetches, Evictions: c.Evictions, Coalesced: c.Coalesced,
		}}
		for _, u := range fs.Upstreams {
			r.Upstreams = append(r.Upstreams, ctlapi.DNSUpstream{
				Name: u.Name, Protocol: string(u.Protocol), Address: u.Address, ServerName: u.ServerName, URL: u.URL, Up: u.Up,
				ConsecutiveFailures: u.ConsecutiveFailures, LastError: u.LastError, LastErrorTime: u.LastErrorTime,
				LatencyMS: u.LatencyMS, Queries: u.Queries, Failures: u.Failures,
			})
		}
		st.Resolver = r
	}
	return st
}
