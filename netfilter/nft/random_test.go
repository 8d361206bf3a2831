package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// FuzzCheckRender: Check and Render never panic, whatever the match
// values; a rule Check accepts renders with its ID, and Check's errors
// name the rule.
func FuzzCheckRender(f *testing.F) {
	f.Add(uint64(1), "iifname", "eth0", "edge rule", false)
	f.Add(uint64(2), "icmptype", "echo-request", "r", true)
	f.Add(uint64(3), "dport", "tcp", "x\"y", false)
	f.Fuzz(func(t *testing.T, seed uint64, kind, value, id string, neg bool) {
		r, _ := randomRuleset(rand.New(rand.NewPCG(seed, 42)), 20)
		m := ruleset.Match{Kind: ruleset.MatchKind(kind), Negate: neg, Names: []string{value}, Values: []string{value},
			Protos: []string{value}, Family: ruleset.Family(value), Set: value}
		if p, err := netip.ParsePrefix(value); err == nil {
			m.Prefixes = []netip.Prefix{p}
		}
		rule := &ruleset.Rule{ID: id, Matches: []ruleset.Match{m}, Verdict: ruleset.Accept}
		r.Chains[0].Rules = append(r.Chains[0].Rules, rule)
		err := Check(r)
		out := Render(r)
		if err == nil {
			for _, c := range r.Chains {
				for _, rr := range c.Rules {
					if !strings.Contains(out, `comment "`+rr.ID+`"`) {
						t.Fatalf("Check passed but Render lacks rule %q:\n%s", rr.ID, out)
					}
				}
			}
		}
	})
}

// randomRuleset returns a ruleset of about n random rules that pass
// Check, and how many generated rules Check refused.
func randomRuleset(rng *rand.Rand, n int) (*ruleset.Ruleset, int) {
	r := &ruleset.Ruleset{Table: "edge",
		Sets: []*ruleset.Set{
			{Name: "a4", Type: ruleset.IPv4Addr, Interval: true, Elements: elems("10.0.0.0/8")},
			{Name: "a6", Type: ruleset.IPv6Addr, Timeout: true, Elements: elems("2001:db8::1")},
			{Name: "p", Type: ruleset.InetService, Elements: []ruleset.Element{{Port: 22}}},
			{Name: "m4", Type: ruleset.IPv4Addr, Dynamic: true, Size: 100},
			{Name: "m6", Type: ruleset.IPv6Addr, Dynamic: true, Timeout: true, Size: 100},
		},
		Chains: []*ruleset.Chain{
			{Name: "in", Hook: ruleset.Input, Policy: ruleset.Accept},
			{Name: "sub"},
			{Name: "pre", Hook: ruleset.Prerouting, Type: ruleset.NATType, Priority: -100, Policy: ruleset.Accept},
			{Name: "post", Hook: ruleset.Postrouting, Type: ruleset.NATType, Priority: 100, Policy: ruleset.Accept},
		},
	}
	refused := 0
	pick := func(vals []string) []string {
		k := 1 + rng.IntN(min(3, len(vals)))
		out := make([]string, 0, k)
		for _, i := range rng.Perm(len(vals))[:k] {
			out = append(out, vals[i])
		}
		return out
	}
	v4 := []string{"192.0.2.1", "192.0.2.0/24", "192.0.3.0/24", "192.0.2.2", "198.51.100.0/22", "203.0.113.128/25", "10.16.0.0/12", "100.64.0.0/10", "0.0.0.0/0"}
	v6 := []string{"2001:db8::1", "2001:db8::/32", "2001:db8:1::/48", "fd00::/8", "2001:db8::/33", "2001:db8:8000::/33", "fe80::/10"}
	randMatch := func() ruleset.Match {
		neg := rng.IntN(4) == 0
		switch rng.IntN(13) {
		case 0:
			return names(ruleset.IIFName, neg, pick([]string{"eth0", "br-lan", "wg0", "lo", "veth-a"})...)
		case 1:
			return names(ruleset.OIFName, neg, pick([]string{"eth0", "br-lan", "wg0"})...)
		case 2:
			if rng.IntN(4) == 0 {
				return addrSet(ruleset.SAddr, ruleset.IP, neg, "a4")
			}
			return addr([]ruleset.MatchKind{ruleset.SAddr, ruleset.DAddr}[rng.IntN(2)], "ip", neg, pick(v4)...)
		case 3:
			if rng.IntN(4) == 0 {
				return addrSet(ruleset.DAddr, ruleset.IP6, neg, "a6")
			}
			return addr([]ruleset.MatchKind{ruleset.SAddr, ruleset.DAddr}[rng.IntN(2)], "ip6", neg, pick(v6)...)
		case 4, 5:
			proto := []string{"tcp", "udp", ""}[rng.IntN(3)]
			kind := []ruleset.MatchKind{ruleset.DPort, ruleset.SPort}[rng.IntN(2)]
			if rng.IntN(5) == 0 {
				m := ports(kind, proto, neg)
				m.Set = "p"
				return m
			}
			var rs []ruleset.PortRange
			for _, p := range pick([]string{"22", "23", "53", "80", "443", "1000-2000", "2001", "2999", "3000-3001", "65535"}) {
				a, b, _ := strings.Cut(p, "-")
				from, _ := strconv.Atoi(a)
				to := from
				if b != "" {
					to, _ = strconv.Atoi(b)
				}
				rs = append(rs, prange(uint16(from), uint16(to)))
			}
			return ports(kind, proto, neg, rs...)
		case 6:
			return protos(neg, pick([]string{"tcp", "udp", "icmp", "ipv6-icmp", "sctp", "gre", "esp", "ah", "udplite"})...)
		case 7:
			return values(ruleset.CtState, neg, pick([]string{"new", "established", "related", "invalid", "untracked"})...)
		case 8:
			return values(ruleset.CtStatus, neg, pick([]string{"dnat", "snat", "assured", "confirmed", "expected", "seen-reply", "dying"})...)
		case 9:
			return ruleset.Match{Kind: ruleset.FibDAddrLocal, Negate: neg}
		case 10:
			return values(ruleset.ICMPType, neg, pick([]string{"echo-request", "echo-reply", "destination-unreachable", "time-exceeded", "redirect", "address-mask-reply"})...)
		case 11:
			return values(ruleset.ICMPv6Type, neg, pick([]string{"echo-request", "nd-neighbor-solicit", "nd-router-advert", "packet-too-big", "mld-listener-reduction", "mld2-listener-report", "ind-neighbor-advert"})...)
		default:
			return values(ruleset.NFProto, neg, pick([]string{"ipv4", "ipv6"})...)
		}
	}
	randLimit := func() ruleset.Limit {
		return ruleset.Limit{Rate: uint64(1 + rng.IntN(1000)), Unit: []string{"second", "minute", "hour", "day"}[rng.IntN(4)],
			Burst: []uint32{0, 0, 1, 5, 50}[rng.IntN(5)], Over: rng.IntN(2) == 0}
	}
	for i := 0; i < n; i++ {
		c := r.Chains[[]int{0, 0, 0, 1, 2, 3}[rng.IntN(6)]]
		rule := &ruleset.Rule{ID: fmt.Sprintf("rule %d", i)}
		for range rng.IntN(4) {
			rule.Matches = append(rule.Matches, randMatch())
		}
		if rng.IntN(6) == 0 {
			// ct original proto-dst needs tcp or udp before it: often
			// give it its own, and sometimes a match after it.
			if rng.IntN(3) > 0 {
				rule.Matches = append(rule.Matches, protos(false, []string{"tcp", "udp"}[rng.IntN(2)]))
			}
			p := []ruleset.PortRange{port(8080), prange(27015, 27030), port(1)}[rng.IntN(3)]
			rule.Matches = append(rule.Matches, ruleset.Match{Kind: ruleset.CtOriginalDPort, Negate: rng.IntN(4) == 0, Ports: []ruleset.PortRange{p}})
			if rng.IntN(3) == 0 {
				rule.Matches = append(rule.Matches, randMatch())
			}
		}
		if rng.IntN(5) == 0 {
			fam := []ruleset.Family{ruleset.IP, ruleset.IP6}[rng.IntN(2)]
			set := map[ruleset.Family]string{ruleset.IP: "m4", ruleset.IP6: "m6"}[fam]
			rule.Meter = &ruleset.Meter{Set: set, Family: fam, Limit: randLimit()}
		}
		if rng.IntN(4) == 0 {
			l := randLimit()
			rule.Limit = &l
		}
		rule.Counter = rng.IntN(2) == 0
		if rng.IntN(4) == 0 {
			rule.Log = &ruleset.Log{Prefix: []string{"", "edge: ", "x"}[rng.IntN(3)], Level: []string{"", "warn", "info", "debug", "emerg", "alert", "crit", "err", "notice"}[rng.IntN(9)]}
		}
		switch c.Name {
		case "pre":
			if rng.IntN(2) == 0 {
				rule.NAT = &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.AddrFrom4([4]byte{192, 168, 1, byte(rng.IntN(255))})}
				if rng.IntN(3) == 0 {
					rule.NAT.Family, rule.NAT.Addr = ruleset.IP6, netip.MustParseAddr("fd00:1::10")
				}
			} else {
				rule.NAT = &ruleset.NAT{Kind: ruleset.Redirect}
			}
		case "post":
			if rng.IntN(2) == 0 {
				rule.NAT = &ruleset.NAT{Kind: ruleset.SNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.0.2.1")}
			} else {
				rule.NAT = &ruleset.NAT{Kind: ruleset.Masquerade}
			}
		default:
			rule.Verdict = []ruleset.Verdict{"", ruleset.Accept, ruleset.Drop, ruleset.Reject, ruleset.Return, ruleset.Jump, ruleset.Goto}[rng.IntN(7)]
			if c.Name == "sub" && (rule.Verdict == ruleset.Jump || rule.Verdict == ruleset.Goto) {
				rule.Verdict = ruleset.Return
			}
			if rule.Verdict == ruleset.Jump || rule.Verdict == ruleset.Goto {
				rule.Target = "sub"
			}
			if rule.Verdict == ruleset.Reject && rng.IntN(2) == 0 {
				// A TCP reset needs tcp: often add it, last.
				rule.RejectWith = ruleset.RejectTCPReset
				if rng.IntN(3) > 0 {
					rule.Matches = append(rule.Matches, protos(false, "tcp"))
				}
			}
		}
		if rule.NAT != nil && rng.IntN(2) == 0 {
			// Ports need a transport match first.
			rule.Matches = append(rule.Matches, protos(false, []string{"tcp", "udp"}[rng.IntN(2)]))
			rule.NAT.Port = uint16(1024 + rng.IntN(1000))
			if rng.IntN(2) == 0 {
				rule.NAT.PortEnd = rule.NAT.Port + uint16(rng.IntN(100))
			}
		}
		c.Rules = append(c.Rules, rule)
		if err := Check(r); err != nil {
			c.Rules = c.Rules[:len(c.Rules)-1]
			refused++
		}
	}
	return r, refused
}
