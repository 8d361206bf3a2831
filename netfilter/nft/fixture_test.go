package nft

import (
	"net/netip"
	"time"

	"github.com/homeedge/edge/netfilter/ruleset"
)

func pfx(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

func pfxs(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = pfx(s)
	}
	return out
}

func elems(ss ...string) []ruleset.Element {
	out := make([]ruleset.Element, len(ss))
	for i, s := range ss {
		out[i] = ruleset.Element{Prefix: pfx(s)}
	}
	return out
}

func names(kind ruleset.MatchKind, neg bool, ns ...string) ruleset.Match {
	return ruleset.Match{Kind: kind, Negate: neg, Names: ns}
}

func addr(kind ruleset.MatchKind, family ruleset.Family, neg bool, ps ...string) ruleset.Match {
	return ruleset.Match{Kind: kind, Family: family, Negate: neg, Prefixes: pfxs(ps...)}
}

func addrSet(kind ruleset.MatchKind, family ruleset.Family, neg bool, set string) ruleset.Match {
	return ruleset.Match{Kind: kind, Family: family, Negate: neg, Set: set}
}

func ports(kind ruleset.MatchKind, proto string, neg bool, rs ...ruleset.PortRange) ruleset.Match {
	m := ruleset.Match{Kind: kind, Negate: neg, Ports: rs}
	if proto != "" {
		m.Protos = []string{proto}
	}
	return m
}

func port(p uint16) ruleset.PortRange      { return ruleset.PortRange{From: p, To: p} }
func prange(a, b uint16) ruleset.PortRange { return ruleset.PortRange{From: a, To: b} }
func values(kind ruleset.MatchKind, neg bool, vs ...string) ruleset.Match {
	return ruleset.Match{Kind: kind, Negate: neg, Values: vs}
}
func protos(neg bool, ps ...string) ruleset.Match {
	return ruleset.Match{Kind: ruleset.L4Proto, Negate: neg, Protos: ps}
}

// representative is a ruleset with every match kind, statement, set kind
// and chain kind the model has; the golden and oracle tests use it. The
// kernel here has no flowtables, so offload is added by the golden test
// only (withOffload).
func representative() *ruleset.Ruleset {
	return &ruleset.Ruleset{
		Table: "edge",
		Sets: []*ruleset.Set{
			{Name: "blocklist4", Type: ruleset.IPv4Addr, Interval: true, Comment: "feeds: spamhaus drop",
				Elements: elems("10.0.0.0/24", "10.0.1.0/24", "10.0.2.1", "10.0.0.128/25", "192.0.2.0/24", "198.51.100.0/22", "10.0.2.1", "203.0.113.7")},
			{Name: "blocklist6", Type: ruleset.IPv6Addr, Interval: true,
				Elements: elems("2001:db8::/32", "2001:db8:1::/48", "2001:db9::1", "fd00:dead::/64")},
			{Name: "ban4", Type: ruleset.IPv4Addr, Timeout: true, Elements: []ruleset.Element{
				{Prefix: pfx("203.0.113.5"), Timeout: time.Hour, Comment: "edgectl fw ban"},
				{Prefix: pfx("203.0.113.6")},
				{Prefix: pfx("203.0.113.1"), Timeout: 90 * time.Minute},
				{Prefix: pfx("198.51.100.77"), Timeout: 36*time.Hour + 1500*time.Millisecond},
			}},
			{Name: "ban6", Type: ruleset.IPv6Addr, Timeout: true, Comment: "bans", Elements: []ruleset.Element{
				{Prefix: pfx("2001:db8::5"), Timeout: 10 * time.Minute},
			}},
			{Name: "tempnets", Type: ruleset.IPv4Addr, Interval: true, Timeout: true, Elements: []ruleset.Element{
				{Prefix: pfx("100.64.0.0/10"), Timeout: 2 * time.Hour, Comment: "cgnat"},
				{Prefix: pfx("198.18.0.1")},
				{Prefix: pfx("255.255.255.0/24"), Timeout: 5 * time.Minute},
			}},
			{Name: "allowed_ports", Type: ruleset.InetService, Interval: true, Elements: []ruleset.Element{
				{Port: 22}, {Port: 80}, {Port: 443}, {Port: 8000, PortEnd: 8080}, {Port: 8010, PortEnd: 8020},
				{Port: 9000}, {Port: 60000, PortEnd: 65535},
			}},
			{Name: "dns_ports", Type: ruleset.InetService, Elements: []ruleset.Element{{Port: 53}, {Port: 853}, {Port: 53}}},
			{Name: "ssh_meter4", Type: ruleset.IPv4Addr, Dynamic: true, Timeout: true, DefaultTimeout: 2 * time.Minute, Size: 65535},
			{Name: "ssh_meter6", Type: ruleset.IPv6Addr, Dynamic: true, Size: 4096},
			{Name: "lan_hosts", Type: ruleset.IPv4Addr, Elements: elems("192.168.1.10", "192.168.1.12", "192.168.1.11", "192.168.1.100", "192.168.1.13")},
			{Name: "empty4", Type: ruleset.IPv4Addr, Interval: true},
		},
		Chains: []*ruleset.Chain{
			{Name: "input", Hook: ruleset.Input, Type: ruleset.Filter, Priority: 0, Policy: ruleset.Drop, Rules: []*ruleset.Rule{
				{ID: "input: established", Matches: []ruleset.Match{values(ruleset.CtState, false, "related", "established")}, Verdict: ruleset.Accept},
				{ID: "input: invalid", Matches: []ruleset.Match{values(ruleset.CtState, false, "invalid")}, Counter: true, Verdict: ruleset.Drop},
				{ID: "input: loopback", Matches: []ruleset.Match{names(ruleset.IIFName, false, "lo")}, Verdict: ruleset.Accept},
				{ID: "input: blocklist4", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP, false, "blocklist4")}, Counter: true,
					Log: &ruleset.Log{Prefix: "edge drop blocklist: ", Level: "info"}, Verdict: ruleset.Drop},
				{ID: "input: blocklist6", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP6, false, "blocklist6")}, Counter: true, Verdict: ruleset.Drop},
				{ID: "input: bans", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP, false, "ban4")}, Counter: true, Verdict: ruleset.Drop},
				{ID: "input: bans6", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP6, false, "ban6")}, Verdict: ruleset.Drop},
				{ID: "input: icmp essentials", Matches: []ruleset.Match{values(ruleset.ICMPType, false, "echo-request", "destination-unreachable", "time-exceeded", "parameter-problem")},
					Limit: &ruleset.Limit{Rate: 100, Unit: "second"}, Verdict: ruleset.Accept},
				{ID: "input: icmpv6 essentials (RFC 4890)", Matches: []ruleset.Match{values(ruleset.ICMPv6Type, false,
					"destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem", "echo-request",
					"nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert", "mld-listener-query")}, Verdict: ruleset.Accept},
				{ID: "input: ping", Matches: []ruleset.Match{values(ruleset.ICMPType, false, "echo-request")}, Verdict: ruleset.Accept},
				{ID: "zone lan input: allow ssh", Matches: []ruleset.Match{names(ruleset.IIFName, false, "br-lan", "wg0"), ports(ruleset.DPort, "tcp", false, port(80), port(22))},
					Counter: true, Verdict: ruleset.Accept},
				{ID: "zone wan input: ssh limit", Matches: []ruleset.Match{names(ruleset.IIFName, false, "eth0"), ports(ruleset.DPort, "tcp", false, port(22)), values(ruleset.CtState, false, "new")},
					Meter: &ruleset.Meter{Set: "ssh_meter4", Family: ruleset.IP, Limit: ruleset.Limit{Rate: 10, Unit: "minute", Over: true}}, Counter: true, Verdict: ruleset.Drop},
				{ID: "zone wan input: ssh limit6", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(22)), values(ruleset.CtState, false, "new")},
					Meter: &ruleset.Meter{Set: "ssh_meter6", Family: ruleset.IP6, Limit: ruleset.Limit{Rate: 10, Unit: "minute", Over: true, Burst: 20}}, Verdict: ruleset.Drop},
				{ID: "input: syn flood", Matches: []ruleset.Match{protos(false, "tcp"), values(ruleset.CtState, false, "new")},
					Limit: &ruleset.Limit{Rate: 100, Unit: "second", Burst: 150, Over: true}, Counter: true, Verdict: ruleset.Drop},
				{ID: "input: services", Matches: []ruleset.Match{{Kind: ruleset.DPort, Protos: []string{"tcp"}, Set: "allowed_ports"}}, Verdict: ruleset.Accept},
				{ID: "input: dns", Matches: []ruleset.Match{protos(false, "udp", "tcp"), ports(ruleset.DPort, "", false, port(53))}, Verdict: ruleset.Accept},
				{ID: "input: dns set", Matches: []ruleset.Match{protos(false, "tcp", "udp"), {Kind: ruleset.DPort, Set: "dns_ports"}}, Verdict: ruleset.Accept},
				{ID: "input: dhcp", Matches: []ruleset.Match{ports(ruleset.SPort, "udp", false, port(68)), ports(ruleset.DPort, "udp", false, port(67))}, Verdict: ruleset.Accept},
				{ID: "input: explicit proto", Matches: []ruleset.Match{protos(false, "tcp"), ports(ruleset.DPort, "", false, port(8443))}, Verdict: ruleset.Accept},
				{ID: "input: port range", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, prange(6000, 6010))}, Verdict: ruleset.Accept},
				{ID: "input: not port range", Matches: []ruleset.Match{ports(ruleset.DPort, "udp", true, prange(1, 1023))}, Counter: true},
				{ID: "input: port list with range", Matches: []ruleset.Match{ports(ruleset.DPort, "udp", false, port(500), prange(4500, 4501), port(51820))}, Verdict: ruleset.Accept},
				{ID: "input: not ports", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", true, port(25), port(587))}, Counter: true},
				{ID: "input: lan net", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, false, "192.168.1.0/24"), addr(ruleset.DAddr, ruleset.IP, false, "192.168.1.1")}, Verdict: ruleset.Accept},
				{ID: "input: odd prefix", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, false, "10.16.0.0/12")}, Verdict: ruleset.Drop},
				{ID: "input: not net", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, true, "100.64.0.0/10")}, Counter: true},
				{ID: "input: nets", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, true, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "10.1.0.0/16")}, Counter: true},
				{ID: "input: adjacent nets", Matches: []ruleset.Match{addr(ruleset.DAddr, ruleset.IP, true, "192.168.1.0/24", "192.168.2.0/24", "198.51.100.0/24", "192.168.0.0/24", "10.0.0.1", "10.0.0.2")}, Counter: true},
				{ID: "input: merged v6", Matches: []ruleset.Match{addr(ruleset.DAddr, ruleset.IP6, false, "2001:db8::/33", "2001:db8:8000::/33")}, Counter: true},
				{ID: "input: contained", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, false, "10.0.0.0/8", "10.1.0.0/16")}, Counter: true},
				{ID: "input: adjacent ports", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(80), port(81), prange(1000, 2000), port(2001), port(65535))}, Counter: true},
				{ID: "input: two hosts in a row", Matches: []ruleset.Match{addr(ruleset.DAddr, ruleset.IP, false, "10.0.0.1", "10.0.0.2/31"), addr(ruleset.SAddr, ruleset.IP, true, "10.9.0.0/24", "10.9.1.0/24", "10.9.2.0/24")}, Counter: true},
				{ID: "input: ports merged", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(443)), names(ruleset.IIFName, false, "eth0"), ports(ruleset.SPort, "tcp", false, port(1024))}, Counter: true},
				{ID: "input: redundant", Matches: []ruleset.Match{values(ruleset.NFProto, false, "ipv4"), ports(ruleset.DPort, "tcp", false, port(25)), protos(false, "tcp"), values(ruleset.NFProto, false, "ipv4")}, Counter: true},
				{ID: "input: duplicate port", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(22), port(22))}, Counter: true},
				{ID: "input: hosts", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, false, "192.0.2.7", "192.0.2.3")}, Verdict: ruleset.Accept},
				{ID: "input: v6 nets", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP6, false, "fd00:1::/64", "fe80::/10"), addr(ruleset.DAddr, ruleset.IP6, true, "ff02::1")}, Verdict: ruleset.Accept},
				{ID: "input: v6 odd", Matches: []ruleset.Match{addr(ruleset.DAddr, ruleset.IP6, false, "2001:db8::/33")}, Verdict: ruleset.Drop},
				{ID: "input: lan hosts", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP, true, "lan_hosts")}, Counter: true},
				{ID: "input: nfproto", Matches: []ruleset.Match{values(ruleset.NFProto, false, "ipv6"), values(ruleset.CtState, true, "established", "related")}, Counter: true},
				{ID: "input: nfproto folded", Matches: []ruleset.Match{values(ruleset.NFProto, false, "ipv4"), addr(ruleset.SAddr, ruleset.IP, false, "198.18.0.0/15")}, Verdict: ruleset.Drop},
				{ID: "input: families", Matches: []ruleset.Match{values(ruleset.NFProto, false, "ipv6", "ipv4")}, Counter: true},
				{ID: "input: not ipv4", Matches: []ruleset.Match{values(ruleset.NFProto, true, "ipv4")}, Counter: true},
				{ID: "input: not tcp", Matches: []ruleset.Match{protos(true, "tcp"), protos(false, "icmpv6", "icmp")}, Counter: true},
				{ID: "input: local", Matches: []ruleset.Match{{Kind: ruleset.FibDAddrLocal}, protos(false, "udp")}, Verdict: ruleset.Accept},
				{ID: "input: not local", Matches: []ruleset.Match{{Kind: ruleset.FibDAddrLocal, Negate: true}}, Verdict: ruleset.Drop},
				{ID: "input: no echo reply", Matches: []ruleset.Match{values(ruleset.ICMPType, true, "echo-reply", "source-quench")}, Counter: true},
				{ID: "input: no redirect", Matches: []ruleset.Match{values(ruleset.ICMPv6Type, true, "nd-redirect")}, Counter: true},
				{ID: "input: not lan", Matches: []ruleset.Match{names(ruleset.IIFName, true, "br-lan")}, Verdict: ruleset.Jump, Target: "wan_in"},
				{ID: "input: not lan or wg", Matches: []ruleset.Match{names(ruleset.IIFName, true, "br-lan", "wg0")}, Verdict: ruleset.Goto, Target: "wan_in"},
				{ID: "input: log", Log: &ruleset.Log{Prefix: "edge input drop: "}, Limit: &ruleset.Limit{Rate: 5, Unit: "minute", Burst: 10}},
				{ID: "input: log debug", Log: &ruleset.Log{Level: "debug"}},
				{ID: "input: log warn", Log: &ruleset.Log{Prefix: "warn: ", Level: "warn"}},
				{ID: "input: log group", Log: &ruleset.Log{Prefix: "to nflog: ", ToGroup: true, Group: 7}},
				{ID: "input: log group 0", Log: &ruleset.Log{ToGroup: true}},
				{ID: "input: veth wildcard", Matches: []ruleset.Match{names(ruleset.IIFName, false, "veth*")}, Counter: true},
				{ID: "input: not docker wildcard", Matches: []ruleset.Match{names(ruleset.OIFName, true, "docker*"), names(ruleset.IIFName, true, "br-lan", "wg0")}, Counter: true},
				{ID: "input: reject v4", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, false, "192.168.1.0/24")}, Verdict: ruleset.Reject},
				{ID: "input: reject v6", Matches: []ruleset.Match{values(ruleset.ICMPv6Type, false, "echo-request")}, Verdict: ruleset.Reject},
				{ID: "input: reject nfproto", Matches: []ruleset.Match{values(ruleset.NFProto, false, "ipv4")}, Verdict: ruleset.Reject},
				{ID: "input: reject tcp", Matches: []ruleset.Match{protos(false, "tcp")}, Counter: true, Verdict: ruleset.Reject, RejectWith: ruleset.RejectTCPReset},
				{ID: "input: reject tcp port", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(113))}, Verdict: ruleset.Reject, RejectWith: ruleset.RejectTCPReset},
				{ID: "input: reject tcp v6", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP6, false, "2001:db8::/32"), protos(false, "tcp")}, Verdict: ruleset.Reject, RejectWith: ruleset.RejectTCPReset},
				{ID: "input: reject", Counter: true, Verdict: ruleset.Reject},
			}},
			{Name: "wan_in", Rules: []*ruleset.Rule{
				{ID: "wan: ssh", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(22))}, Verdict: ruleset.Return},
				{ID: "wan: drop", Verdict: ruleset.Drop},
			}},
			{Name: "empty_chain"},
			{Name: "forward", Hook: ruleset.Forward, Type: ruleset.Filter, Priority: 0, Policy: ruleset.Drop, Rules: []*ruleset.Rule{
				{ID: "forward: established", Matches: []ruleset.Match{values(ruleset.CtState, false, "established", "related")}, Counter: true, Verdict: ruleset.Accept},
				{ID: "forward: dnat", Matches: []ruleset.Match{values(ruleset.CtStatus, false, "dnat")}, Verdict: ruleset.Accept},
				{ID: "forward: not nat", Matches: []ruleset.Match{values(ruleset.CtStatus, true, "dnat", "snat")}, Counter: true},
				{ID: "forward: limit port forward", Matches: []ruleset.Match{names(ruleset.IIFName, false, "eth0"), values(ruleset.CtState, false, "new"), values(ruleset.CtStatus, false, "dnat"),
					protos(false, "tcp"), {Kind: ruleset.CtOriginalDPort, Ports: []ruleset.PortRange{port(8080)}}, addr(ruleset.DAddr, ruleset.IP, false, "192.168.1.10")},
					Meter: &ruleset.Meter{Set: "ssh_meter4", Family: ruleset.IP, Limit: ruleset.Limit{Rate: 10, Unit: "minute", Burst: 10, Over: true}}, Counter: true, Verdict: ruleset.Drop},
				{ID: "forward: original range", Matches: []ruleset.Match{ports(ruleset.DPort, "udp", false, port(27015)),
					{Kind: ruleset.CtOriginalDPort, Negate: true, Ports: []ruleset.PortRange{prange(27015, 27030)}}}, Counter: true},
				{ID: "forward: lan to wan", Matches: []ruleset.Match{names(ruleset.IIFName, false, "br-lan"), names(ruleset.OIFName, false, "eth0")}, Verdict: ruleset.Accept},
				{ID: "forward: not wan", Matches: []ruleset.Match{names(ruleset.OIFName, true, "eth0", "eth1")}, Verdict: ruleset.Drop},
			}},
			{Name: "output", Hook: ruleset.Output, Type: ruleset.Filter, Priority: 10, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
				{ID: "output: count", Counter: true},
			}},
			{Name: "raw_pre", Hook: ruleset.Prerouting, Type: ruleset.Filter, Priority: -305, Policy: ruleset.Accept},
			{Name: "odd_prio", Hook: ruleset.Input, Type: ruleset.Filter, Priority: -120, Policy: ruleset.Accept},
			{Name: "input_srcnat_prio", Hook: ruleset.Input, Type: ruleset.Filter, Priority: 95, Policy: ruleset.Accept},
			{Name: "prerouting", Hook: ruleset.Prerouting, Type: ruleset.NATType, Priority: -100, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
				{ID: "forward wan 8080 to nas", Matches: []ruleset.Match{names(ruleset.IIFName, false, "eth0"), ports(ruleset.DPort, "tcp", false, port(8080))},
					Counter: true, NAT: &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.168.1.10"), Port: 80}},
				{ID: "forward wan range", Matches: []ruleset.Match{names(ruleset.IIFName, false, "eth0"), ports(ruleset.DPort, "udp", false, prange(27000, 27015))},
					NAT: &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.168.1.11"), Port: 27000, PortEnd: 27015}},
				{ID: "forward v6", Matches: []ruleset.Match{names(ruleset.IIFName, false, "eth0"), protos(false, "tcp")},
					NAT: &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP6, Addr: netip.MustParseAddr("fd00:1::10"), Port: 443}},
				{ID: "dns to the resolver", Matches: []ruleset.Match{names(ruleset.IIFName, false, "br-lan"), protos(false, "udp", "tcp"), ports(ruleset.DPort, "", false, port(53))},
					NAT: &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.168.1.53"), Port: 5353}},
				{ID: "dmz host", Matches: []ruleset.Match{addr(ruleset.DAddr, ruleset.IP, false, "192.0.2.1")},
					NAT: &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.168.1.12")}},
				{ID: "hairpin 8080", Matches: []ruleset.Match{{Kind: ruleset.FibDAddrLocal}, ports(ruleset.DPort, "tcp", false, port(8080))},
					NAT: &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.168.1.10"), Port: 80}},
				{ID: "dns redirect", Matches: []ruleset.Match{names(ruleset.IIFName, false, "br-lan"), ports(ruleset.DPort, "udp", false, port(53))},
					NAT: &ruleset.NAT{Kind: ruleset.Redirect, Port: 5353}},
				{ID: "redirect range", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(3128))},
					NAT: &ruleset.NAT{Kind: ruleset.Redirect, Port: 3128, PortEnd: 3130}},
				{ID: "redirect plain", Matches: []ruleset.Match{names(ruleset.IIFName, false, "wg0")}, NAT: &ruleset.NAT{Kind: ruleset.Redirect}},
			}},
			{Name: "postrouting", Hook: ruleset.Postrouting, Type: ruleset.NATType, Priority: 100, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
				{ID: "masquerade lan to wan", Matches: []ruleset.Match{names(ruleset.OIFName, false, "eth0")}, Counter: true, NAT: &ruleset.NAT{Kind: ruleset.Masquerade}},
				{ID: "masquerade ports", Matches: []ruleset.Match{names(ruleset.OIFName, false, "eth1"), protos(false, "udp")}, NAT: &ruleset.NAT{Kind: ruleset.Masquerade, Port: 1024, PortEnd: 65535}},
				{ID: "masquerade one port", Matches: []ruleset.Match{protos(false, "tcp")}, NAT: &ruleset.NAT{Kind: ruleset.Masquerade, Port: 2000}},
				{ID: "snat fixed", Matches: []ruleset.Match{names(ruleset.OIFName, false, "eth2")}, NAT: &ruleset.NAT{Kind: ruleset.SNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.0.2.1")}},
				{ID: "snat ports", Matches: []ruleset.Match{names(ruleset.OIFName, false, "eth2"), protos(false, "udp")},
					NAT: &ruleset.NAT{Kind: ruleset.SNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 1000, PortEnd: 2000}},
				{ID: "snat v6", Matches: []ruleset.Match{names(ruleset.OIFName, false, "eth2")}, NAT: &ruleset.NAT{Kind: ruleset.SNAT, Family: ruleset.IP6, Addr: netip.MustParseAddr("2001:db8:2::1")}},
				{ID: "hairpin masquerade", Matches: []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, false, "192.168.1.0/24"), addr(ruleset.DAddr, ruleset.IP, false, "192.168.1.10"),
					ports(ruleset.DPort, "tcp", false, port(80)), values(ruleset.CtStatus, false, "dnat")}, NAT: &ruleset.NAT{Kind: ruleset.Masquerade}},
			}},
		},
	}
}

// withOffload adds a flowtable and an offload rule to r (golden only: no
// flowtable support on the CI kernel).
func withOffload(r *ruleset.Ruleset) *ruleset.Ruleset {
	r.Flowtable = &ruleset.Flowtable{Name: "ft", Devices: []string{"eth0", "br-lan"}, Priority: 0}
	for _, c := range r.Chains {
		if c.Name == "forward" {
			c.Rules = append([]*ruleset.Rule{{ID: "forward: offload", Matches: []ruleset.Match{values(ruleset.CtState, false, "established", "related"), protos(false, "tcp", "udp")}, Offload: true}}, c.Rules...)
		}
	}
	return r
}
