package nft

import (
	"github.com/homeedge/edge/internal/golden"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// TestRenderGolden pins the text of the representative ruleset (every
// match kind, statement, set and chain kind, plus a flowtable). The
// oracle test checks the same text against nft itself.
func TestRenderGolden(t *testing.T) {
	r := withOffload(representative())
	if err := Check(r); err != nil {
		t.Fatalf("Check(representative) = %v", err)
	}
	golden.Check(t, "representative.golden", Render(r))

	script, err := RenderScript(representative())
	if err != nil {
		t.Fatalf("RenderScript: %v", err)
	}
	golden.Check(t, "representative.nft.golden", script)

	golden.Check(t, "empty.golden", Render(&ruleset.Ruleset{Table: "edge"}))
}

func TestRenderWithCounters(t *testing.T) {
	r := &ruleset.Ruleset{Table: "edge", Chains: []*ruleset.Chain{{Name: "input", Hook: ruleset.Input, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
		{ID: "a", Counter: true, Verdict: ruleset.Accept},
		{ID: "b", Counter: true},
	}}}}
	got := RenderWithCounters(r, map[string]Counter{"a": {Packets: 7, Bytes: 420}, "x": {Packets: 1}})
	want := "table inet edge {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n" +
		"\t\tcounter packets 7 bytes 420 accept comment \"a\"\n" +
		"\t\tcounter packets 0 bytes 0 comment \"b\"\n\t}\n}\n"
	if got != want {
		t.Errorf("RenderWithCounters = %q, want %q", got, want)
	}
}

// TestRenderReject: a reject answers with ICMP of the rule's family, or
// ICMPX, or with a TCP reset in a rule limited to tcp, printed as nft
// lists each (the oracle test holds the representative ruleset's rejects
// to nft itself).
func TestRenderReject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		matches []ruleset.Match
		with    ruleset.RejectKind
		counter bool
		want    string
	}{
		{"icmpx", nil, "", false, "reject"},
		{"icmp", []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, false, "192.0.2.0/24")}, "", false, "ip saddr 192.0.2.0/24 reject with icmp port-unreachable"},
		{"tcp reset", []ruleset.Match{protos(false, "tcp")}, ruleset.RejectTCPReset, true, "meta l4proto tcp counter packets 0 bytes 0 reject with tcp reset"},
		{"tcp reset of a port", []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(23))}, ruleset.RejectTCPReset, false, "tcp dport 23 reject with tcp reset"},
		{"tcp reset of a family", []ruleset.Match{addr(ruleset.DAddr, ruleset.IP6, false, "2001:db8::/32"), protos(false, "tcp")}, ruleset.RejectTCPReset, false,
			"ip6 daddr 2001:db8::/32 meta l4proto tcp reject with tcp reset"},
		{"tcp reset after nfproto and a statement", []ruleset.Match{values(ruleset.NFProto, false, "ipv4"), protos(false, "tcp")}, ruleset.RejectTCPReset, true,
			"meta nfproto ipv4 meta l4proto tcp counter packets 0 bytes 0 reject with tcp reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule := &ruleset.Rule{ID: "r", Matches: tc.matches, Counter: tc.counter, Verdict: ruleset.Reject, RejectWith: tc.with}
			r := &ruleset.Ruleset{Table: "edge", Chains: []*ruleset.Chain{{Name: "input", Hook: ruleset.Input, Policy: ruleset.Accept, Rules: []*ruleset.Rule{rule}}}}
			if err := Check(r); err != nil {
				t.Fatalf("Check = %v", err)
			}
			want := "table inet edge {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\t" + tc.want + " comment \"r\"\n\t}\n}\n"
			if got := Render(r); got != want {
				t.Errorf("Render =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestPrioString(t *testing.T) {
	for _, tc := range []struct {
		prio   int
		hook   ruleset.Hook
		netdev bool
		want   string
	}{
		{0, ruleset.Input, false, "filter"},
		{10, ruleset.Output, false, "filter + 10"},
		{-5, ruleset.Output, false, "filter - 5"},
		{11, ruleset.Output, false, "11"},
		{-100, ruleset.Prerouting, false, "dstnat"},
		{-95, ruleset.Prerouting, false, "dstnat + 5"},
		{-100, ruleset.Output, false, "-100"},
		{100, ruleset.Postrouting, false, "srcnat"},
		{100, ruleset.Input, false, "100"},
		{95, ruleset.Input, false, "95"},
		{-150, ruleset.Forward, false, "mangle"},
		{-160, ruleset.Output, false, "mangle - 10"},
		{-300, ruleset.Forward, false, "raw"},
		{50, ruleset.Postrouting, false, "security"},
		{0, "", true, "filter"},
		{-300, "", true, "-300"},
	} {
		if got := prioString(tc.prio, tc.hook, tc.netdev); got != tc.want {
			t.Errorf("prioString(%d, %q, %v) = %q, want %q", tc.prio, tc.hook, tc.netdev, got, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{36*time.Hour + 1500*time.Millisecond, "1d12h1s500ms"},
		{59*time.Second + 999*time.Millisecond + 999*time.Microsecond, "59s999ms"},
		{0, "0s"},
	} {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestCanonElements(t *testing.T) {
	set := &ruleset.Set{Name: "s", Type: ruleset.IPv4Addr, Interval: true, Timeout: true, Elements: []ruleset.Element{
		{Prefix: pfx("10.0.0.5/8"), Comment: "masked"},
		{Prefix: pfx("10.1.0.0/16")},
		{Prefix: pfx("192.0.2.1"), Timeout: time.Minute, Comment: "first"},
		{Prefix: pfx("192.0.2.1"), Comment: "second"},
		{Prefix: pfx("192.0.2.0/31")},
	}}
	got, err := canonElements(set)
	if err != nil {
		t.Fatal(err)
	}
	want := []ruleset.Element{
		{Prefix: pfx("10.0.0.0/8"), Comment: "masked"},
		{Prefix: pfx("192.0.2.0/31")},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("canonElements (-want +got):\n%s", diff)
	}

	set = &ruleset.Set{Name: "h", Type: ruleset.IPv4Addr, Timeout: true, Elements: []ruleset.Element{
		{Prefix: pfx("192.0.2.1"), Timeout: time.Minute, Comment: "first"},
		{Prefix: pfx("192.0.2.1"), Comment: "second"},
	}}
	got, _ = canonElements(set)
	if len(got) != 1 || got[0].Comment != "first" {
		t.Errorf("canonElements(duplicates) = %v, want the first one only", got)
	}

	ports := &ruleset.Set{Name: "p", Type: ruleset.InetService, Interval: true, Elements: []ruleset.Element{
		{Port: 100, PortEnd: 200}, {Port: 150, PortEnd: 250},
	}}
	if _, err := canonElements(ports); err == nil || !strings.Contains(err.Error(), "100-200 and 150-250 overlap") {
		t.Errorf("canonElements(overlapping ranges) = %v, want an error naming both", err)
	}
}

// TestCheck: every refusal names where the problem is.
func TestCheck(t *testing.T) {
	ok := func() *ruleset.Ruleset {
		return &ruleset.Ruleset{Table: "edge",
			Sets: []*ruleset.Set{
				{Name: "v6", Type: ruleset.IPv6Addr},
				{Name: "m4", Type: ruleset.IPv4Addr, Dynamic: true},
			},
			Chains: []*ruleset.Chain{{Name: "input", Hook: ruleset.Input, Policy: ruleset.Drop, Rules: []*ruleset.Rule{{ID: "r1", Verdict: ruleset.Accept}}}},
		}
	}
	if err := Check(ok()); err != nil {
		t.Fatalf("Check(valid) = %v", err)
	}
	rule := func(r *ruleset.Ruleset) *ruleset.Rule { return r.Chains[0].Rules[0] }
	for _, tc := range []struct {
		name string
		edit func(*ruleset.Ruleset)
		want string
	}{
		{"validate", func(r *ruleset.Ruleset) { rule(r).Verdict, rule(r).Target = ruleset.Jump, "nowhere" }, `rule "r1": jump to undefined chain "nowhere"`},
		{"keyword chain", func(r *ruleset.Ruleset) { r.Chains[0].Name = "counter" }, `chain name "counter" is an nft keyword`},
		{"keyword set", func(r *ruleset.Ruleset) { r.Sets[0].Name = "ip" }, `set name "ip" is an nft keyword`},
		{"bad table", func(r *ruleset.Ruleset) { r.Table = "9edge" }, `table name "9edge"`},
		{"table family", func(r *ruleset.Ruleset) { r.Family = ruleset.IP6 }, "table ip6 edge: family ip6; this library builds inet tables only"},
		{"address match family", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{addr(ruleset.SAddr, ruleset.INet, false, "192.0.2.1")}
		}, `chain input: rule "r1": match 1 (saddr): family "inet"; use ip or ip6`},
		{"nat port without a transport", func(r *ruleset.Ruleset) {
			rule(r).NAT = &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
		}, `chain input: rule "r1": dnat to a port needs a match on the transport protocol`},
		{"quote in id", func(r *ruleset.Ruleset) { rule(r).ID = `say "hi"` }, `rule "say \"hi\"": id`},
		{"long id", func(r *ruleset.Ruleset) { rule(r).ID = strings.Repeat("x", 129) }, "longer than 128 bytes"},
		{"ifname", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{names(ruleset.IIFName, false, "a-very-long-ifname")}
		}, `rule "r1": match 1 (iifname): interface name "a-very-long-ifname": 1 to 15 bytes`},
		{"wildcard with others", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{names(ruleset.IIFName, false, "eth0", "veth*")}
		}, `wildcard interface name "veth*" must be matched on its own, not with 1 other names`},
		{"star inside", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{names(ruleset.OIFName, false, "*")}
		}, `interface name "*": a * may only end a name`},
		{"conflicting transport", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{protos(false, "udp"), ports(ruleset.DPort, "tcp", false, port(22))}
		}, `rule "r1": match 2 (dport): tcp port after a match that limits the rule to udp`},
		{"conflicting family", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{addr(ruleset.SAddr, ruleset.IP, false, "192.0.2.1"), values(ruleset.ICMPv6Type, false, "echo-request")}
		}, `match 2 (icmpv6type): ipv6 after a match that limits the rule to ipv4`},
		{"set type", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP, false, "v6")}
		}, `set v6 has type ipv6_addr, ip saddr needs ipv4_addr`},
		{"address family", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{addr(ruleset.DAddr, ruleset.IP, false, "2001:db8::1")}
		}, `2001:db8::1/128 is not an ipv4 prefix`},
		{"icmp type", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{values(ruleset.ICMPType, false, "echo")}
		}, `match 1 (icmptype): type "echo" is not one nft knows`},
		{"ct state", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{values(ruleset.CtState, false, "open")}
		}, `value "open"; use invalid, established, related, new, untracked`},
		{"port ranges", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{ports(ruleset.DPort, "tcp", false, prange(1, 10), prange(5, 20))}
		}, "port ranges 1-10 and 5-20 overlap"},
		{"log level", func(r *ruleset.Ruleset) { rule(r).Log = &ruleset.Log{Level: "loud"} }, `log level "loud"`},
		{"log prefix", func(r *ruleset.Ruleset) { rule(r).Log = &ruleset.Log{Prefix: "a\nb"} }, "control characters"},
		{"limit unit", func(r *ruleset.Ruleset) { rule(r).Limit = &ruleset.Limit{Rate: 1, Unit: "fortnight"} }, `limit unit "fortnight"`},
		{"meter set", func(r *ruleset.Ruleset) {
			rule(r).Meter = &ruleset.Meter{Set: "m4", Family: ruleset.IP6, Limit: ruleset.Limit{Rate: 1, Unit: "second"}}
		}, "meter: set m4 has type ipv4_addr, the ip6 saddr key needs ipv6_addr"},
		{"nat family", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{addr(ruleset.SAddr, ruleset.IP6, false, "2001:db8::/32")}
			rule(r).NAT = &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.0.2.1")}
		}, "dnat ip in a rule limited to ipv6"},
		{"nat address", func(r *ruleset.Ruleset) {
			rule(r).NAT = &ruleset.NAT{Kind: ruleset.SNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("2001:db8::1")}
		}, "snat ip to 2001:db8::1: not an ipv4 address"},
		{"raw ports", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{ports(ruleset.DPort, "", false, port(53)), ports(ruleset.SPort, "", false, port(53))}
		}, "nft would merge them into a raw @th match"},
		{"nat port after a negated protocol", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{protos(true, "tcp")}
			rule(r).NAT = &ruleset.NAT{Kind: ruleset.Redirect, Port: 53}
		}, "redirect to a port needs a match on the transport protocol"},
		{"masquerade address", func(r *ruleset.Ruleset) {
			rule(r).NAT = &ruleset.NAT{Kind: ruleset.Masquerade, Addr: netip.MustParseAddr("192.0.2.1")}
		}, "masquerade takes no address"},
		{"tcp reset without tcp", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{protos(false, "tcp", "udp")}
			rule(r).Verdict, rule(r).RejectWith = ruleset.Reject, ruleset.RejectTCPReset
		}, `rule "r1": reject with tcp reset needs a match on tcp first`},
		{"tcp reset after a negated protocol", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{protos(true, "udp")}
			rule(r).Verdict, rule(r).RejectWith = ruleset.Reject, ruleset.RejectTCPReset
		}, `reject with tcp reset needs a match on tcp first`},
		{"tcp reset after a lone nfproto", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{values(ruleset.NFProto, false, "ipv4"), ports(ruleset.DPort, "tcp", false, port(22))}
			rule(r).Verdict, rule(r).RejectWith = ruleset.Reject, ruleset.RejectTCPReset
		}, `reject with tcp reset right after a lone meta nfproto`},
		{"ct original without a transport", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{{Kind: ruleset.CtOriginalDPort, Ports: []ruleset.PortRange{port(8080)}}}
		}, `match 1 (ctoriginaldport): ct original proto-dst needs a match on tcp or udp first`},
		{"ct original of several ports", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{protos(false, "tcp"), {Kind: ruleset.CtOriginalDPort, Ports: []ruleset.PortRange{port(80), port(8080)}}}
		}, `match 2 (ctoriginaldport): 2 port ranges; ct original proto-dst takes one port or range`},
		{"ct original after a protocol set", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{protos(false, "tcp", "udp"), {Kind: ruleset.CtOriginalDPort, Ports: []ruleset.PortRange{port(80)}}}
		}, `ct original proto-dst after a match on several protocols`},
		{"port that would fold the l4proto ct original needs", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{protos(false, "tcp"), {Kind: ruleset.CtOriginalDPort, Ports: []ruleset.PortRange{port(8080)}}, ports(ruleset.DPort, "tcp", false, port(80))}
		}, `match 3 (dport): tcp port after a ct original proto-dst that relies on the meta l4proto before it`},
		{"reset without reject", func(r *ruleset.Ruleset) {
			rule(r).Matches = []ruleset.Match{protos(false, "tcp")}
			rule(r).RejectWith = ruleset.RejectTCPReset
		}, `reject with tcp reset on a rule whose verdict is "accept"`},
		{"reject kind", func(r *ruleset.Ruleset) {
			rule(r).Verdict, rule(r).RejectWith = ruleset.Reject, "host-unreachable"
		}, `reject with "host-unreachable"; use tcp reset`},
		{"empty rule", func(r *ruleset.Ruleset) { rule(r).Verdict = "" }, `rule "r1": rule has neither matches nor statements`},
		{"dynamic interval", func(r *ruleset.Ruleset) { r.Sets[1].Interval = true }, "set m4: a dynamic set cannot have intervals"},
		{"element comment", func(r *ruleset.Ruleset) {
			r.Sets[0].Elements = []ruleset.Element{{Prefix: pfx("2001:db8::1"), Comment: `"`}}
		}, "set v6: element comment"},
		{"flowtable devices", func(r *ruleset.Ruleset) { r.Flowtable = &ruleset.Flowtable{Name: "ft"} }, "flowtable ft: no devices"},
		{"hook", func(r *ruleset.Ruleset) { r.Chains[0].Hook = "ingress" }, `chain input: hook "ingress"`},
		{"nat in a filter chain", func(r *ruleset.Ruleset) {
			rule(r).NAT = &ruleset.NAT{Kind: ruleset.Masquerade}
		}, `chain input: rule "r1": masquerade runs from base chain input (type filter, hook input; input): masquerade needs a chain of type nat at hook postrouting`},
		{"jump loop", func(r *ruleset.Ruleset) {
			r.Chains = append(r.Chains, &ruleset.Chain{Name: "a", Rules: []*ruleset.Rule{{ID: "a to b", Verdict: ruleset.Goto, Target: "b"}}},
				&ruleset.Chain{Name: "b", Rules: []*ruleset.Rule{{ID: "b to a", Verdict: ruleset.Jump, Target: "a"}}})
			rule(r).Verdict, rule(r).Target = ruleset.Jump, "a"
		}, `chain b: rule "b to a": jump a: a loop through chain a, reached from base chain input (input -> a -> b -> a)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.edit(r)
			err := Check(r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestStripOffload(t *testing.T) {
	r := withOffload(representative())
	s := StripOffload(r)
	if s.Flowtable != nil {
		t.Error("StripOffload kept the flowtable")
	}
	if err := Check(s); err != nil {
		t.Errorf("Check(StripOffload(r)) = %v", err)
	}
	if strings.Contains(Render(s), "flow") {
		t.Errorf("StripOffload left offload in:\n%s", Render(s))
	}
	if r.Flowtable == nil || !r.Chains[3].Rules[0].Offload {
		t.Error("StripOffload modified its argument")
	}
}

func TestCarriedElements(t *testing.T) {
	set := &ruleset.Set{Name: "ban", Type: ruleset.IPv4Addr, Timeout: true, Elements: []ruleset.Element{
		{Prefix: pfx("192.0.2.1"), Timeout: time.Hour},
	}}
	declared, _ := canonElements(set)
	live := []SetElement{
		{Element: ruleset.Element{Prefix: pfx("192.0.2.1"), Timeout: time.Hour}, Expires: time.Minute}, // declared: the ruleset wins
		{Element: ruleset.Element{Prefix: pfx("192.0.2.2"), Timeout: time.Hour, Comment: "api"}, Expires: 20 * time.Minute},
		{Element: ruleset.Element{Prefix: pfx("192.0.2.3")}},                                           // permanent
		{Element: ruleset.Element{Prefix: pfx("192.0.2.4"), Timeout: time.Hour}, Expires: 0},           // expired
		{Element: ruleset.Element{Prefix: pfx("2001:db8::1"), Timeout: time.Hour}, Expires: time.Hour}, // wrong family
	}
	got := carriedElements(set, declared, live)
	want := []ruleset.Element{
		{Prefix: pfx("192.0.2.2"), Timeout: 20 * time.Minute, Comment: "api"},
		{Prefix: pfx("192.0.2.3")},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("carriedElements (-want +got):\n%s", diff)
	}
	set.Dynamic = true
	if got := carriedElements(set, declared, live); got != nil {
		t.Errorf("carriedElements(dynamic set) = %v, want none (meters are not carried)", got)
	}
}
