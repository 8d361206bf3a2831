package zone

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/lb/health"
)

// Set is an immutable snapshot of everything edge-dns answers
// authoritatively: zones, views and the reverse zones generated from
// them. A change builds a new Set; queries in flight keep the old one.
type Set struct {
	// zones sorted by origin, longest first, for the closest match.
	zones []*Zone
	views []*View
}

// Zone is one authoritative zone.
type Zone struct {
	Origin string
	// Inside zones answer inside clients only.
	Inside bool
	// Generated marks reverse zones built from the records.
	Generated bool
	SOA       *dns.SOA
	// Hash identifies the zone's content, for serial management.
	Hash  uint64
	nodes map[string]*node
	// exists holds every name with data and every empty non-terminal.
	exists map[string]bool
}

// View is a compiled split-horizon view.
type View struct {
	Name         string
	Networks     []netip.Prefix
	Destinations []netip.Prefix
	inherit      map[uint16]bool
	nodes        map[string]*node
}

type node struct {
	sets map[uint16]*RRSet
}

// RRSet is the records of one name and type, with location-chosen
// alternatives.
type RRSet struct {
	Type uint16
	// RRs is the default answer.
	RRs []dns.RR
	// Geo alternatives, tried in order.
	Geo []GeoChoice
	// Source is where the records came from: "config", "file" or
	// "dynamic".
	Source string
	// Where says where a config or file record is declared: the config
	// file and line ("/etc/edge/edge.yaml:42"), or the zone file.
	Where string
	// Health, when set, checks every address of the set.
	Health *health.Check
}

// GeoChoice is one location-chosen answer.
type GeoChoice struct {
	Countries  []string
	Continents []string
	ASNs       []uint32
	Networks   []netip.Prefix
	RRs        []dns.RR
}

// Dynamic is a record added at run time (admin API or RFC 2136).
type Dynamic struct {
	RR dns.RR
}

// Input is what a Set is built from.
type Input struct {
	Site    *config.Site
	Zones   []ZoneConfig
	Views   []ViewConfig
	Dynamic []dns.RR
	// Inside are the inside networks: reverse zones are generated for them.
	Inside []netip.Prefix
	// Serial returns the serial for a zone with content hash h.
	Serial func(origin string, h uint64) uint32
	// InterfaceAddrs returns the addresses of a network interface, for
	// views that match interfaces; nil means the host's.
	InterfaceAddrs func(name string) ([]netip.Addr, error)
	// Locate turns a path relative to the dns section
	// ("zones[0].records[2]") into where it is written, such as
	// "edge.yaml:42"; nil or "" leaves records without a place.
	Locate func(path string) string
}

// BuildError is a problem found while building, at a path relative to
// the dns section ("zones[0].records[2]").
type BuildError struct {
	Path string
	Err  error
}

func (e *BuildError) Error() string { return e.Path + ": " + e.Err.Error() }

// Build compiles in into a Set. It returns every problem found, as
// *BuildError values joined with errors.Join.
func Build(in Input) (*Set, error) {
	b := &builder{set: &Set{}, locate: in.Locate}
	for i := range in.Zones {
		b.zone(fmt.Sprintf("zones[%d]", i), &in.Zones[i], in.Site)
	}
	for _, rr := range in.Dynamic {
		b.dynamic(rr)
	}
	ifAddrs := in.InterfaceAddrs
	if ifAddrs == nil {
		ifAddrs = hostInterfaceAddrs
	}
	for i := range in.Views {
		b.view(fmt.Sprintf("views[%d]", i), &in.Views[i], in.Site, ifAddrs)
	}
	b.reverse(in.Inside, in.Site)
	sort.Slice(b.set.zones, func(i, j int) bool {
		return dns.CountLabel(b.set.zones[i].Origin) > dns.CountLabel(b.set.zones[j].Origin)
	})
	for _, z := range b.set.zones {
		z.finish()
		serial := uint32(1)
		if in.Serial != nil {
			serial = in.Serial(z.Origin, z.Hash)
		}
		z.SOA.Serial = serial
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return b.set, nil
}

type builder struct {
	set    *Set
	errs   []error
	locate func(path string) string
}

// where is the place of path in the config, or "".
func (b *builder) where(path string) string {
	if b.locate == nil {
		return ""
	}
	return b.locate(path)
}

func (b *builder) errorf(path, format string, args ...any) {
	b.errs = append(b.errs, &BuildError{Path: path, Err: fmt.Errorf(format, args...)})
}

func (b *builder) zone(path string, zc *ZoneConfig, site *config.Site) {
	origin := Fqdn(zc.Name)
	for _, z := range b.set.zones {
		if z.Origin == origin {
			b.errorf(path+".name", "zone %s is declared twice", origin)
			return
		}
	}
	inside := site != nil && site.LocalDomain != "" && origin == Fqdn(site.LocalDomain)
	if zc.Inside != nil {
		inside = *zc.Inside
	}
	z := &Zone{Origin: origin, Inside: inside, nodes: map[string]*node{}}
	ttl := uint32(zc.TTL.D().Seconds())
	nss := zc.NS
	if len(nss) == 0 {
		nss = []string{"ns1." + origin}
	}
	for _, ns := range nss {
		z.add(&dns.NS{Hdr: hdr(origin, dns.TypeNS, ttl), Ns: Fqdn(ns)}, "config")
	}
	mname := Fqdn(nss[0])
	if zc.SOA.MName != "" {
		mname = Fqdn(zc.SOA.MName)
	}
	rname := "hostmaster." + origin
	if zc.SOA.RName != "" {
		rname = mailboxName(zc.SOA.RName)
	}
	z.SOA = &dns.SOA{
		Hdr: hdr(origin, dns.TypeSOA, ttl), Ns: mname, Mbox: rname,
		Refresh: secs(zc.SOA.Refresh), Retry: secs(zc.SOA.Retry), Expire: secs(zc.SOA.Expire), Minttl: secs(zc.SOA.Minimum),
	}
	if zc.File != "" {
		b.file(path+".file", z, zc.File, ttl)
	}
	for i := range zc.Records {
		rc := &zc.Records[i]
		set, err := compileRecord(rc, origin, ttl, false, site)
		if err != nil {
			b.errorf(fmt.Sprintf("%s.records[%d]", path, i), "%v", err)
			continue
		}
		set.Where = b.where(fmt.Sprintf("%s.records[%d]", path, i))
		name := set.RRs[0].Header().Name
		if prev := z.set(name, set.Type); prev != nil && prev.Source == "config" {
			b.errorf(fmt.Sprintf("%s.records[%d]", path, i), "%s %s is declared twice; put every value in one record's values", name, rc.Type)
			continue
		}
		z.put(name, set)
	}
	b.checkCNAMEs(path, z.nodes)
	b.set.zones = append(b.set.zones, z)
}

// file merges an RFC 1035 master file into z. The config's SOA and apex NS
// win over the file's.
func (b *builder) file(path string, z *Zone, name string, ttl uint32) {
	f, err := os.Open(name)
	if err != nil {
		b.errorf(path, "%v", err)
		return
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, z.Origin, name)
	zp.SetDefaultTTL(ttl)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		lowerRR(rr)
		h := rr.Header()
		if !isBelow(h.Name, z.Origin) {
			b.errorf(path, "%s: record %s is outside the zone %s", name, h.Name, z.Origin)
			continue
		}
		if h.Rrtype == dns.TypeSOA || h.Rrtype == dns.TypeNS && h.Name == z.Origin {
			continue
		}
		if h.Class != dns.ClassINET {
			b.errorf(path, "%s: record %s has class %s; only IN is served", name, h.Name, dns.ClassToString[h.Class])
			continue
		}
		z.add(rr, "file")
		if set := z.set(h.Name, h.Rrtype); set != nil && set.Where == "" {
			set.Where = name
		}
	}
	if err := zp.Err(); err != nil {
		b.errorf(path, "%v", err)
	}
}

func (b *builder) dynamic(rr dns.RR) {
	lowerRR(rr)
	z := b.set.zoneFor(rr.Header().Name)
	if z == nil {
		return // its zone was removed from the config; kept in the store
	}
	if prev := z.set(rr.Header().Name, rr.Header().Rrtype); prev != nil && prev.Source != "dynamic" {
		return // config wins for the names it declares
	}
	z.add(rr, "dynamic")
}

func (b *builder) view(path string, vc *ViewConfig, site *config.Site, ifAddrs func(string) ([]netip.Addr, error)) {
	for _, v := range b.set.views {
		if v.Name == vc.Name {
			b.errorf(path+".name", "view %q is declared twice", vc.Name)
			return
		}
	}
	v := &View{Name: vc.Name, nodes: map[string]*node{}, inherit: map[uint16]bool{}}
	for _, ref := range vc.Match.Networks {
		p, _ := ref.Prefixes(site)
		v.Networks = append(v.Networks, p...)
	}
	for _, ref := range vc.Match.Destinations {
		p, _ := ref.Prefixes(site)
		v.Destinations = append(v.Destinations, p...)
	}
	for i, name := range vc.Match.Interfaces {
		addrs, err := ifAddrs(name)
		if err != nil {
			b.errorf(fmt.Sprintf("%s.match.interfaces[%d]", path, i), "%v", err)
			continue
		}
		for _, a := range addrs {
			v.Destinations = append(v.Destinations, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	for _, t := range vc.Inherit {
		v.inherit[dns.StringToType[strings.ToUpper(t)]] = true
	}
	for i := range vc.Records {
		rc := &vc.Records[i]
		rpath := fmt.Sprintf("%s.records[%d]", path, i)
		set, err := compileRecord(rc, ".", 0, true, site)
		if err != nil {
			b.errorf(rpath, "%v", err)
			continue
		}
		set.Where = b.where(rpath)
		name := set.RRs[0].Header().Name
		z := b.set.zoneFor(strings.TrimPrefix(name, "*."))
		if z == nil {
			b.errorf(rpath+".name", "%s is in no zone of dns.zones; add the zone (an inside one for local names)", name)
			continue
		}
		if rc.TTL == 0 {
			setTTL(set, z.SOA.Hdr.Ttl)
		}
		n := v.nodes[name]
		if n == nil {
			n = &node{sets: map[uint16]*RRSet{}}
			v.nodes[name] = n
		}
		if n.sets[set.Type] != nil {
			b.errorf(rpath, "%s %s is declared twice in view %s", name, rc.Type, vc.Name)
			continue
		}
		n.sets[set.Type] = set
	}
	b.checkCNAMEs(path, v.nodes)
	b.set.views = append(b.set.views, v)
}

// checkCNAMEs enforces RFC 1034 §3.6.2: a CNAME is alone at its name.
func (b *builder) checkCNAMEs(path string, nodes map[string]*node) {
	for name, n := range nodes {
		if n.sets[dns.TypeCNAME] != nil && len(n.sets) > 1 {
			b.errorf(path, "%s has a CNAME and other records; a CNAME must be alone at its name", name)
		}
	}
}

// reverse generates an inside reverse zone for every inside prefix, with
// a PTR for every A and AAAA record whose address falls in it. A zone the
// config declares itself is left alone.
func (b *builder) reverse(inside []netip.Prefix, site *config.Site) {
	// The generated zones are the site's: their SOA and NS are those of
	// the local domain's zone, else the public domain's, else the first
	// zone's; localhost only when there is no zone at all.
	var model *Zone
	if site != nil {
		for _, d := range []string{site.LocalDomain, site.Domain} {
			if model == nil && d != "" {
				model = b.set.byOrigin(Fqdn(d))
			}
		}
	}
	if model == nil && len(b.set.zones) > 0 {
		model = b.set.zones[0]
	}
	for _, p := range inside {
		origin := reverseZoneName(p)
		if b.set.byOrigin(origin) != nil {
			continue
		}
		z := &Zone{Origin: origin, Inside: true, Generated: true, nodes: map[string]*node{}}
		z.SOA = &dns.SOA{Hdr: hdr(origin, dns.TypeSOA, 300), Ns: "localhost.", Mbox: "hostmaster.localhost.",
			Refresh: 3600, Retry: 900, Expire: 604800, Minttl: 300}
		nss := []string{"localhost."}
		if model != nil {
			soa := *model.SOA
			soa.Hdr = hdr(origin, dns.TypeSOA, model.SOA.Hdr.Ttl)
			z.SOA = &soa
			nss = nss[:0]
			if ns := model.set(model.Origin, dns.TypeNS); ns != nil {
				for _, rr := range ns.RRs {
					nss = append(nss, rr.(*dns.NS).Ns)
				}
			}
			if len(nss) == 0 {
				nss = append(nss, soa.Ns)
			}
		}
		for _, ns := range nss {
			z.add(&dns.NS{Hdr: hdr(origin, dns.TypeNS, z.SOA.Hdr.Ttl), Ns: ns}, "config")
		}
		seen := map[string]bool{}
		addPTR := func(rr dns.RR, source string) {
			var a netip.Addr
			switch v := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(v.A.To4())
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(v.AAAA)
			default:
				return
			}
			owner := rr.Header().Name
			if !p.Contains(a) || strings.HasPrefix(owner, "*.") {
				return
			}
			name, _ := dns.ReverseAddr(a.String())
			if key := name + " " + owner; !seen[key] {
				seen[key] = true
				// A PTR is as much the config's or the run time's as the
				// address record it mirrors.
				z.add(&dns.PTR{Hdr: hdr(name, dns.TypePTR, rr.Header().Ttl), Ptr: owner}, source)
			}
		}
		for _, src := range b.set.zones {
			for _, n := range sortedNodes(src.nodes) {
				for _, s := range n.sets {
					for _, rr := range s.RRs {
						addPTR(rr, s.Source)
					}
				}
			}
		}
		for _, v := range b.set.views {
			for _, n := range sortedNodes(v.nodes) {
				for _, s := range n.sets {
					for _, rr := range s.RRs {
						addPTR(rr, s.Source)
					}
				}
			}
		}
		b.set.zones = append(b.set.zones, z)
	}
}

func sortedNodes(m map[string]*node) []*node {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*node, len(names))
	for i, n := range names {
		out[i] = m[n]
	}
	return out
}

// reverseZoneName is the in-addr.arpa or ip6.arpa zone covering p, rounded
// out to whole octets or nibbles.
func reverseZoneName(p netip.Prefix) string {
	a := p.Masked().Addr()
	if a.Is4() {
		octets := p.Bits() / 8
		b := a.As4()
		labels := make([]string, 0, octets+2)
		for i := octets - 1; i >= 0; i-- {
			labels = append(labels, fmt.Sprint(b[i]))
		}
		return strings.Join(append(labels, "in-addr", "arpa"), ".") + "."
	}
	nibbles := p.Bits() / 4
	b := a.As16()
	labels := make([]string, 0, nibbles+2)
	for i := nibbles - 1; i >= 0; i-- {
		v := b[i/2]
		if i%2 == 0 {
			v >>= 4
		}
		labels = append(labels, fmt.Sprintf("%x", v&0xf))
	}
	return strings.Join(append(labels, "ip6", "arpa"), ".") + "."
}

// compileRecord turns a record's config into an RRSet owned by its name.
func compileRecord(rc *RecordConfig, origin string, zoneTTL uint32, absolute bool, site *config.Site) (*RRSet, error) {
	name, err := ownerName(rc.Name, origin, absolute)
	if err != nil {
		return nil, err
	}
	typ := strings.ToUpper(rc.Type)
	ttl := zoneTTL
	if rc.TTL != 0 {
		ttl = secs(rc.TTL)
	}
	parse := func(vals []string) ([]dns.RR, error) {
		var rrs []dns.RR
		for _, v := range vals {
			rr, err := ParseRR(origin, name, typ, ttl, v)
			if err != nil {
				return nil, err
			}
			rrs = append(rrs, rr)
		}
		return dedupe(rrs), nil
	}
	set := &RRSet{Type: dns.StringToType[typ], Source: "config", Health: rc.Health}
	if set.RRs, err = parse(rc.values()); err != nil {
		return nil, err
	}
	for _, g := range rc.Geo {
		gc := GeoChoice{Countries: g.Country, Continents: g.Continent, ASNs: g.ASN}
		for _, ref := range g.Networks {
			p, _ := ref.Prefixes(site)
			gc.Networks = append(gc.Networks, p...)
		}
		if gc.RRs, err = parse(geoValues(g)); err != nil {
			return nil, err
		}
		set.Geo = append(set.Geo, gc)
	}
	return set, nil
}

func dedupe(rrs []dns.RR) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if !slices.ContainsFunc(out, func(o dns.RR) bool { return dns.IsDuplicate(o, rr) }) {
			out = append(out, rr)
		}
	}
	return out
}

func setTTL(s *RRSet, ttl uint32) {
	for _, rr := range s.RRs {
		rr.Header().Ttl = ttl
	}
	for _, g := range s.Geo {
		for _, rr := range g.RRs {
			rr.Header().Ttl = ttl
		}
	}
}

// add puts one record into the zone, merging with its RRset.
func (z *Zone) add(rr dns.RR, source string) {
	h := rr.Header()
	n := z.nodes[h.Name]
	if n == nil {
		n = &node{sets: map[uint16]*RRSet{}}
		z.nodes[h.Name] = n
	}
	s := n.sets[h.Rrtype]
	if s == nil {
		s = &RRSet{Type: h.Rrtype, Source: source}
		n.sets[h.Rrtype] = s
	}
	if !slices.ContainsFunc(s.RRs, func(o dns.RR) bool { return dns.IsDuplicate(o, rr) }) {
		s.RRs = append(s.RRs, rr)
		// An RRset has one TTL (RFC 2181 §5.2): the lowest wins.
		for _, o := range s.RRs {
			o.Header().Ttl = min(o.Header().Ttl, h.Ttl)
			h.Ttl = o.Header().Ttl
		}
	}
}

func (z *Zone) put(name string, s *RRSet) {
	n := z.nodes[name]
	if n == nil {
		n = &node{sets: map[uint16]*RRSet{}}
		z.nodes[name] = n
	}
	n.sets[s.Type] = s
}

func (z *Zone) set(name string, t uint16) *RRSet {
	if n := z.nodes[name]; n != nil {
		return n.sets[t]
	}
	return nil
}

// finish computes the empty non-terminals and the content hash.
func (z *Zone) finish() {
	z.exists = map[string]bool{z.Origin: true}
	names := make([]string, 0, len(z.nodes))
	for name := range z.nodes {
		names = append(names, name)
		for p := name; p != "" && p != z.Origin && isBelow(p, z.Origin); p = parent(p) {
			z.exists[p] = true
		}
	}
	sort.Strings(names)
	h := fnv.New64a()
	fmt.Fprint(h, z.SOA.Ns, z.SOA.Mbox, z.SOA.Refresh, z.SOA.Retry, z.SOA.Expire, z.SOA.Minttl, z.SOA.Hdr.Ttl)
	for _, name := range names {
		n := z.nodes[name]
		types := make([]int, 0, len(n.sets))
		for t := range n.sets {
			types = append(types, int(t))
		}
		sort.Ints(types)
		for _, t := range types {
			s := n.sets[uint16(t)]
			for _, rr := range s.RRs {
				fmt.Fprintln(h, rr.String())
			}
			for _, g := range s.Geo {
				fmt.Fprintln(h, g.Countries, g.Continents, g.ASNs, g.Networks)
				for _, rr := range g.RRs {
					fmt.Fprintln(h, rr.String())
				}
			}
		}
	}
	z.Hash = h.Sum64()
}

// Zones returns the set's zones, longest origin first.
func (s *Set) Zones() []*Zone { return s.zones }

// Views returns the set's views in match order.
func (s *Set) Views() []*View { return s.views }

// zoneFor is the closest zone containing name, or nil.
func (s *Set) zoneFor(name string) *Zone {
	var best *Zone
	for _, z := range s.zones {
		if isBelow(name, z.Origin) && (best == nil || len(z.Origin) > len(best.Origin)) {
			best = z
		}
	}
	return best
}

func (s *Set) byOrigin(origin string) *Zone {
	for _, z := range s.zones {
		if z.Origin == origin {
			return z
		}
	}
	return nil
}

// Zone returns the zone with this origin, or nil.
func (s *Set) Zone(origin string) *Zone { return s.byOrigin(Fqdn(origin)) }

// Entry is a record and where it came from.
type Entry struct {
	RR dns.RR
	// Source is "config" (SOA, NS and config records), "file" or
	// "dynamic".
	Source string
}

// Entries returns the zone's records in canonical order, SOA first, with
// their sources.
func (z *Zone) Entries() []Entry {
	out := []Entry{{RR: z.SOA, Source: "config"}}
	for _, n := range sortedNodeNames(z.nodes) {
		node := z.nodes[n]
		types := make([]int, 0, len(node.sets))
		for t := range node.sets {
			types = append(types, int(t))
		}
		sort.Ints(types)
		for _, t := range types {
			s := node.sets[uint16(t)]
			for _, rr := range s.RRs {
				out = append(out, Entry{RR: rr, Source: s.Source})
			}
		}
	}
	return out
}

// Records returns the zone's records in canonical order, SOA first: the
// content of an AXFR. Geo alternatives are not part of it: a secondary
// serves the default answers.
func (z *Zone) Records() []dns.RR {
	entries := z.Entries()
	out := make([]dns.RR, len(entries))
	for i, e := range entries {
		out[i] = e.RR
	}
	return out
}

// Where says where the RRset of name and type t is declared (a config
// file and line, or a zone file), or "".
func (z *Zone) Where(name string, t uint16) string {
	if n := z.nodes[name]; n != nil {
		if s := n.sets[t]; s != nil {
			return s.Where
		}
	}
	return ""
}

// Source says where the RRset of name and type t came from ("" when there
// is none). With t 0, it says "config" or "file" if any RRset of the name
// came from there.
func (z *Zone) Source(name string, t uint16) string {
	n := z.nodes[name]
	if n == nil {
		return ""
	}
	if t != 0 {
		if s := n.sets[t]; s != nil {
			return s.Source
		}
		return ""
	}
	src := ""
	for _, s := range n.sets {
		if s.Source != "dynamic" {
			return s.Source
		}
		src = s.Source
	}
	return src
}

func sortedNodeNames(m map[string]*node) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return canonicalLess(names[i], names[j]) })
	return names
}

// canonicalLess orders names as RFC 4034 §6.1 does: by reversed labels.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
	return len(la) < len(lb)
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func secs(d config.Duration) uint32 { return uint32(d.D().Seconds()) }

// mailboxName turns "hostmaster@example.net" into hostmaster.example.net.
func mailboxName(s string) string {
	if local, domain, ok := strings.Cut(s, "@"); ok {
		return Fqdn(strings.ReplaceAll(local, ".", "\\.") + "." + domain)
	}
	return Fqdn(s)
}

// Checked is an address record under a health check.
type Checked struct {
	RR    dns.RR
	Check *health.Check
}

// Checked returns every address record of the set that carries a health
// check, in a stable order (zones, then views).
func (s *Set) Checked() []Checked {
	var out []Checked
	add := func(nodes map[string]*node) {
		for _, name := range sortedNodeNames(nodes) {
			n := nodes[name]
			for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
				set := n.sets[t]
				if set == nil || set.Health == nil {
					continue
				}
				for _, rr := range set.RRs {
					out = append(out, Checked{rr, set.Health})
				}
				for _, g := range set.Geo {
					for _, rr := range g.RRs {
						out = append(out, Checked{rr, set.Health})
					}
				}
			}
		}
	}
	for _, z := range s.zones {
		add(z.nodes)
	}
	for _, v := range s.views {
		add(v.nodes)
	}
	return out
}

// hostInterfaceAddrs returns the addresses of one of the host's interfaces.
func hostInterfaceAddrs(name string) ([]netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}
