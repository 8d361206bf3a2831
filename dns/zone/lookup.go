package zone

import (
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// Location is what is known of a client's place, for geo answers.
type Location struct {
	Country   string
	Continent string
	ASN       uint32
	// Addr is the address located: the ECS address when the query had
	// one, else the client's.
	Addr netip.Addr
	// Bits is how much of Addr is known: the ECS source prefix length, or
	// the full length.
	Bits int
	// Scope is the prefix length over which the location data holds (the
	// GeoIP database's network), for the ECS scope of a geo answer.
	Scope int
}

// Client describes who asks.
type Client struct {
	// Inside clients may see inside zones.
	Inside bool
	// View is the client's view, or nil.
	View *View
	// Locate returns the client's location; it is called only when an
	// answer depends on it, at most once per query.
	Locate func() Location
	// Up reports whether a record value is healthy; nil means all are.
	Up func(rr dns.RR) bool
}

// Result is an authoritative answer, or the news that the name is not ours.
type Result struct {
	// Zone is the zone that answered; nil when no zone of ours holds the
	// name (for this client).
	Zone   *Zone
	Rcode  int
	Answer []dns.RR
	Ns     []dns.RR
	Extra  []dns.RR
	// Referral marks a delegation answer (not authoritative).
	Referral bool
	// GeoScope is the ECS scope prefix length the answer holds for, or -1
	// when it does not depend on the client's location.
	GeoScope int
	// Dangling is the last CNAME target when a chain leaves our zones, so
	// that a resolver for inside clients can continue it.
	Dangling string
}

// maxChain bounds CNAME chasing inside our data.
const maxChain = 8

// MatchView returns the first view matching a client, or nil.
func (s *Set) MatchView(src, dst netip.Addr) *View {
	src, dst = src.Unmap(), dst.Unmap()
	for _, v := range s.views {
		if len(v.Networks) > 0 && !containsAddr(v.Networks, src) {
			continue
		}
		if len(v.Destinations) > 0 && !containsAddr(v.Destinations, dst) {
			continue
		}
		return v
	}
	return nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Lookup answers qname/qtype for a client. qname must be lower-case and
// fully qualified (Fqdn).
func (s *Set) Lookup(qname string, qtype uint16, c *Client) Result {
	res := Result{GeoScope: -1}
	var loc *Location
	locate := func() *Location {
		if loc == nil {
			l := Location{Scope: 0}
			if c.Locate != nil {
				l = c.Locate()
			}
			loc = &l
		}
		return loc
	}
	name := qname
	for hop := 0; ; hop++ {
		z := s.visibleZone(name, c)
		if z == nil {
			if hop == 0 {
				return res // not ours
			}
			res.Dangling = name
			return res
		}
		if hop == 0 {
			res.Zone = z
		}
		step := s.lookupOne(z, name, qtype, c, locate, &res)
		if step == "" || hop >= maxChain {
			if hop > 0 && res.Rcode == dns.RcodeNameError {
				// RFC 6604: the rcode of a chain is the last name's, and
				// the SOA shown is that name's zone.
				res.Ns = []dns.RR{negativeSOA(z)}
			}
			return res
		}
		name = step
	}
}

// visibleZone is the closest zone holding name that the client may see.
func (s *Set) visibleZone(name string, c *Client) *Zone {
	for _, z := range s.zones {
		if isBelow(name, z.Origin) {
			if z.Inside && !c.Inside {
				continue
			}
			return z
		}
	}
	return nil
}

// lookupOne answers name within z into res. It returns the CNAME target
// to continue with, or "".
func (s *Set) lookupOne(z *Zone, name string, qtype uint16, c *Client, locate func() *Location, res *Result) string {
	// Delegations below the apex cut the zone (RFC 1034 §4.3.2 step 3b),
	// also at the end of a CNAME chain: the chain so far is the
	// (authoritative) answer and the referral follows in authority.
	if cut := z.delegation(name); cut != "" && !(cut == name && qtype == dns.TypeDS) {
		res.Referral = len(res.Answer) == 0
		ns := z.nodes[cut].sets[dns.TypeNS]
		res.Ns = append(res.Ns, ns.RRs...)
		for _, rr := range ns.RRs {
			res.Extra = append(res.Extra, z.glue(rr.(*dns.NS).Ns)...)
		}
		return ""
	}

	n, owner := s.findNode(z, name, c)
	if n == nil {
		if z.exists[name] {
			res.Ns = []dns.RR{negativeSOA(z)} // empty non-terminal: NODATA
			return ""
		}
		res.Rcode = dns.RcodeNameError
		res.Ns = []dns.RR{negativeSOA(z)}
		return ""
	}

	// ANY matches a CNAME itself, without a restart (RFC 1034 §3.6.2).
	if cname := n.get(dns.TypeCNAME, c); cname != nil && qtype != dns.TypeCNAME && qtype != dns.TypeANY {
		rrs := s.pick(cname, c, locate, res)
		res.Answer = append(res.Answer, withOwner(rrs, name, owner)...)
		if len(rrs) == 0 {
			return ""
		}
		target := rrs[0].(*dns.CNAME).Target
		// A target already in the chain (itself included) is a loop:
		// stop, the chain so far is the answer.
		if slices.ContainsFunc(res.Answer, func(rr dns.RR) bool { return rr.Header().Name == target }) {
			return ""
		}
		return target
	}

	if qtype == dns.TypeANY {
		// RFC 8482: answer ANY with one RRset rather than everything: the
		// first of the usual types, else the name's lowest type, so that a
		// name with only SRV or PTR records is not NODATA (§4.1).
		for _, t := range append([]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeNS}, n.types(c)...) {
			if set := n.get(t, c); set != nil {
				res.Answer = append(res.Answer, withOwner(s.pick(set, c, locate, res), name, owner)...)
				return ""
			}
		}
	}
	if qtype == dns.TypeSOA && name == z.Origin {
		res.Answer = append(res.Answer, z.SOA)
		return ""
	}
	set := n.get(qtype, c)
	if set == nil {
		res.Ns = []dns.RR{negativeSOA(z)} // NODATA
		return ""
	}
	res.Answer = append(res.Answer, withOwner(s.pick(set, c, locate, res), name, owner)...)
	if qtype == dns.TypeMX || qtype == dns.TypeSRV || qtype == dns.TypeNS {
		res.Extra = append(res.Extra, s.additional(res.Answer, c)...)
	}
	return ""
}

// overlay is a node's view of a client: the view's data over the zone's.
type overlay struct {
	view    *node
	zone    *node
	inherit map[uint16]bool
	// apex is set at a zone's apex, whose NS a view never hides: the
	// zone's delegation and its SOA stay the zone's.
	apex bool
}

func (o overlay) get(t uint16, c *Client) *RRSet {
	if o.apex && t == dns.TypeNS && o.zone != nil {
		return o.zone.sets[t]
	}
	if o.view != nil {
		if s := o.view.sets[t]; s != nil {
			return s
		}
		if o.zone == nil || !o.inherit[t] {
			return nil
		}
	}
	if o.zone != nil {
		return o.zone.sets[t]
	}
	return nil
}

// types lists the RR types the client sees at the node, in numeric order.
func (o overlay) types(c *Client) []uint16 {
	var out []uint16
	for _, n := range []*node{o.view, o.zone} {
		if n == nil {
			continue
		}
		for t := range n.sets {
			if !slices.Contains(out, t) && o.get(t, c) != nil {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// findNode finds the data for name: the view's exact node, the zone's
// exact node, then the closest wildcard (the view's first). owner is the
// node's own name (a wildcard's "*.x" for synthesized answers). A name
// that exists without records (an empty non-terminal) has no node and no
// wildcard answers for it (RFC 4592 §2.2.2).
func (s *Set) findNode(z *Zone, name string, c *Client) (*overlay, string) {
	var inherit map[uint16]bool
	var vn *node
	if c.View != nil {
		vn = c.View.nodes[name]
		inherit = c.View.inherit
	}
	zn := z.nodes[name]
	if vn != nil || zn != nil {
		return &overlay{view: vn, zone: zn, inherit: inherit, apex: name == z.Origin}, name
	}
	if z.exists[name] {
		return nil, ""
	}
	// Wildcards (RFC 4592): only below the closest encloser.
	for p := parent(name); p != "" && isBelow(p, z.Origin); p = parent(p) {
		wild := "*." + p
		if c.View != nil {
			if wn := c.View.nodes[wild]; wn != nil {
				return &overlay{view: wn, zone: z.nodes[wild], inherit: inherit}, wild
			}
		}
		if wn := z.nodes[wild]; wn != nil {
			return &overlay{zone: wn}, wild
		}
		if z.exists[p] {
			break // p is the closest encloser and has no wildcard
		}
	}
	return nil, ""
}

// pick chooses an RRset's records for the client: the geo choice that
// matches, else the default; unhealthy values are left out unless all are.
func (s *Set) pick(set *RRSet, c *Client, locate func() *Location, res *Result) []dns.RR {
	rrs := set.RRs
	if len(set.Geo) > 0 {
		l := locate()
		scope := l.Scope
		chosen := false
		for _, g := range set.Geo {
			if ok, bits := g.matches(l); ok {
				rrs, chosen = g.RRs, true
				if bits > 0 {
					scope = bits
				}
				break
			}
		}
		if !chosen {
			// The default holds where no choice's network does; only the
			// client's own bits are certain then.
			for _, g := range set.Geo {
				if len(g.Networks) > 0 {
					scope = max(scope, l.Bits)
				}
			}
		}
		res.GeoScope = max(res.GeoScope, scope)
	}
	if c.Up != nil {
		healthy := rrs[:0:0]
		for _, rr := range rrs {
			if c.Up(rr) {
				healthy = append(healthy, rr)
			}
		}
		if len(healthy) > 0 {
			rrs = healthy
		}
	}
	return rrs
}

func (g *GeoChoice) matches(l *Location) (bool, int) {
	for _, p := range g.Networks {
		if l.Addr.IsValid() && p.Contains(l.Addr.Unmap()) {
			return true, p.Bits()
		}
	}
	if l.Country != "" && slices.Contains(g.Countries, l.Country) {
		return true, 0
	}
	if l.Continent != "" && slices.Contains(g.Continents, l.Continent) {
		return true, 0
	}
	if l.ASN != 0 && slices.Contains(g.ASNs, l.ASN) {
		return true, 0
	}
	return false, 0
}

// withOwner returns rrs as answers for name: wildcard records are copied
// with the asked name as owner.
func withOwner(rrs []dns.RR, name, owner string) []dns.RR {
	if owner == name {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp := dns.Copy(rr)
		cp.Header().Name = name
		out[i] = cp
	}
	return out
}

// delegation returns the highest name between the apex (exclusive) and
// name (inclusive) that holds NS records, or "".
func (z *Zone) delegation(name string) string {
	cut := ""
	for p := name; p != "" && p != z.Origin && isBelow(p, z.Origin); p = parent(p) {
		if n := z.nodes[p]; n != nil && n.sets[dns.TypeNS] != nil {
			cut = p
		}
	}
	return cut
}

// glue returns our A and AAAA records for a name server name.
func (z *Zone) glue(host string) []dns.RR {
	n := z.nodes[host]
	if n == nil {
		return nil
	}
	var out []dns.RR
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if s := n.sets[t]; s != nil {
			out = append(out, s.RRs...)
		}
	}
	return out
}

// additional returns address records we hold for the targets of MX, SRV
// and NS answers.
func (s *Set) additional(answer []dns.RR, c *Client) []dns.RR {
	var out []dns.RR
	for _, rr := range answer {
		var target string
		switch v := rr.(type) {
		case *dns.MX:
			target = v.Mx
		case *dns.SRV:
			target = v.Target
		case *dns.NS:
			target = v.Ns
		default:
			continue
		}
		z := s.visibleZone(target, c)
		if z == nil {
			continue
		}
		n, owner := s.findNode(z, target, c)
		if n == nil || owner != target {
			continue
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if set := n.get(t, c); set != nil {
				out = append(out, set.RRs...)
			}
		}
	}
	return out
}

// negativeSOA is the SOA for a negative answer, its TTL the lesser of the
// SOA's TTL and its minimum (RFC 2308 §3).
func negativeSOA(z *Zone) dns.RR {
	soa := *z.SOA
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return &soa
}
