package firewall

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

func diffRuleset(extraRule bool, block []string, bans []string) *ruleset.Ruleset {
	el := func(ss []string) []ruleset.Element {
		var out []ruleset.Element
		for _, s := range ss {
			out = append(out, ruleset.Element{Prefix: netip.MustParsePrefix(s), Timeout: 0})
		}
		return out
	}
	banEls := el(bans)
	for i := range banEls {
		banEls[i].Timeout = time.Hour
	}
	in := &ruleset.Chain{Name: "input", Hook: ruleset.Input, Policy: ruleset.Drop, Rules: []*ruleset.Rule{
		{ID: "input: block", Matches: []ruleset.Match{{Kind: ruleset.SAddr, Family: ruleset.IP, Set: "block_v4"}}, Counter: true, Verdict: ruleset.Drop},
		{ID: "input: ssh", Matches: []ruleset.Match{{Kind: ruleset.DPort, Protos: []string{"tcp"}, Ports: []ruleset.PortRange{{From: 22, To: 22}}}}, Counter: true, Verdict: ruleset.Accept},
	}}
	if extraRule {
		in.Rules = append(in.Rules, &ruleset.Rule{ID: "input: https", Matches: []ruleset.Match{{Kind: ruleset.DPort, Protos: []string{"tcp"}, Ports: []ruleset.PortRange{{From: 443, To: 443}}}}, Counter: true, Verdict: ruleset.Accept})
	}
	return &ruleset.Ruleset{Table: "edge",
		Sets: []*ruleset.Set{
			{Name: "ban_v4", Type: ruleset.IPv4Addr, Timeout: true, Elements: banEls},
			{Name: "block_v4", Type: ruleset.IPv4Addr, Interval: true, Elements: el(block)},
		},
		Chains: []*ruleset.Chain{in},
	}
}

func appliedOf(rs *ruleset.Ruleset, gen int64) *applied {
	return &applied{rs: rs, gen: gen, text: diffText(rs)}
}

func TestRuleDiff(t *testing.T) {
	a := appliedOf(diffRuleset(false, []string{"10.0.0.0/8", "192.0.2.0/24"}, []string{"198.51.100.1/32"}), 3)
	if d := ruleDiff(a, appliedOf(diffRuleset(false, []string{"192.0.2.0/24", "10.0.0.0/8"}, []string{"198.51.100.9/32"}), 4)); d != "" {
		t.Errorf("same rules, same elements in another order, other bans: diff\n%s\nwant none (bans are run-time state)", d)
	}
	b := appliedOf(diffRuleset(true, []string{"10.0.0.0/8", "203.0.113.0/24"}, nil), 4)
	want := `--- generation 3 (loaded)
+++ generation 4
@@ -13,5 +13,6 @@
 		type filter hook input priority filter; policy drop;
 		ip saddr @block_v4 counter packets 0 bytes 0 drop comment "input: block"
 		tcp dport 22 counter packets 0 bytes 0 accept comment "input: ssh"
+		tcp dport 443 counter packets 0 bytes 0 accept comment "input: https"
 	}
 }
@@ set block_v4: elements +1 -1 (2 now) @@
-		192.0.2.0/24
+		203.0.113.0/24
`
	if got := ruleDiff(a, b); got != want {
		t.Errorf("ruleDiff =\n%s\nwant\n%s", got, want)
	}
	// Only elements changed: the headers come once, before the sets.
	c := appliedOf(diffRuleset(false, []string{"10.0.0.0/8"}, nil), 5)
	if got := ruleDiff(a, c); !strings.HasPrefix(got, "--- generation 3 (loaded)\n+++ generation 5\n@@ set block_v4: elements +0 -1 (1 now) @@\n-\t\t192.0.2.0/24\n") {
		t.Errorf("elements-only diff:\n%s", got)
	}
	// A big change lists the first elements and counts the rest.
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("10.%d.0.0/16", i))
	}
	big := ruleDiff(appliedOf(diffRuleset(false, nil, nil), 1), appliedOf(diffRuleset(false, many, nil), 2))
	if !strings.Contains(big, "@@ set block_v4: elements +100 -0 (100 now) @@") || !strings.Contains(big, "+\t\t# and 80 more\n") ||
		strings.Count(big, "\n+\t\t10.") != diffMaxElems {
		t.Errorf("diff of 100 added elements:\n%s", big)
	}
}

func TestLiveView(t *testing.T) {
	rs := diffRuleset(false, []string{"10.0.0.0/8"}, []string{"198.51.100.1/32"})
	live := map[string][]nft.SetElement{"ban_v4": {
		{Element: ruleset.Element{Prefix: netip.MustParsePrefix("203.0.113.9/32"), Timeout: time.Hour, Comment: "edgectl uid 0"}, Expires: 42*time.Minute + 400*time.Millisecond},
		{Element: ruleset.Element{Prefix: netip.MustParsePrefix("203.0.113.10/32"), Timeout: time.Hour}, Expires: 100 * time.Millisecond},
		{Element: ruleset.Element{Prefix: netip.MustParsePrefix("203.0.113.11/32")}},
	}}
	text := nft.Render(liveView(rs, live))
	want := `elements = { 203.0.113.9 timeout 42m comment "edgectl uid 0", 203.0.113.10 timeout 1s,
			     203.0.113.11 }`
	if !strings.Contains(text, want) {
		t.Errorf("live view:\n%s\nwant the ban set's live elements with the time left:\n%s", text, want)
	}
	if rs.Sets[0].Elements[0].Prefix.String() != "198.51.100.1/32" {
		t.Errorf("liveView changed the ruleset it was given")
	}
	if !strings.Contains(text, "10.0.0.0/8") {
		t.Errorf("live view lost the other set's elements")
	}
}

func TestZoneOfChain(t *testing.T) {
	for name, want := range map[string]zoneKey{
		"input_lan":      {"lan", "input"},
		"forward_my_dmz": {"my_dmz", "forward"},
		"output_wan":     {"wan", "output"},
	} {
		if got, ok := zoneOfChain(name); !ok || got != want {
			t.Errorf("zoneOfChain(%q) = %v, %v; want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{"input", "forward", "srcnat", "input_"} {
		if _, ok := zoneOfChain(name); ok {
			t.Errorf("zoneOfChain(%q) claims a zone", name)
		}
	}
}
