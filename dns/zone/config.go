package zone

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/lb/health"
)

// SupportedTypes are the record types a config may declare.
var SupportedTypes = []string{"A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "PTR", "NS"}

// ZoneConfig declares one authoritative zone.
type ZoneConfig struct {
	// Name is the zone's apex, such as example.net.
	Name string `yaml:"name"`
	// Inside makes the zone answer inside clients only; outside clients
	// get REFUSED, as for a name that is not ours. The site's
	// local_domain zone is inside by default.
	Inside *bool `yaml:"inside"`
	// TTL is the default TTL of the zone's records.
	TTL config.Duration `yaml:"ttl"`
	// SOA fields; the serial is managed by edge-dns.
	SOA SOAConfig `yaml:"soa"`
	// NS are the zone's name servers; default ns1.<zone>.
	NS []string `yaml:"ns"`
	// File is an RFC 1035 master file whose records join the zone's
	// (its SOA and apex NS records are ignored: the config's win).
	File    string         `yaml:"file"`
	Records []RecordConfig `yaml:"records"`
}

// SOAConfig are the SOA fields an operator may set.
type SOAConfig struct {
	// MName is the primary name server; default the first NS.
	MName string `yaml:"mname"`
	// RName is the responsible mailbox as an email address or a DNS name;
	// default hostmaster.<zone>.
	RName   string          `yaml:"rname"`
	Refresh config.Duration `yaml:"refresh"`
	Retry   config.Duration `yaml:"retry"`
	Expire  config.Duration `yaml:"expire"`
	// Minimum is the negative-caching TTL (RFC 2308).
	Minimum config.Duration `yaml:"minimum"`
}

// RecordConfig declares one RRset, optionally with answers chosen by the
// client's location.
type RecordConfig struct {
	// Name is relative to the zone ("www", "@" for the apex, "*.dev" for
	// a wildcard) or absolute with a trailing dot. In a view it is
	// absolute, with or without the trailing dot.
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// TTL defaults to the zone's.
	TTL config.Duration `yaml:"ttl"`
	// Value and Values are the record data in zone-file syntax:
	// "192.0.2.1", "10 mail.example.net.", "0 issue \"letsencrypt.org\"".
	// TXT values are plain text (quoted and split for you).
	Value  string   `yaml:"value"`
	Values []string `yaml:"values"`
	// Geo are answers for clients matched by location or network, tried
	// in order; the first that matches wins, else Value/Values answer.
	Geo []GeoConfig `yaml:"geo"`
	// Health checks every address of an A or AAAA record (geo answers
	// included); an address whose check fails leaves the answers until
	// it passes again. When every address is down, all are answered:
	// a possibly wrong answer is better than none.
	Health *health.Check `yaml:"health"`
}

// GeoConfig is one location-chosen answer. It matches a client whose
// country, continent, autonomous system or address is any of those listed.
type GeoConfig struct {
	Country   []string        `yaml:"country"`
	Continent []string        `yaml:"continent"`
	ASN       []uint32        `yaml:"asn"`
	Networks  []config.NetRef `yaml:"networks"`
	Value     string          `yaml:"value"`
	Values    []string        `yaml:"values"`
}

// ViewConfig is a split-horizon view: clients it matches get its records in
// place of the zones' for the names it declares.
type ViewConfig struct {
	Name string `yaml:"name"`
	// Match selects the clients; a client must match every given field.
	Match ViewMatch `yaml:"match"`
	// Records override names of any zone (or add names). A view that
	// declares a name owns it: types it does not declare are NODATA, so
	// an inside A override never leaks the public AAAA. List types in
	// Inherit to take them from the zone instead.
	Records []RecordConfig `yaml:"records"`
	Inherit []string       `yaml:"inherit"`
}

// ViewMatch selects clients by source and by the address they asked.
type ViewMatch struct {
	// Networks are client source networks or prefixes.
	Networks []config.NetRef `yaml:"networks"`
	// Destinations are the router addresses the query was sent to.
	Destinations []config.NetRef `yaml:"destinations"`
	// Interfaces match queries sent to an address of these interfaces
	// (br-lan, wg0); the addresses are read at start and on every reload.
	Interfaces []string `yaml:"interfaces"`
}

// SetDefaults implements config.Defaulter.
func (z *ZoneConfig) SetDefaults() {
	z.TTL = config.Duration(5 * time.Minute)
	z.SOA = SOAConfig{
		Refresh: config.Duration(time.Hour),
		Retry:   config.Duration(15 * time.Minute),
		Expire:  config.Duration(7 * 24 * time.Hour),
		Minimum: config.Duration(5 * time.Minute),
	}
}

// Validate checks a zone, every record of it, and that names are unique.
func (z *ZoneConfig) Validate(c *config.Checker) {
	if err := config.CheckDomainName(z.Name); err != nil {
		c.Key("name").Errorf("%v", err)
		return
	}
	origin := Fqdn(z.Name)
	if z.TTL.D() < time.Second || z.TTL.D() > 7*24*time.Hour {
		c.Key("ttl").Errorf("must be between 1s and 7d")
	}
	for i, ns := range z.NS {
		if err := config.CheckDomainName(ns); err != nil {
			c.Key("ns").Index(i).Errorf("%v", err)
		}
	}
	if z.SOA.Minimum.D() > 3*time.Hour {
		c.Key("soa").Key("minimum").Errorf("must be at most 3h (RFC 2308)")
	}
	for i := range z.Records {
		z.Records[i].validate(c.Key("records").Index(i), origin, false)
	}
}

// Validate checks a view's match and records.
func (v *ViewConfig) Validate(c *config.Checker) {
	if !validViewName(v.Name) {
		c.Key("name").Errorf("view names use lowercase letters, digits, - and _")
	}
	if len(v.Match.Networks) == 0 && len(v.Match.Destinations) == 0 && len(v.Match.Interfaces) == 0 {
		c.Key("match").Errorf("a view needs networks, destinations or interfaces to match clients")
	}
	for i, name := range v.Match.Interfaces {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ ") {
			c.Key("match").Key("interfaces").Index(i).Errorf("invalid interface name %q", name)
		}
	}
	for i, t := range v.Inherit {
		if !slices.Contains(SupportedTypes, strings.ToUpper(t)) {
			c.Key("inherit").Index(i).Errorf("unknown type %q; use one of %s", t, strings.Join(SupportedTypes, ", "))
		}
	}
	for i := range v.Records {
		v.Records[i].validate(c.Key("records").Index(i), ".", true)
	}
}

func (r *RecordConfig) validate(c *config.Checker, origin string, absolute bool) {
	typ := strings.ToUpper(r.Type)
	if !slices.Contains(SupportedTypes, typ) {
		c.Key("type").Errorf("unknown type %q; use one of %s", r.Type, strings.Join(SupportedTypes, ", "))
		return
	}
	name, err := ownerName(r.Name, origin, absolute)
	if err != nil {
		c.Key("name").Errorf("%v", err)
		return
	}
	if r.Value != "" && len(r.Values) > 0 {
		c.Key("values").Errorf("give value or values, not both")
	}
	vals := r.values()
	if len(vals) == 0 {
		c.Errorf("%s %s has no value", r.Name, typ)
	}
	if typ == "CNAME" && len(vals) > 1 {
		c.Key("values").Errorf("a CNAME has exactly one value")
	}
	for i, v := range vals {
		if _, err := ParseRR(origin, name, typ, 300, v); err != nil {
			key := c.Key("value")
			if len(r.Values) > 0 {
				key = c.Key("values").Index(i)
			}
			key.Errorf("%v", err)
		}
	}
	if len(r.Geo) > 0 && typ != "A" && typ != "AAAA" && typ != "CNAME" && typ != "TXT" {
		c.Key("geo").Errorf("geo answers are for A, AAAA, CNAME and TXT records")
	}
	for i, g := range r.Geo {
		gc := c.Key("geo").Index(i)
		if len(g.Country)+len(g.Continent)+len(g.ASN)+len(g.Networks) == 0 {
			gc.Errorf("give country, continent, asn or networks to match")
		}
		for j, cc := range g.Country {
			if len(cc) != 2 || strings.ToUpper(cc) != cc {
				gc.Key("country").Index(j).Errorf("country %q: use the two upper-case letters of ISO 3166 (DE, US)", cc)
			}
		}
		for j, cn := range g.Continent {
			if !slices.Contains([]string{"AF", "AN", "AS", "EU", "NA", "OC", "SA"}, cn) {
				gc.Key("continent").Index(j).Errorf("continent %q: use AF, AN, AS, EU, NA, OC or SA", cn)
			}
		}
		gvals := geoValues(g)
		if len(gvals) == 0 {
			gc.Errorf("geo answer has no value")
		}
		for j, v := range gvals {
			if _, err := ParseRR(origin, name, typ, 300, v); err != nil {
				gc.Key("values").Index(j).Errorf("%v", err)
			}
		}
	}
	if r.Health != nil {
		if typ != "A" && typ != "AAAA" {
			c.Key("health").Errorf("health checks are for A and AAAA records")
		} else {
			r.Health.Validate(c.Key("health"))
		}
	}
	if r.TTL != 0 && (r.TTL.D() < time.Second || r.TTL.D() > 7*24*time.Hour) {
		c.Key("ttl").Errorf("must be between 1s and 7d")
	}
}

func (r *RecordConfig) values() []string {
	if r.Value != "" {
		return []string{r.Value}
	}
	return r.Values
}

func geoValues(g GeoConfig) []string {
	if g.Value != "" {
		return []string{g.Value}
	}
	return g.Values
}

// ownerName resolves a record's name against origin. In views (absolute)
// names are taken as absolute with or without a trailing dot.
func ownerName(name, origin string, absolute bool) (string, error) {
	switch {
	case name == "" && !absolute:
		return "", fmt.Errorf("name is required; use @ for the zone's apex")
	case name == "":
		return "", fmt.Errorf("name is required")
	case name == "@" && !absolute:
		return origin, nil
	}
	check := strings.TrimPrefix(strings.TrimSuffix(name, "."), "*.")
	if check != "*" {
		if err := config.CheckDomainName(check); err != nil {
			return "", err
		}
	}
	if strings.Contains(strings.TrimPrefix(name, "*."), "*") {
		return "", fmt.Errorf("name %q: a wildcard is a leading \"*.\" label only", name)
	}
	if absolute || strings.HasSuffix(name, ".") {
		n := Fqdn(name)
		if !absolute && !dns.IsSubDomain(origin, n) {
			return "", fmt.Errorf("name %q is outside the zone %s", name, origin)
		}
		return n, nil
	}
	return Lower(name) + "." + origin, nil
}

func validViewName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// ParseRR builds one record from zone-file data, naming what is wrong.
// Relative names in the data ("CNAME www") are relative to origin.
func ParseRR(origin, owner, typ string, ttl uint32, value string) (dns.RR, error) {
	typ = strings.ToUpper(typ)
	data := value
	if typ == "TXT" {
		data = quoteTXT(value)
	}
	if strings.Contains(data, "\n") || typ != "TXT" && outsideQuotes(data, ";$()") {
		return nil, fmt.Errorf("invalid %s value %q: one record's data only, no comments or directives", typ, value)
	}
	zp := dns.NewZoneParser(strings.NewReader(fmt.Sprintf("%s %d IN %s %s\n", owner, ttl, typ, data)), origin, "")
	rr, _ := zp.Next()
	err := zp.Err()
	if err == nil {
		if _, more := zp.Next(); more {
			err = fmt.Errorf("more than one record")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid %s value %q: %s", typ, value, parseReason(typ, err))
	}
	if rr == nil {
		return nil, fmt.Errorf("invalid %s value %q: empty", typ, value)
	}
	switch v := rr.(type) {
	case *dns.A:
		if a, ok := netip.AddrFromSlice(v.A); !ok || !a.Unmap().Is4() {
			return nil, fmt.Errorf("invalid A value %q: not an IPv4 address", value)
		}
	case *dns.AAAA:
		if a, ok := netip.AddrFromSlice(v.AAAA); !ok || a.Is4In6() {
			return nil, fmt.Errorf("invalid AAAA value %q: not an IPv6 address", value)
		}
	}
	lowerRR(rr)
	return rr, nil
}

// outsideQuotes says whether s holds one of chars outside a quoted
// string: zone-file syntax, where `"a; b"` is data and `a; b` a comment.
func outsideQuotes(s, chars string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\':
			i++
		case ch == '"':
			quoted = !quoted
		case !quoted && strings.IndexByte(chars, ch) >= 0:
			return true
		}
	}
	return false
}

// parseLine is the zone parser's position suffix: the data is one line of
// ours, so the position says nothing to the user.
var parseLine = regexp.MustCompile(` at line: \d+:\d+$`)

// parseReason turns a zone parser error ("dns: bad A A: \"x\" at line:
// 1:38") into what a user can act on ("not a valid A value").
func parseReason(typ string, err error) string {
	msg := strings.TrimPrefix(parseLine.ReplaceAllString(err.Error(), ""), "dns: ")
	if field, ok := strings.CutPrefix(msg, "bad "+typ+" "); ok {
		field, _, _ = strings.Cut(field, ":")
		if field == typ {
			return "not valid " + typ + " data"
		}
		return "bad " + strings.ToLower(field) + " field"
	}
	return msg
}

// quoteTXT turns plain text into TXT character-strings of at most 255
// bytes each; text already in quotes is taken as zone-file syntax.
func quoteTXT(s string) string {
	if strings.HasPrefix(s, "\"") {
		return s
	}
	var parts []string
	b := []byte(s)
	for len(b) > 0 || len(parts) == 0 {
		n := min(len(b), 255)
		var q strings.Builder
		q.WriteByte('"')
		for _, ch := range b[:n] {
			switch {
			case ch == '"' || ch == '\\':
				q.WriteByte('\\')
				q.WriteByte(ch)
			case ch < 0x20 || ch >= 0x7f:
				fmt.Fprintf(&q, "\\%03d", ch)
			default:
				q.WriteByte(ch)
			}
		}
		q.WriteByte('"')
		parts = append(parts, q.String())
		b = b[n:]
	}
	return strings.Join(parts, " ")
}
