package vpn

import (
	"github.com/homeedge/edge/internal/golden"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/netfilter/nft"
)

// entries parses access entries (prefixes and addresses, with services).
func entries(ss ...string) []accessEntry {
	var out []accessEntry
	for _, s := range ss {
		es, err := parseAccess(s, &config.Site{})
		if err != nil {
			panic(err)
		}
		out = append(out, es...)
	}
	return out
}

// aclCases are access rules of a few shapes: one peer with both
// families, peers on two interfaces with one family each, overlapping
// and adjacent allowed networks (nft merges them), and services: ports,
// ranges, a whole protocol, ICMP of each family, the same service on
// several destinations (one rule) beside whole networks.
var aclCases = []struct {
	name  string
	rules []aclRule
}{
	{"one-peer", []aclRule{
		{peer: "laptop", iface: "wg0", addrs: addrs("10.100.0.2", "fd00:100::2"), allow: entries("192.168.1.10/32", "192.168.1.0/24", "fd00:1::/64", "10.200.0.0/16")},
	}},
	{"two-interfaces", []aclRule{
		{peer: "phone", iface: "wg0", addrs: addrs("10.100.0.3"), allow: entries("192.168.1.53/32", "192.168.2.0/24", "192.168.3.0/24")},
		{peer: "nas-backup", iface: "wg1", addrs: addrs("fd00:101::9"), allow: entries("fd00:1::10/128")},
		{peer: "tablet", iface: "wg0", addrs: addrs("10.100.0.4", "10.100.0.5"), allow: entries("0.0.0.0/0")},
	}},
	{"services", []aclRule{
		{peer: "guest", iface: "wg0", addrs: addrs("10.100.0.6", "fd00:100::6"), allow: entries("192.168.1.10 tcp/80")},
		{peer: "kid", iface: "wg0", addrs: addrs("10.100.0.7", "fd00:100::7"), allow: entries(
			"192.168.1.0/24 icmp", "fd00:1::/64 icmp",
			"192.168.1.10 tcp/443,80 tcp/8000-8099", "192.168.1.11 tcp/80,443,8000-8099",
			"192.168.1.53 udp/53 tcp/53", "fd00:1::53 udp/53",
			"192.168.1.20 udp", "10.200.0.0/16")},
	}},
}

// TestACLGolden pins table inet edge_vpn's text for a few rule sets (the
// kernel test checks the same text against nft list).
func TestACLGolden(t *testing.T) {
	for _, tc := range aclCases {
		t.Run(tc.name, func(t *testing.T) {
			rs := aclRuleset(tc.rules)
			if err := nft.Check(rs); err != nil {
				t.Fatalf("Check(aclRuleset) = %v", err)
			}
			golden.Check(t, "acl-"+tc.name+".golden", nft.Render(rs))
		})
	}
}

// TestACLPlan: an unchanged rule set needs no change, no rules remove
// the table, and a rule nft would refuse fails in plan, naming the peer.
func TestACLPlan(t *testing.T) {
	tbl := newACLTable(nil)
	rules := aclCases[0].rules
	p, err := tbl.plan(rules)
	if err != nil || p == nil || p.rs == nil || p.peers != 1 {
		t.Fatalf("plan(one peer) = %+v, %v; want a table for one peer", p, err)
	}
	tbl.last = p.fp
	if p, err := tbl.plan(rules); p != nil || err != nil {
		t.Errorf("plan(the same rules) = %+v, %v; want nothing to do", p, err)
	}
	if p, err := tbl.plan(nil); err != nil || p == nil || p.rs != nil {
		t.Errorf("plan(no rules) = %+v, %v; want the table removed", p, err)
	}
	bad := []aclRule{{peer: "x", iface: "a-very-long-interface", addrs: addrs("10.100.0.9"), allow: entries("10.0.0.0/8")}}
	if _, err := tbl.plan(bad); err == nil || !strings.Contains(err.Error(), `rule "peer x (ip)"`) {
		t.Errorf("plan(interface name too long) = %v, want an error naming the peer's rule", err)
	}
}

// TestACLDocChain: the peer chain docs/vpn.md shows is what the nas-web
// group of its example renders to.
func TestACLDocChain(t *testing.T) {
	doc, err := os.ReadFile("../docs/vpn.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(doc), "chain peer_tablet {\n")
	if start < 0 {
		t.Fatal("docs/vpn.md shows no chain peer_tablet")
	}
	shown := string(doc[start:])
	shown = shown[:strings.Index(shown, "\n}\n")+3]
	rs := aclRuleset([]aclRule{{peer: "tablet", iface: "wg0", addrs: addrs("10.100.0.2"), allow: entries("192.168.1.10 tcp/80,443", "192.168.1.10 icmp")}})
	rendered := nft.Render(rs)
	var got []string
	in := false
	for _, line := range strings.Split(rendered, "\n") {
		if strings.HasPrefix(line, "\tchain peer_tablet") {
			in = true
		}
		if in {
			got = append(got, strings.TrimPrefix(line, "\t"))
			if line == "\t}" {
				break
			}
		}
	}
	if diff := cmp.Diff(shown, strings.Join(got, "\n")+"\n"); diff != "" {
		t.Errorf("docs/vpn.md's chain differs from the rendered one (-docs +rendered):\n%s", diff)
	}
}
