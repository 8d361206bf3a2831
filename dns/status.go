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
		st.GeoIP = db.Status()
	}
	if f := s.fwd.Load(); f != nil {
		r := f.Status()
		st.Resolver = &r
	}
	return st
}
