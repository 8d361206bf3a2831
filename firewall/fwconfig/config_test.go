package fwconfig

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/homeedge/edge/internal/config"
)

// head is the file before the firewall section: 7 lines, so the section's
// first line is line 8.
const head = `version: 1
site:
  interfaces: {wan: eth0, lan: br-lan}
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
    vpn: [10.100.0.0/24]
firewall:
`

// zones are the two zones most cases build on (lines 8-10).
const zones = `  zones:
    wan: {interfaces: [wan]}
    lan: {interfaces: [lan], networks: [lan]}
`

func parse(section string) (*config.File[Config], error) {
	return config.Parse([]byte(head+section), "edge.yaml", Section, DefaultConfig)
}

func TestExampleLoads(t *testing.T) {
	f, err := config.Load("testdata/example.yaml", Section, DefaultConfig)
	if err != nil {
		t.Fatalf("Load(example.yaml) error:\n%v", err)
	}
	if got, want := f.Section.ZoneNames(), []string{"lan", "nebula", "vpn", "wan"}; !cmp.Equal(got, want) {
		t.Errorf("example zones = %v, want %v", got, want)
	}
}

func TestDefaults(t *testing.T) {
	f, err := parse(zones + `  rules:
    - {name: r, action: drop}
  policies:
    - {from: lan, to: wan}
  port_forwards:
    - {name: web, port: 8080, to: 192.168.1.10}
  nat:
    one_to_one: [{external: 192.0.2.10, internal: 192.168.1.20}]
  limits:
    per_source: [{service: ssh, rate: 10/minute}]
    syn_flood: {rate: 200/second}
`)
	if err != nil {
		t.Fatalf("parse error: %v", err)
	}
	c := f.Section
	want := Config{
		Common:   config.Common{Metrics: config.Metrics{Listen: "127.0.0.1:9711"}, ShutdownTimeout: config.DefaultShutdownTimeout},
		Defaults: Defaults{Input: Drop, Forward: Drop, Output: Accept},
		Zones: map[string]Zone{
			"wan": {Interfaces: []string{"wan"}, Input: Drop, Forward: Drop, Output: Accept},
			"lan": {Interfaces: []string{"lan"}, Networks: []config.NetRef{"lan"}, Input: Drop, Forward: Drop, Output: Accept},
		},
		Policies:     []Policy{{From: "lan", To: "wan", Action: Accept}},
		Rules:        []Rule{{Name: "r", Action: Drop, From: Any, To: Router}},
		PortForwards: []PortForward{{Name: "web", FromZone: "wan", Proto: "tcp", Port: PortRange{8080, 8080}, To: netip.MustParseAddr("192.168.1.10"), Hairpin: true}},
		NAT:          NAT{OneToOne: []OneToOne{{External: netip.MustParseAddr("192.0.2.10"), Internal: netip.MustParseAddr("192.168.1.20"), Zone: "wan"}}},
		Bans:         Bans{Zones: []string{"wan"}, DefaultTimeout: config.Duration(time.Hour), MaxTimeout: config.Duration(30 * 24 * time.Hour)},
		Limits: Limits{
			PerSource: []SourceLimit{{Service: "ssh", Rate: Rate{10, "minute"}, Zones: []string{"wan"}}},
			SYNFlood:  &SYNFlood{Rate: Rate{200, "second"}, Zones: []string{"wan"}},
		},
		Log:     Log{Rate: Rate{10, "minute"}, Burst: 5, To: LogToKernel, Group: 100, Level: "info"},
		Confirm: Confirm{DefaultTimeout: config.Duration(time.Minute)},
	}
	if diff := cmp.Diff(want, c, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("parsed config differs (-want +got):\n%s", diff)
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		name, section string
	}{
		{"zone of networks only", "  zones:\n    wan: {interfaces: [wan]}\n    vpn: {networks: [vpn, \"fd00:100::/64\"]}\n"},
		{"interface names and wildcard", "  zones:\n    wan: {interfaces: [eth0]}\n    k8s: {interfaces: [\"cni*\", flannel.1]}\n"},
		{"services of every form", zones + "  services:\n    plex: {proto: tcp, ports: [32400]}\n    ssh: {proto: tcp, ports: [2222]}\n" +
			"    range: {proto: both, ports: [\"6000-6010\", 7000]}\n" +
			"  rules:\n    - {name: a, services: [plex, ssh, dns, 8080/tcp, \"6000-6010/udp\", 53/both, range], action: accept}\n"},
		{"rule forms", zones + `  sets:
    bad: {entries: [203.0.113.0/24]}
  rules:
    - {name: to-any, from: wan, to: any, source_set: bad, action: drop, log: true}
    - {name: out, from: router, to: wan, destination: [192.0.2.0/24], proto: udp, ports: [53], action: accept}
    - {name: icmp, from: lan, icmp_types: [echo-request], icmpv6_types: [echo-request], action: accept, limit: {rate: 5/second, burst: 10}}
    - {name: gre, from: lan, to: wan, proto: gre, action: accept, log: "gre: "}
    - {name: v6, source: ["2001:db8::/32"], destination: [lan], action: reject}
`},
		{"port forward forms", zones + `  port_forwards:
    - {name: a, port: 80, to: 192.168.1.10}
    - {name: b, proto: both, port: "5000-5010", to: 192.168.1.11, to_port: "6000-6010"}
    - {name: c, proto: udp, port: 80, to: 192.168.1.12, to_port: 8080, hairpin: false, allow_from: [vpn]}
    - {name: d, port: 80, to: "fd00:1::10"}
`},
		{"limits of forwarded and own ports", zones + `  port_forwards:
    - {name: web, port: 8080, to: 192.168.1.10}
  limits:
    per_source:
      - {name: web-own, service: 8080/tcp, zones: [wan, lan], rate: 1/second}
      - {name: range, service: 8000-8080/tcp, rate: 1/second}
      - {port_forward: web, rate: 1/second, zones: [lan]}
`},
		{"bans without end", zones + "  bans: {max_timeout: 0s, static: [192.0.2.1, \"2001:db8::1\"]}\n"},
		{"json", `  {"zones": {"wan": {"interfaces": ["wan"]}}, "log": {"rate": "1/second"}}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parse(tc.section); err != nil {
				t.Errorf("parse(%q) error:\n%v", tc.section, err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		section string
		want    []string // one substring per error, in order
	}{
		{"no zones", "  log: {level: info}\n", []string{
			"edge.yaml:8:3: firewall.zones: no zones; declare at least one, such as wan: {interfaces: [wan]}",
			`edge.yaml:8:3: firewall.bans.zones[0]: unknown zone "wan"; firewall.zones has none`,
		}},
		{"typo key", zones + "  port_forward: []\n", []string{`edge.yaml:11:3: firewall.port_forward: unknown key "port_forward" (did you mean "port_forwards"?)`}},
		{"reserved zone", "  zones:\n    wan: {interfaces: [wan]}\n    any: {interfaces: [eth1]}\n", []string{
			`edge.yaml:10:10: firewall.zones.any: "any" is reserved`}},
		{"zone name", "  zones:\n    wan: {interfaces: [wan]}\n    Lan: {interfaces: [eth1]}\n", []string{
			`firewall.zones.Lan: invalid zone name "Lan"; use up to 32 lowercase letters`}},
		{"empty zone", "  zones:\n    wan: {interfaces: [wan]}\n    dmz: {input: accept}\n", []string{
			`edge.yaml:10:10: firewall.zones.dmz: zone "dmz" has no interfaces and no networks`}},
		{"interface twice", "  zones:\n    wan: {interfaces: [wan]}\n    other: {interfaces: [eth0]}\n", []string{
			`edge.yaml:9:24: firewall.zones.wan.interfaces[0]: interface "eth0" is also in zone "other"`}},
		{"wildcard overlap", "  zones:\n    wan: {interfaces: [wan]}\n    other: {interfaces: [\"eth*\"]}\n", []string{
			`firewall.zones.wan.interfaces[0]: interface "eth0" overlaps "eth*" of zone "other"`}},
		{"bad interface", "  zones:\n    wan: {interfaces: [wan, this-is-much-too-long, \"a/b\"]}\n", []string{
			`firewall.zones.wan.interfaces[1]: interface name "this-is-much-too-long" must be 1 to 15 characters`,
			`firewall.zones.wan.interfaces[2]: invalid interface name "a/b"`}},
		{"networks overlap", "  zones:\n    wan: {interfaces: [wan]}\n    a: {networks: [lan]}\n    b: {networks: [192.168.1.128/25]}\n", []string{
			`edge.yaml:11:20: firewall.zones.b.networks[0]: network 192.168.1.128/25 overlaps 192.168.1.0/24 of zone "a"`}},
		{"unknown network", "  zones:\n    wan: {interfaces: [wan]}\n    a: {networks: [dmz]}\n", []string{
			`edge.yaml:10:20: firewall.zones.a.networks[0]: unknown network "dmz"; site.networks has "lan", "vpn"`}},
		{"bad actions", "  defaults: {input: allow}\n  zones:\n    wan: {interfaces: [wan], forward: ACCEPT}\n", []string{
			`edge.yaml:8:21: firewall.defaults.input: unknown action "allow"; use accept, drop or reject`,
			`edge.yaml:10:39: firewall.zones.wan.forward: unknown action "ACCEPT"`}},
		{"zone services", "  zones:\n    wan: {interfaces: [wan], services: [shh, \"8080\", 8080/sctp, ssh, ssh, 0/tcp]}\n", []string{
			`firewall.zones.wan.services[0]: unknown service "shh" (did you mean "ssh"?); use dhcp, dhcpv6, dns, dot, http, https, mdns, nebula, ntp, ssh, wireguard, a name defined in firewall.services, or PORT/PROTO such as 8080/tcp`,
			`firewall.zones.wan.services[1]: service "8080" has no protocol; write 8080/tcp, 8080/udp or 8080/both`,
			`firewall.zones.wan.services[2]: service "8080/sctp": unknown protocol "sctp"; use tcp, udp or both`,
			`firewall.zones.wan.services[4]: service "ssh" is listed twice`,
			`firewall.zones.wan.services[5]: service "0/tcp": invalid port "0"`}},
		{"forward_to unknown", "  zones:\n    wan: {interfaces: [wan]}\n    lan: {interfaces: [lan], forward_to: [wna]}\n", []string{
			`edge.yaml:10:43: firewall.zones.lan.forward_to[0]: unknown zone "wna" (did you mean "wan"?); firewall.zones has "lan", "wan"`}},
		{"policy twice", zones[:len(zones)-2] + ", forward_to: [wan]}\n  policies:\n    - {from: lan, to: wan, action: drop}\n", []string{
			`edge.yaml:12:7: firewall.policies[0]: forwarding from lan to wan is already set by firewall.zones.lan.forward_to[0]`}},
		{"policy to the same zone", "  zones:\n    wan: {interfaces: [wan]}\n    lan: {interfaces: [lan], forward_to: [wan, lan], intra: allow}\n  policies:\n    - {from: wan, to: wan, action: drop}\n", []string{
			`edge.yaml:10:61: firewall.zones.lan.intra: unknown action "allow"; use accept, drop or reject`,
			`edge.yaml:10:48: firewall.zones.lan.forward_to[1]: forwarding from zone lan to itself is firewall.zones.lan.intra (accept, drop or reject), not a policy`,
			`edge.yaml:12:7: firewall.policies[0]: forwarding from zone wan to itself is firewall.zones.wan.intra`}},
		{"policy zones", zones + "  policies:\n    - {from: any, to: dmz}\n    - {from: lan}\n", []string{
			`firewall.policies[0].from: "any" is not allowed here; name a zone: "lan", "wan"`,
			`firewall.policies[0].to: unknown zone "dmz"`,
			`edge.yaml:13:7: firewall.policies[1].to: missing; name a zone: "lan", "wan"`}},
		{"service definitions", zones + "  services:\n    web: {proto: http, ports: [80]}\n    Bad: {proto: tcp}\n", []string{
			`edge.yaml:12:18: firewall.services.web.proto: unknown protocol "http"; use tcp, udp or both`,
			`edge.yaml:13:10: firewall.services.Bad: invalid service name "Bad"`,
			`edge.yaml:13:10: firewall.services.Bad.ports: no ports; list ports or ranges`}},
		{"sets", zones + "  sets:\n    ban: {entries: [192.0.2.1]}\n    meter_x: {entries: [192.0.2.1]}\n    empty: {}\n    rel: {file: lists/x.txt}\n    mapped: {entries: [\"::ffff:192.0.2.1\"]}\n", []string{
			`edge.yaml:12:10: firewall.sets.ban: set name "ban" is reserved`,
			`edge.yaml:13:14: firewall.sets.meter_x: set name "meter_x" is reserved`,
			`edge.yaml:14:12: firewall.sets.empty: set "empty" is empty; give entries or a file`,
			`edge.yaml:15:17: firewall.sets.rel.file: must be an absolute path, got "lists/x.txt"`,
			`firewall.sets.mapped.entries[0]: ::ffff:192.0.2.1/128 is an IPv4-mapped IPv6 address`}},
		{"rule names", zones + "  rules:\n    - {name: a, action: drop}\n    - {action: drop}\n    - {name: a, action: drop}\n    - {name: \"A b\", action: drop}\n", []string{
			`edge.yaml:13:7: firewall.rules[1].name: missing; every rule needs a name`,
			`edge.yaml:14:14: firewall.rules[2].name: rule name "a" is also used by firewall.rules[0]; names must be unique`,
			`firewall.rules[3].name: invalid rule name "A b"`}},
		{"rule zones and sets", zones + "  rules:\n    - {name: a, from: dmz, to: router}\n    - {name: b, from: router, to: router, action: accept}\n    - {name: c, source: [lan], source_set: x, action: drop}\n", []string{
			`firewall.rules[0].action: missing; use accept, drop or reject`,
			`firewall.rules[0].from: unknown zone "dmz"; firewall.zones has "lan", "wan"`,
			`firewall.rules[1].to: a rule from router to router matches nothing`,
			`firewall.rules[2].source_set: give source or source_set, not both`,
			`firewall.rules[2].source_set: unknown set "x"; firewall.sets has none`}},
		{"rule protocols", zones + `  rules:
    - {name: a, services: [ssh], proto: tcp, action: accept}
    - {name: b, ports: [22], action: accept}
    - {name: c, proto: icmp, ports: [1], action: accept}
    - {name: d, icmp_types: [echo-reqest], action: accept}
    - {name: e, proto: tcp, icmp_types: [echo-request], action: accept}
    - {name: f, proto: icmp, icmpv6_types: [echo-request], action: accept}
    - {name: g, proto: ipx, action: accept}
    - {name: h, services: [ssh], icmp_types: [echo-request], action: accept}
`, []string{
			`edge.yaml:12:27: firewall.rules[0].services: give services, or proto with ports, not both`,
			`firewall.rules[1].ports: ports need proto tcp, udp or both`,
			`firewall.rules[2].ports: ports need proto tcp, udp or both`,
			`firewall.rules[3].icmp_types[0]: unknown ICMP type "echo-reqest" (did you mean "echo-request"?)`,
			`firewall.rules[4].proto: proto tcp does not go with ICMP types; leave proto out`,
			`firewall.rules[5].icmpv6_types: ICMPv6 types with proto icmp; use proto icmpv6, or leave proto out`,
			`firewall.rules[6].proto: unknown protocol "ipx"; use tcp, udp, both, icmp, icmpv6, gre, esp, ah, sctp`,
			`firewall.rules[7].services: give services or ICMP types, not both`}},
		{"rule families", zones + `  rules:
    - {name: a, source: [192.0.2.0/24], destination: ["2001:db8::/32"], action: drop}
    - {name: b, source: ["2001:db8::/32"], icmp_types: [echo-request], action: drop}
    - {name: c, proto: icmpv6, destination: [vpn], action: drop}
`, []string{
			`edge.yaml:12:7: firewall.rules[0]: rule "a" can match no packet: source has IPv4 only and destination has IPv6 only`,
			`firewall.rules[1]: rule "b" can match no packet: source has IPv6 only and ICMP is IPv4 only`,
			`firewall.rules[2]: rule "c" can match no packet: destination has IPv4 only and ICMPv6 is IPv6 only`}},
		{"rule log", zones + "  rules:\n    - {name: a, action: drop, log: \"" + strings.Repeat("x", 65) + "\"}\n    - {name: b, action: drop, log: \"a\\\"b\"}\n", []string{
			`edge.yaml:12:36: firewall.rules[0].log: invalid value "xxxxx`,
			`firewall.rules[1].log: invalid value "a\"b": log prefix "a\"b" has the character '"'`}},
		{"rule limit", zones + "  rules:\n    - {name: c, action: accept, limit: {burst: 5}}\n", []string{
			`edge.yaml:12:40: firewall.rules[0].limit.rate: missing; write a rate such as 10/second`}},
		{"nat", zones + `  nat:
    masquerade: [wan, dmz, wan]
    snat:
      - {zone: wan}
      - {zone: wan, to: 192.0.2.2, source: ["fd00:1::/64"]}
    one_to_one:
      - {external: 192.0.2.10, internal: "fd00:1::10"}
      - {external: 192.0.2.11, internal: 192.168.1.11}
      - {external: 192.0.2.11, internal: 192.168.1.12, zone: lan}
`, []string{
			`edge.yaml:12:23: firewall.nat.masquerade[1]: unknown zone "dmz"`,
			`firewall.nat.masquerade[2]: zone "wan" is listed twice`,
			`edge.yaml:14:9: firewall.nat.snat[0].to: missing; give a host address`,
			`firewall.nat.snat[1].source: no IPv4 source; SNAT to 192.0.2.2 rewrites that family only`,
			`firewall.nat.one_to_one[0].internal: fd00:1::10 and external 192.0.2.10 are of different families`,
			`edge.yaml:19:20: firewall.nat.one_to_one[2].external: 192.0.2.11 is also mapped by firewall.nat.one_to_one[1]`}},
		{"port forward fields", zones + `  port_forwards:
    - {port: 80, to: 192.168.1.10}
    - {name: b, proto: sctp, to: 192.168.1.10}
    - {name: c, port: 80, to: 0.0.0.0}
    - {name: d, port: 80, to: 192.168.1.10, from_zone: dmz, hairpin: false}
`, []string{
			`edge.yaml:12:7: firewall.port_forwards[0].name: missing; every port forward needs a name`,
			`firewall.port_forwards[1].proto: unknown protocol "sctp"; use tcp, udp or both`,
			`firewall.port_forwards[1].port: missing; give the router's port or range`,
			`firewall.port_forwards[2].to: 0.0.0.0 is not a host address`,
			`firewall.port_forwards[3].from_zone: unknown zone "dmz"`}},
		{"port values", zones + `  port_forwards:
    - {name: a, port: 0, to: 192.168.1.10}
    - {name: b, port: 70000, to: 192.168.1.10}
    - {name: c, port: "8010-8000", to: 192.168.1.10}
    - {name: d, port: http, to: 192.168.1.10}
`, []string{
			`edge.yaml:12:23: firewall.port_forwards[0].port: invalid value "0": invalid port "0"; write a port from 1 to 65535 such as 8080, or a range such as 8000-8010`,
			`firewall.port_forwards[1].port: invalid value "70000": invalid port "70000"`,
			`firewall.port_forwards[2].port: invalid value "8010-8000": port range "8010-8000" ends before it starts`,
			`firewall.port_forwards[3].port: invalid value "http": invalid port "http"`}},
		{"port mappings", zones + `  port_forwards:
    - {name: a, port: "8000-8010", to: 192.168.1.10, to_port: "9000-9005"}
    - {name: b, port: 80, to: 192.168.1.11, to_port: "80-81"}
    - {name: c, port: "1000-1100", to: 192.168.1.12, to_port: "2000-2100"}
    - {name: d, port: "8005", to: 192.168.1.13}
    - {name: e, proto: udp, port: "8005", to: 192.168.1.13}
`, []string{
			`edge.yaml:12:63: firewall.port_forwards[0].to_port: range 9000-9005 has 6 ports but port 8000-8010 has 11; give a range of the same length`,
			`firewall.port_forwards[1].to_port: one port (80) cannot go to the range 80-81; give one port`,
			`firewall.port_forwards[2].to_port: a range moved to other ports is limited to 64 ports`,
			`edge.yaml:15:23: firewall.port_forwards[3].port: port 8005 is also forwarded from zone wan by firewall.port_forwards[0] (a)`}},
		{"port forward reach", zones + `  port_forwards:
    - {name: a, port: 80, to: 172.16.0.5}
    - {name: b, port: 81, to: 192.168.1.10, allow_from: ["2001:db8::/32"]}
    - {name: c, port: 82, to: 192.168.1.10, allow_from: ["::ffff:10.0.0.0/104", 10.1.0.0/16]}
`, []string{
			`edge.yaml:12:7: firewall.port_forwards[0].hairpin: hairpin needs the network 172.16.0.5 is on: add it to site.networks (or the inside zone's networks), or set hairpin: false`,
			`firewall.port_forwards[1].allow_from: no IPv4 network; the forward goes to 192.168.1.10`,
			`firewall.port_forwards[2].allow_from[0]: ::ffff:10.0.0.0/104 is an IPv4-mapped IPv6 address`}},
		{"bans", zones + "  bans:\n    zones: [dmz, wan, wan]\n    default_timeout: 0s\n    static: [192.0.2.1, 192.0.2.1, 0.0.0.0]\n", []string{
			`edge.yaml:12:13: firewall.bans.zones[0]: unknown zone "dmz"`,
			`firewall.bans.zones[2]: zone "wan" is listed twice`,
			`edge.yaml:13:22: firewall.bans.default_timeout: must be positive`,
			`firewall.bans.static[1]: 192.0.2.1 is listed twice`,
			`firewall.bans.static[2]: 0.0.0.0 is not a host address`}},
		{"ban timeouts", zones + "  bans: {default_timeout: 2d, max_timeout: 1d, zones: []}\n", []string{
			`firewall.bans.zones: no zones; name the zones bans applies to`,
			`firewall.bans.max_timeout: 24h0m0s is shorter than default_timeout 48h0m0s`}},
		{"rates", zones + `  limits:
    per_source:
      - {service: ssh, rate: 10/min}
      - {service: ssh, rate: ten/minute}
      - {service: ssh, rate: 0/second}
      - {service: ssh, rate: "10"}
      - {service: ssh, rate: 10/minutes}
`, []string{
			`edge.yaml:13:30: firewall.limits.per_source[0].rate: invalid value "10/min": rate "10/min": unknown unit "min"; use second, minute, hour or day`,
			`firewall.limits.per_source[1].rate: invalid value "ten/minute": rate "ten/minute": count "ten" is not a whole number`,
			`firewall.limits.per_source[2].rate: invalid value "0/second": rate "0/second": count must be between 1 and 4294967296`,
			`firewall.limits.per_source[3].rate: invalid value "10": rate "10" has no unit`,
			`firewall.limits.per_source[4].rate: invalid value "10/minutes": rate "10/minutes": unknown unit "minutes"`}},
		{"limits", zones + `  limits:
    per_source:
      - {rate: 1/second}
      - {service: ssh}
      - {service: ssh, rate: 1/second, zones: [dmz]}
      - {service: 8080/tcp, rate: 1/second}
      - {service: telnet, rate: 1/second}
    syn_flood: {burst: 10}
`, []string{
			`edge.yaml:13:9: firewall.limits.per_source[0].service: missing; name the service to limit`,
			`firewall.limits.per_source[1].rate: missing; write a rate such as 10/minute`,
			`firewall.limits.per_source[2].service: limit name "ssh" is also used by firewall.limits.per_source[1]; give each a name`,
			`firewall.limits.per_source[2].zones[0]: unknown zone "dmz"`,
			`firewall.limits.per_source[3].service: limit name "8080/tcp" is not a valid name`,
			`firewall.limits.per_source[4].service: unknown service "telnet"`,
			`firewall.limits.syn_flood.rate: missing; write a rate such as 200/second`}},
		{"limits of port forwards", zones + `  port_forwards:
    - {name: web, port: 8080, to: 192.168.1.10, to_port: 80}
    - {name: games, proto: both, port: "27015-27030", to: 192.168.1.11, hairpin: false}
  limits:
    per_source:
      - {name: web-in, service: 8080/tcp, rate: 10/minute}
      - {name: game, service: 27020/udp, rate: 10/minute}
      - {port_forward: wbe, rate: 10/minute}
      - {port_forward: web, service: ssh, rate: 10/minute}
      - {port_forward: games, zones: [lan], rate: 10/minute}
      - {port_forward: web, zones: [lan], rate: 10/minute}
      - {name: mixed, service: 8079-8080/tcp, rate: 10/minute}
      - {port_forward: web, rate: 10/minute}
`, []string{
			`edge.yaml:16:33: firewall.limits.per_source[0].service: 8080/tcp from zone wan is forwarded to 192.168.1.10 by firewall.port_forwards[0] (web): those connections go to the host through the forward path and never reach this limit, which applies to the router's own services; limit the forward with port_forward: web`,
			`edge.yaml:17:31: firewall.limits.per_source[1].service: 27020/udp from zone wan is forwarded to 192.168.1.11 by firewall.port_forwards[1] (games)`,
			`edge.yaml:18:24: firewall.limits.per_source[2].port_forward: unknown port forward "wbe" (did you mean "web"?); firewall.port_forwards has "web", "games"`,
			`edge.yaml:19:24: firewall.limits.per_source[3].port_forward: give service (to the router) or port_forward, not both`,
			`edge.yaml:20:38: firewall.limits.per_source[4].zones: port forward games takes connections from zone wan only (hairpin: false), so a limit on sources from lan would never apply; add wan`,
			// [5] limits hairpinned lan clients; [6] limits the router's own 8079.
			`edge.yaml:23:24: firewall.limits.per_source[7].port_forward: limit name "web" is also used by firewall.limits.per_source[5]; give each a name`}},
		{"services and rules to forwarded ports", `  zones:
    wan: {interfaces: [wan], services: [8080/tcp, 8079-8080/tcp, ssh]}
    lan: {interfaces: [lan], networks: [lan]}
  port_forwards:
    - {name: web, port: 8080, to: 192.168.1.10, to_port: 80}
    - {name: more, proto: both, port: 8081, to: 192.168.1.10}
  rules:
    - {name: a, from: wan, proto: tcp, ports: [8080, 8081], action: drop}
    - {name: b, from: wan, services: [8081/both], action: drop}
    - {name: c, from: wan, proto: tcp, ports: [8080, 22], action: drop}
    - {name: d, from: any, proto: tcp, ports: [8080], action: drop}
    - {name: e, from: lan, proto: tcp, ports: [8080], action: drop}
`, []string{
			`edge.yaml:9:41: firewall.zones.wan.services[0]: 8080/tcp from zone wan is forwarded to 192.168.1.10 by firewall.port_forwards[0] (web): those connections go to the host, never to the router, and a port forward is open without a service; remove it here`,
			`edge.yaml:15:47: firewall.rules[0].ports: 8080/tcp, 8081/tcp from zone wan are forwarded to 192.168.1.10 by firewall.port_forwards[0] (web): that traffic goes to the host and never reaches a rule to the router; match it on its way there (to: the host's zone, destination: 192.168.1.10, the host's port), or use the forward's allow_from`,
			`edge.yaml:16:38: firewall.rules[1].services: 8081/tcp, 8081/udp from zone wan are forwarded to 192.168.1.10 by firewall.port_forwards[1] (more)`}},
		{"log", zones + "  log: {rate: \"\", level: loud, to: syslog}\n", []string{
			`edge.yaml:11:15: firewall.log.rate: missing; write a rate such as 10/minute`,
			`firewall.log.to: unknown log target "syslog"; use kernel (the kernel log) or daemon (edge-firewall's own log, through NFLOG group firewall.log.group)`,
			`firewall.log.level: unknown level "loud"; use emerg, alert, crit, err, warn, notice, info, debug`}},
		{"offload", "  zones:\n    wan: {networks: [\"0.0.0.0/0\"]}\n  flow_offload: {enabled: true}\n", []string{
			`edge.yaml:10:17: firewall.flow_offload.devices: no devices to offload; list them, or give the zones interfaces`}},
		{"offload devices", zones + "  flow_offload: {enabled: true, devices: [wan, \"eth*\"]}\n", []string{
			`firewall.flow_offload.devices[1]: invalid interface name "eth*" (flowtables take no wildcards)`}},
		{"confirm", zones + "  confirm: {default_timeout: 2h}\n", []string{
			`edge.yaml:11:30: firewall.confirm.default_timeout: must be between 1s and 1h, got 2h0m0s`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.section)
			if err == nil {
				t.Fatalf("parse(%q) = nil error, want %q", tc.section, tc.want)
			}
			errs, ok := err.(config.Errors)
			if !ok {
				t.Fatalf("parse error type %T, want config.Errors", err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("parse(%q) gave %d errors, want %d:\n%v", tc.section, len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		err  bool
	}{
		{"10/minute", Rate{10, "minute"}, false},
		{"1/second", Rate{1, "second"}, false},
		{"200/hour", Rate{200, "hour"}, false},
		{"5/day", Rate{5, "day"}, false},
		{"10/min", Rate{}, true},
		{"10/Minute", Rate{}, true},
		{" 10/minute", Rate{}, true},
		{"10 /minute", Rate{}, true},
		{"-1/second", Rate{}, true},
		{"+1/second", Rate{}, true},
		{"1.5/second", Rate{}, true},
		{"0/second", Rate{}, true},
		{"99999999999999999999/second", Rate{}, true},
		{"10/", Rate{}, true},
		{"/second", Rate{}, true},
		{"10", Rate{}, true},
		{"10/second/x", Rate{}, true},
	}
	for _, tc := range tests {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in   string
		want PortRange
		err  bool
	}{
		{"80", PortRange{80, 80}, false},
		{"8000-8010", PortRange{8000, 8010}, false},
		{"65535", PortRange{65535, 65535}, false},
		{"1-65535", PortRange{1, 65535}, false},
		{"0", PortRange{}, true},
		{"65536", PortRange{}, true},
		{"80-", PortRange{}, true},
		{"-80", PortRange{}, true},
		{"90-80", PortRange{}, true},
		{"0x50", PortRange{}, true},
		{"80-90-100", PortRange{}, true},
	}
	for _, tc := range tests {
		got, err := ParsePortRange(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestService(t *testing.T) {
	c := &Config{Services: map[string]ServiceDef{"ssh": {Proto: "tcp", Ports: []PortRange{{2222, 2222}}}}}
	tests := []struct {
		in   string
		want Service
		err  string
	}{
		{in: "ssh", want: Service{Proto: "tcp", Ports: []PortRange{{2222, 2222}}}},
		{in: "dns", want: Service{Proto: "both", Ports: []PortRange{{53, 53}}}},
		{in: "8080/tcp", want: Service{Proto: "tcp", Ports: []PortRange{{8080, 8080}}}},
		{in: "6000-6010/udp", want: Service{Proto: "udp", Ports: []PortRange{{6000, 6010}}}},
		{in: "53/both", want: Service{Proto: "both", Ports: []PortRange{{53, 53}}}},
		{in: "8080", err: "has no protocol"},
		{in: "8080/", err: `unknown protocol ""`},
		{in: "/tcp", err: `invalid port ""`},
		{in: "htps", err: `(did you mean "https"?)`},
	}
	for _, tc := range tests {
		got, err := c.Service(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Service(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tc.want) {
			t.Errorf("Service(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestNormalizedRoundTrip checks that what -check prints reads back to
// the same section.
func TestNormalizedRoundTrip(t *testing.T) {
	f, err := config.Load("testdata/example.yaml", Section, DefaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Normalized()
	if err != nil {
		t.Fatalf("Normalized() error: %v", err)
	}
	g, err := config.Parse(out, "normalized.yaml", Section, DefaultConfig)
	if err != nil {
		t.Fatalf("Parse(Normalized()) error: %v\n%s", err, out)
	}
	if diff := cmp.Diff(f.Section, g.Section, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("normalized config reads back differently (-first +second):\n%s", diff)
	}
}
