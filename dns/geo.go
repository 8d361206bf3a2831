package dns

import "github.com/homeedge/edge/dns/zone"

// locate fills in a location from the GeoIP databases, when configured.
func (s *Server) locate(l *zone.Location) {
	l.Scope = l.Bits
}
