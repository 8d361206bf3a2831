package vpn

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// An access entry says where a limited peer may go: a destination, then
// optionally the services on it, separated by spaces:
//
//	lan                          every protocol and port of a network of site.networks
//	192.168.1.10 tcp/80,443      a host's web ports
//	192.168.1.0/24 udp/53 tcp/53 DNS on a network
//	192.168.1.10 tcp/8000-8099   a range
//	192.168.1.10 tcp             every TCP port; udp likewise
//	lan icmp                     ping and the other ICMP (ICMPv6 for IPv6 destinations)
//
// The same text goes into the config (access.default, access.groups) and
// into `edgectl peer add --access`. The protocol comes first, as in
// nft's `tcp dport 443`: the destination is a network, so its services
// read as "to this, with that". Spaces, not colons, separate the parts:
// an IPv6 address has colons of its own.

// AccessRef is one access entry as the config writes it (see above). It
// takes any YAML scalar, so that the part of a flow list that a comma
// split off ("[192.168.1.10 tcp/80,443]" reads as two entries, the second
// the integer 443) reaches Validate, which can say what happened, instead
// of the decoder's "expected a string".
type AccessRef string

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *AccessRef) UnmarshalText(b []byte) error {
	*r = AccessRef(b)
	return nil
}

// accessEntry is one resolved access entry: a network and, when Services
// is not empty, only those protocols and ports on it.
type accessEntry struct {
	To       netip.Prefix
	Services []accessService
}

// accessService is a protocol (tcp, udp or icmp) and, for tcp and udp,
// the ports; no ports means every port.
type accessService struct {
	Proto string
	Ports []ruleset.PortRange
}

// accessProtos are the protocols an entry may name.
var accessProtos = []string{"tcp", "udp", "icmp"}

// accessSyntax is what an entry may be, for error messages.
const accessSyntax = "write a network of site.networks, a prefix or an address, then optionally services: tcp/443, udp/53, tcp/80,443, tcp/8000-8099, tcp, udp or icmp, such as \"192.168.1.10 tcp/80,443\""

// parseAccess reads one access entry against site. A network of several
// prefixes gives one entry for each, with the same services.
func parseAccess(text string, site *config.Site) ([]accessEntry, error) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty; %s", accessSyntax)
	}
	to, err := accessDestination(fields[0], site)
	if err != nil {
		return nil, err
	}
	var services []accessService
	for _, f := range fields[1:] {
		sv, err := parseService(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		services = append(services, sv)
	}
	services = normServices(services)
	out := make([]accessEntry, len(to))
	for i, p := range to {
		out[i] = accessEntry{To: p, Services: services}
	}
	return out, nil
}

// accessDestination resolves an entry's first word: a network of
// site.networks, a prefix or an address.
func accessDestination(s string, site *config.Site) ([]netip.Prefix, error) {
	if isPortList(s) {
		return nil, fmt.Errorf("%s is a port, not a destination; %s", s, accessSyntax)
	}
	if strings.ContainsAny(s, "/.:") {
		ps, ok := config.NetRef(s).Prefixes(site)
		if !ok {
			return nil, fmt.Errorf("invalid prefix or address %q; %s", s, accessSyntax)
		}
		if p := ps[0]; p != p.Masked() {
			return nil, fmt.Errorf("prefix %s has host bits set; did you mean %s?", p, p.Masked())
		}
		return ps, nil
	}
	ps, ok := site.Networks[s]
	if !ok {
		names := slices.Sorted(maps.Keys(site.Networks))
		return nil, fmt.Errorf("unknown network %q%s; site.networks has %s (or write a prefix or an address)", s, config.DidYouMean(s, names), strings.Join(sortedKeys(site.Networks), ", "))
	}
	return ps, nil
}

// isPortList reports whether s is only digits, commas and dashes: the
// ports of a service without the protocol, or what a comma split off.
func isPortList(s string) bool {
	return s != "" && strings.Trim(s, "0123456789,-") == "" && strings.ContainsAny(s, "0123456789")
}

// parseService reads tcp, udp or icmp, optionally with /PORTS for tcp and
// udp: 443, 80,443, 8000-8099.
func parseService(s string) (accessService, error) {
	proto, ports, slash := strings.Cut(s, "/")
	switch {
	case isPortList(proto) && slash:
		return accessService{}, fmt.Errorf("write the protocol first: %s/%s", ports, proto)
	case isPortList(proto):
		return accessService{}, fmt.Errorf("a port needs its protocol: tcp/%s or udp/%s", proto, proto)
	case !slices.Contains(accessProtos, proto):
		return accessService{}, fmt.Errorf("unknown protocol %q; use %s", proto, strings.Join(accessProtos[:len(accessProtos)-1], ", ")+" or "+accessProtos[len(accessProtos)-1])
	case !slash:
		return accessService{Proto: proto}, nil
	case proto == "icmp":
		return accessService{}, fmt.Errorf("icmp has no ports; write icmp")
	case ports == "":
		return accessService{}, fmt.Errorf("no ports after the slash; write %s/443, %s/80,443 or %s/8000-8099 (or %s for every port)", proto, proto, proto, proto)
	}
	sv := accessService{Proto: proto}
	for _, p := range strings.Split(ports, ",") {
		r, err := parsePortRange(p)
		if err != nil {
			return accessService{}, err
		}
		sv.Ports = append(sv.Ports, r)
	}
	return sv, nil
}

// parsePortRange reads 443 or 8000-8099.
func parsePortRange(s string) (ruleset.PortRange, error) {
	from, to, isRange := strings.Cut(s, "-")
	a, err := parsePort(from)
	if err != nil {
		return ruleset.PortRange{}, err
	}
	if !isRange {
		return ruleset.PortRange{From: a, To: a}, nil
	}
	b, err := parsePort(to)
	if err != nil {
		return ruleset.PortRange{}, err
	}
	if b < a {
		return ruleset.PortRange{}, fmt.Errorf("the range runs backwards; write %d-%d", b, a)
	}
	return ruleset.PortRange{From: a, To: b}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not from 1 to 65535", s)
	}
	return uint16(n), nil
}

// normServices sorts services by protocol and merges those of one
// protocol: their ports sorted and joined where they overlap or touch,
// and a protocol without ports (every port) takes in the rest.
func normServices(in []accessService) []accessService {
	byProto := map[string]*accessService{}
	for _, sv := range in {
		cur := byProto[sv.Proto]
		switch {
		case cur == nil:
			byProto[sv.Proto] = &accessService{Proto: sv.Proto, Ports: slices.Clone(sv.Ports)}
		case len(cur.Ports) == 0:
		case len(sv.Ports) == 0:
			cur.Ports = nil
		default:
			cur.Ports = append(cur.Ports, sv.Ports...)
		}
	}
	var out []accessService
	for _, proto := range slices.Sorted(maps.Keys(byProto)) {
		sv := byProto[proto]
		sv.Ports = ruleset.MergePorts(sv.Ports)
		out = append(out, *sv)
	}
	return out
}

// String writes the service as an entry does: tcp, tcp/80,443, tcp/8000-8099.
func (sv accessService) String() string {
	if len(sv.Ports) == 0 {
		return sv.Proto
	}
	parts := make([]string, len(sv.Ports))
	for i, r := range sv.Ports {
		parts[i] = strconv.Itoa(int(r.From))
		if r.To != r.From {
			parts[i] += "-" + strconv.Itoa(int(r.To))
		}
	}
	return sv.Proto + "/" + strings.Join(parts, ",")
}

// String writes the entry as parseAccess reads it, with the destination
// as a prefix: "192.168.1.10/32 tcp/80,443".
func (e accessEntry) String() string {
	var b strings.Builder
	b.WriteString(e.To.String())
	for _, sv := range e.Services {
		b.WriteByte(' ')
		b.WriteString(sv.String())
	}
	return b.String()
}

// MarshalText implements encoding.TextMarshaler: the registry keeps an
// entry as its text, so a peer stored with a bare prefix (before entries
// had services) reads back as the same entry.
func (e accessEntry) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *accessEntry) UnmarshalText(b []byte) error {
	es, err := parseAccess(string(b), &config.Site{})
	if err != nil {
		return fmt.Errorf("access %q: %w", b, err)
	}
	if len(es) != 1 {
		return fmt.Errorf("access %q: want one destination", b)
	}
	*e = es[0]
	return nil
}

// checkAccess validates the entries of one access list at v: each is
// parsed against site, and a part a flow list's comma split off gets a
// message that says so.
func checkAccess(v *config.Checker, refs []AccessRef, site *config.Site) {
	for j, r := range refs {
		if _, err := parseAccess(string(r), site); err != nil {
			switch {
			case strings.TrimSpace(string(r)) == "":
				v.Index(j).Errorf("%v", err)
			case j > 0 && isPortList(strings.TrimSpace(string(r))):
				v.Index(j).Errorf("access %q: a port, not a network: a [flow, list] splits at commas, so quote an entry with a port list (\"192.168.1.10 tcp/80,443\") or write one entry per line", r)
			default:
				v.Index(j).Errorf("access %q: %v", r, err)
			}
		}
	}
}
