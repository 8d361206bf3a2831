package fwconfig

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/homeedge/edge/internal/config"
)

// Rate is a count per time unit, written "10/minute". The zero Rate is
// unset.
type Rate struct {
	Count uint64
	// Unit is second, minute, hour or day.
	Unit string
}

// RateUnits are the units a rate may use.
var RateUnits = []string{"second", "minute", "hour", "day"}

// maxRate bounds a rate's count: nft keeps it in 64 bits, but a rate
// beyond a few billion per unit is a typo.
const maxRate = 1 << 32

// ParseRate reads a rate strictly: a positive integer, "/", and one of
// second, minute, hour or day.
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q has no unit; write a count per second, minute, hour or day, such as 10/minute", s)
	}
	if n == "" || strings.TrimLeft(n, "0123456789") != "" {
		return Rate{}, fmt.Errorf("rate %q: count %q is not a whole number; write it such as 10/minute", s, n)
	}
	count, err := strconv.ParseUint(n, 10, 64)
	if err != nil || count == 0 || count > maxRate {
		return Rate{}, fmt.Errorf("rate %q: count must be between 1 and %d", s, uint64(maxRate))
	}
	if !slices.Contains(RateUnits, unit) {
		return Rate{}, fmt.Errorf("rate %q: unknown unit %q; use second, minute, hour or day", s, unit)
	}
	return Rate{Count: count, Unit: unit}, nil
}

// IsZero reports whether r is unset.
func (r Rate) IsZero() bool { return r.Count == 0 }

func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Unit)
}

// UnmarshalText implements encoding.TextUnmarshaler; empty text is unset.
func (r *Rate) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = Rate{}
		return nil
	}
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// PortRange is a port (From == To) or a range, written 8080 or
// "8000-8010". The zero PortRange is unset.
type PortRange struct{ From, To uint16 }

// ParsePortRange reads "8080" or "8000-8010".
func ParsePortRange(s string) (PortRange, error) {
	from, to, isRange := strings.Cut(s, "-")
	f, err := parsePort(from)
	if err != nil {
		return PortRange{}, fmt.Errorf("invalid port %q; write a port from 1 to 65535 such as 8080, or a range such as 8000-8010", s)
	}
	t := f
	if isRange {
		if t, err = parsePort(to); err != nil {
			return PortRange{}, fmt.Errorf("invalid port range %q; write it such as 8000-8010", s)
		}
		if t < f {
			return PortRange{}, fmt.Errorf("port range %q ends before it starts", s)
		}
	}
	return PortRange{From: f, To: t}, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a number")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("out of range")
	}
	return uint16(n), nil
}

// IsZero reports whether p is unset.
func (p PortRange) IsZero() bool { return p.From == 0 }

// Len is the number of ports in p.
func (p PortRange) Len() int { return int(p.To) - int(p.From) + 1 }

func (p PortRange) String() string {
	switch {
	case p.IsZero():
		return ""
	case p.From == p.To:
		return strconv.Itoa(int(p.From))
	}
	return fmt.Sprintf("%d-%d", p.From, p.To)
}

// UnmarshalText implements encoding.TextUnmarshaler; empty text is unset.
func (p *PortRange) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = PortRange{}
		return nil
	}
	v, err := ParsePortRange(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (p PortRange) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// LogOpt is a rule's log setting: true, false, or a log prefix (which
// turns logging on).
type LogOpt struct {
	On     bool
	Prefix string
}

// maxPrefix bounds a log prefix (the kernel takes 127 bytes; the rest is
// left for the parts edge adds).
const maxPrefix = 64

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *LogOpt) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "true":
		*l = LogOpt{On: true}
	case "false", "":
		*l = LogOpt{}
	default:
		if len(s) > maxPrefix {
			return fmt.Errorf("log prefix is longer than %d characters", maxPrefix)
		}
		for _, r := range s {
			if r < ' ' || r > '~' || r == '"' || r == '\\' {
				return fmt.Errorf("log prefix %q has the character %q; use printable ASCII without quotes or backslashes", s, r)
			}
		}
		*l = LogOpt{On: true, Prefix: s}
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (l LogOpt) MarshalText() ([]byte, error) {
	if l.Prefix != "" {
		return []byte(l.Prefix), nil
	}
	return []byte(strconv.FormatBool(l.On)), nil
}

// Service is a resolved service: protocol and ports. (dhcp and dhcpv6
// are not tied to a family: udp/67 over IPv6 is nothing else either.)
type Service struct {
	// Proto is tcp, udp or both.
	Proto string
	Ports []PortRange
}

// BuiltinServices are the service names every config knows.
var BuiltinServices = map[string]Service{
	"dhcp":      {Proto: "udp", Ports: []PortRange{{67, 67}}},
	"dhcpv6":    {Proto: "udp", Ports: []PortRange{{547, 547}}},
	"dns":       {Proto: "both", Ports: []PortRange{{53, 53}}},
	"dot":       {Proto: "tcp", Ports: []PortRange{{853, 853}}},
	"http":      {Proto: "tcp", Ports: []PortRange{{80, 80}}},
	"https":     {Proto: "tcp", Ports: []PortRange{{443, 443}}},
	"mdns":      {Proto: "udp", Ports: []PortRange{{5353, 5353}}},
	"nebula":    {Proto: "udp", Ports: []PortRange{{4242, 4242}}},
	"ntp":       {Proto: "udp", Ports: []PortRange{{123, 123}}},
	"ssh":       {Proto: "tcp", Ports: []PortRange{{22, 22}}},
	"wireguard": {Proto: "udp", Ports: []PortRange{{51820, 51820}}},
}

// PortProtos are the protocols that have ports.
var PortProtos = []string{"tcp", "udp", "both"}

// RuleProtos are the protocols a rule may name.
var RuleProtos = []string{"tcp", "udp", "both", "icmp", "icmpv6", "gre", "esp", "ah", "sctp"}

// Service resolves a service reference: a name defined in c.Services, a
// built-in name, or PORT/PROTO such as 8080/tcp, 6000-6010/udp or 53/both.
func (c *Config) Service(ref string) (Service, error) {
	if d, ok := c.Services[ref]; ok {
		return Service(d), nil
	}
	if s, ok := BuiltinServices[ref]; ok {
		return s, nil
	}
	ports, proto, ok := strings.Cut(ref, "/")
	if !ok {
		if _, err := ParsePortRange(ref); err == nil {
			return Service{}, fmt.Errorf("service %q has no protocol; write %s/tcp, %s/udp or %s/both", ref, ref, ref, ref)
		}
		return Service{}, fmt.Errorf("unknown service %q%s; use %s, a name defined in firewall.services, or PORT/PROTO such as 8080/tcp", ref, config.DidYouMean(ref, c.serviceNames()), strings.Join(c.serviceNames(), ", "))
	}
	pr, err := ParsePortRange(ports)
	if err != nil {
		return Service{}, fmt.Errorf("service %q: %v", ref, err)
	}
	if !slices.Contains(PortProtos, proto) {
		return Service{}, fmt.Errorf("service %q: unknown protocol %q; use tcp, udp or both", ref, proto)
	}
	return Service{Proto: proto, Ports: []PortRange{pr}}, nil
}

func (c *Config) serviceNames() []string {
	var names []string
	for n := range BuiltinServices {
		names = append(names, n)
	}
	for n := range c.Services {
		if _, ok := BuiltinServices[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// ICMPTypes are the ICMP (IPv4) message types a rule may name, by nft's
// names.
var ICMPTypes = []string{
	"echo-reply", "destination-unreachable", "source-quench", "redirect",
	"echo-request", "router-advertisement", "router-solicitation",
	"time-exceeded", "parameter-problem", "timestamp-request",
	"timestamp-reply", "info-request", "info-reply",
	"address-mask-request", "address-mask-reply",
}

// ICMPv6Types are the ICMPv6 message types a rule may name, by nft's
// names.
var ICMPv6Types = []string{
	"destination-unreachable", "packet-too-big", "time-exceeded",
	"parameter-problem", "echo-request", "echo-reply",
	"mld-listener-query", "mld-listener-report", "mld-listener-done",
	"nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit",
	"nd-neighbor-advert", "nd-redirect", "router-renumbering",
	"ind-neighbor-solicit", "ind-neighbor-advert", "mld2-listener-report",
}

// LogLevels are the syslog levels a log rule may use.
var LogLevels = []string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}

// Interface resolves a zone's interface entry: a role of site.interfaces
// becomes its interface name; anything else is an interface name.
func Interface(site *config.Site, name string) string {
	if site != nil {
		if ifname, ok := site.Interfaces[name]; ok {
			return ifname
		}
	}
	return name
}

// Interfaces resolves a list of interface entries, keeping order and
// dropping repeats.
func Interfaces(site *config.Site, names []string) []string {
	var out []string
	for _, n := range names {
		if ifname := Interface(site, n); !slices.Contains(out, ifname) {
			out = append(out, ifname)
		}
	}
	return out
}

// checkIfName reports what is wrong with an interface name; a trailing *
// (a prefix match) is allowed when wildcard is set.
func checkIfName(name string, wildcard bool) error {
	base := name
	if wildcard {
		base = strings.TrimSuffix(name, "*")
	}
	if base == "" || len(name) > 15 {
		return fmt.Errorf("interface name %q must be 1 to 15 characters", name)
	}
	for _, r := range base {
		if r <= ' ' || r > '~' || strings.ContainsRune(`/:*"\`, r) {
			return fmt.Errorf("invalid interface name %q", name)
		}
	}
	return nil
}

// Prefixes resolves network references and splits them by family,
// keeping order and dropping repeats. Unknown names resolve to nothing
// (the config loader reports them).
func Prefixes(site *config.Site, refs []config.NetRef) (v4, v6 []netip.Prefix) {
	for _, r := range refs {
		ps, _ := r.Prefixes(site)
		for _, p := range ps {
			p = unmap(p)
			if p.Addr().Is4() {
				if !slices.Contains(v4, p) {
					v4 = append(v4, p)
				}
			} else if !slices.Contains(v6, p) {
				v6 = append(v6, p)
			}
		}
	}
	return v4, v6
}

// unmap turns an IPv4-mapped IPv6 prefix of at least 96 bits into the
// IPv4 prefix it means (Validate rejects them; this keeps a stray one
// from landing in the wrong family).
func unmap(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// validName reports whether s is a name edge accepts for zones, sets,
// rules and the like: lowercase letters, digits, - and _, starting with a
// letter, at most 32 characters.
func validName(s string) bool {
	return len(s) <= 32 && config.ValidName(s)
}

const nameRule = "use up to 32 lowercase letters, digits, - and _, starting with a letter"

// quoted lists names as "a", "b" and "c".
func quoted(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
