package compile

import (
	"strings"
	"testing"

	"github.com/homeedge/edge/netfilter/nft"
)

// edgeConfigs are valid configs at the edges of what the section allows;
// their rulesets must be ones the applier accepts (nft.Check).
var edgeConfigs = []struct{ name, section string }{
	{"longest names", `  zones:
    wan: {interfaces: [wan]}
    ` + strings.Repeat("z", 32) + `: {networks: ["fd00:100::/64", 10.9.0.0/16], services: ["60000-60010/both"], forward_to: [wan], log_drops: true, input: reject, output: reject}
  sets:
    ` + strings.Repeat("s", 32) + `: {entries: [192.0.2.0/24]}
  rules:
    - {name: ` + strings.Repeat("r", 32) + `, from: ` + strings.Repeat("z", 32) + `, to: wan, source_set: ` + strings.Repeat("s", 32) + `, proto: both, ports: [1, "2-65535"], action: reject, log: true}
    - {name: out, from: router, to: ` + strings.Repeat("z", 32) + `, proto: icmpv6, action: accept, log: "` + strings.Repeat("p", 64) + `"}
  port_forwards:
    - {name: ` + strings.Repeat("f", 32) + `, proto: both, port: "1000-1063", to_port: "2000-2063", to: 192.168.1.10}
  limits:
    per_source: [{name: ` + strings.Repeat("l", 24) + `, service: "1-65535/both", rate: 4294967296/day, burst: 4294967295}]
`},
	{"keyword-like names", `  zones:
    input: {interfaces: [wan]}
    counter: {interfaces: ["veth*", docker0]}
    drop: {networks: [lan]}
  sets:
    accept: {entries: [lan]}
  rules:
    - {name: jump, from: counter, to: input, destination_set: accept, action: drop}
  bans: {zones: [input]}
  limits: {syn_flood: {rate: 1/second, zones: [input, drop]}}
`},
	{"ipv6 nat", `  zones:
    wan: {interfaces: [wan]}
    lan: {interfaces: [lan], networks: [lan]}
  nat:
    masquerade6: [wan]
    snat: [{zone: wan, to: "2001:db8::1", source: [lan]}]
    one_to_one: [{external: "2001:db8::10", internal: "fd00:1::10"}]
  port_forwards:
    - {name: web6, port: 8080, to: "fd00:1::20", to_port: 80, allow_from: ["2001:db8:1::/48"]}
`},
	{"every protocol", `  zones:
    wan: {interfaces: [wan]}
  rules:
    - {name: tcp, proto: tcp, action: accept}
    - {name: udp, proto: udp, ports: [53], action: accept}
    - {name: both, proto: both, action: accept}
    - {name: icmp, proto: icmp, action: accept}
    - {name: icmp-types, icmp_types: [echo-request, timestamp-request], action: drop}
    - {name: icmpv6, proto: icmpv6, icmpv6_types: [nd-redirect, router-renumbering], action: drop}
    - {name: gre, proto: gre, to: any, action: accept}
    - {name: esp, proto: esp, action: accept}
    - {name: ah, proto: ah, action: accept}
    - {name: sctp, proto: sctp, action: accept}
    - {name: services, services: [ssh, dns, dhcp, dhcpv6, mdns, ntp, http, https, dot, wireguard, nebula], action: accept, limit: {rate: 1/hour}}
`},
}

func TestEdgeConfigsPassNFTCheck(t *testing.T) {
	for _, tc := range edgeConfigs {
		t.Run(tc.name, func(t *testing.T) {
			f := parseSection(t, tc.section)
			for _, flow := range []bool{false, true} {
				rs, err := Compile(f, Options{Flowtable: flow, ReadFile: files(nil)})
				if err != nil {
					t.Fatalf("Compile error:\n%v", err)
				}
				if err := nft.Check(rs); err != nil {
					t.Errorf("nft.Check(Compile(%s)) error: %v", tc.name, err)
				}
			}
		})
	}
}
