package compile

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// One config item (a rule, a zone's service, a port forward) often becomes
// several nft rules: one per address family when it matches addresses,
// one per protocol when tcp and udp ports differ, one per way of matching
// a zone (interfaces, IPv4 networks, IPv6 networks). The alternatives on
// each axis are combined, combinations whose families conflict are
// dropped, and each resulting rule's ID is the item's ID qualified by
// what tells it from its siblings: "rule web (tcp)", "input: zone vpn
// (ip6)".

// Slots name the axes a qualifier token belongs to. Tokens of different
// slots never coincide, so qualified IDs stay unique.
const (
	slotPlace = iota // input, forward, output
	slotSrc          // iif, saddr: how the source zone was matched
	slotDst          // oif, daddr: how the destination zone was matched
	slotProto        // tcp, udp
	slotPort         // a port of a range moved to other ports
	slotLog          // log: the log rule before a verdict
	slotFam          // ip, ip6
	nslots
)

// alt is one alternative of an axis.
type alt struct {
	slot  int
	token string
	// family is "", IP or IP6: what the alternative's matches imply.
	family  ruleset.Family
	matches []ruleset.Match
}

// axis is a list of alternatives, one of which a packet must match. A nil
// axis is no constraint; an empty non-nil axis matches nothing.
type axis []alt

// variant is one combination of alternatives.
type variant struct {
	family  ruleset.Family
	tokens  [nslots]string
	matches []ruleset.Match
}

// expand combines the axes' alternatives.
func expand(axes ...axis) []variant {
	vs := []variant{{}}
	for _, ax := range axes {
		if ax == nil {
			continue
		}
		var next []variant
		for _, v := range vs {
			for _, a := range ax {
				fam, ok := joinFamily(v.family, a.family)
				if !ok {
					continue
				}
				nv := variant{family: fam, tokens: v.tokens, matches: append(slices.Clip(v.matches), a.matches...)}
				if a.token != "" {
					nv.tokens[a.slot] = a.token
				}
				next = append(next, nv)
			}
		}
		vs = next
	}
	for i := range vs {
		vs[i].tokens[slotFam] = string(vs[i].family)
	}
	return vs
}

func joinFamily(a, b ruleset.Family) (ruleset.Family, bool) {
	switch {
	case a == "":
		return b, true
	case b == "" || a == b:
		return a, true
	}
	return "", false
}

// famAxis splits by family without matching anything itself: for
// statements that need a family (meters, masquerade of one family).
func famAxis(v4, v6 bool) axis {
	var ax axis
	if v4 {
		ax = append(ax, alt{slot: slotFam, family: ruleset.IP})
	}
	if v6 {
		ax = append(ax, alt{slot: slotFam, family: ruleset.IP6})
	}
	return ax
}

// onlyFamily keeps the alternatives that can be of family fam.
func (ax axis) onlyFamily(fam ruleset.Family) axis {
	if ax == nil {
		return nil
	}
	out := axis{}
	for _, a := range ax {
		if a.family == "" || a.family == fam {
			out = append(out, a)
		}
	}
	return out
}

// addrAxis matches source or destination addresses, one alternative per
// family that has prefixes.
func addrAxis(kind ruleset.MatchKind, v4, v6 []netip.Prefix) axis {
	ax := axis{}
	if len(v4) > 0 {
		ax = append(ax, alt{family: ruleset.IP, matches: []ruleset.Match{{Kind: kind, Family: ruleset.IP, Prefixes: v4}}})
	}
	if len(v6) > 0 {
		ax = append(ax, alt{family: ruleset.IP6, matches: []ruleset.Match{{Kind: kind, Family: ruleset.IP6, Prefixes: v6}}})
	}
	return ax
}

// setAxis matches addresses against a config set's two family sets.
func setAxis(kind ruleset.MatchKind, name string) axis {
	return axis{
		{family: ruleset.IP, matches: []ruleset.Match{{Kind: kind, Family: ruleset.IP, Set: name + "_v4"}}},
		{family: ruleset.IP6, matches: []ruleset.Match{{Kind: kind, Family: ruleset.IP6, Set: name + "_v6"}}},
	}
}

// portAxis matches destination ports of tcp and udp: one alternative when
// both protocols have the same ports, else one per protocol.
func portAxis(tcp, udp []ruleset.PortRange) axis {
	tcp, udp = ruleset.MergePorts(tcp), ruleset.MergePorts(udp)
	if len(tcp) > 0 && slices.Equal(tcp, udp) {
		return axis{{matches: []ruleset.Match{
			{Kind: ruleset.L4Proto, Protos: []string{"tcp", "udp"}},
			{Kind: ruleset.DPort, Ports: tcp},
		}}}
	}
	ax := axis{}
	if len(tcp) > 0 {
		ax = append(ax, alt{slot: slotProto, token: "tcp", matches: []ruleset.Match{{Kind: ruleset.DPort, Protos: []string{"tcp"}, Ports: tcp}}})
	}
	if len(udp) > 0 {
		ax = append(ax, alt{slot: slotProto, token: "udp", matches: []ruleset.Match{{Kind: ruleset.DPort, Protos: []string{"udp"}, Ports: udp}}})
	}
	return ax
}

// item is one nft rule of a group, with its qualifier tokens.
type item struct {
	chain  *ruleset.Chain
	tokens [nslots]string
	rule   *ruleset.Rule
}

// group collects the nft rules of one config item, so that their IDs can
// be qualified against each other before they join their chains.
type group struct {
	base  string
	items []item
}

// add adds a rule per variant, built by build, to chain.
func (g *group) add(chain *ruleset.Chain, place string, vs []variant, build func(v variant) *ruleset.Rule) {
	for _, v := range vs {
		g.addOne(chain, place, v, build(v))
	}
}

func (g *group) addOne(chain *ruleset.Chain, place string, v variant, r *ruleset.Rule) {
	t := v.tokens
	t[slotPlace] = place
	if v.family != "" && !impliesFamily(r) {
		r.Matches = append([]ruleset.Match{{Kind: ruleset.NFProto, Values: []string{v.family.NFProto()}}}, r.Matches...)
	}
	g.items = append(g.items, item{chain: chain, tokens: t, rule: r})
}

// emit names the group's rules and appends them to their chains.
func (g *group) emit() {
	var keep [nslots]bool
	for s := range nslots {
		for _, it := range g.items[min(1, len(g.items)):] {
			if it.tokens[s] != g.items[0].tokens[s] {
				keep[s] = true
			}
		}
	}
	for _, it := range g.items {
		var q []string
		for s := range nslots {
			if keep[s] && it.tokens[s] != "" {
				q = append(q, it.tokens[s])
			}
		}
		it.rule.ID = g.base
		if len(q) > 0 {
			it.rule.ID += " (" + strings.Join(q, ", ") + ")"
		}
		it.chain.Rules = append(it.chain.Rules, it.rule)
	}
}

// impliesFamily reports whether a rule already restricts the family it
// applies to, so that no nfproto match is needed in front of it.
func impliesFamily(r *ruleset.Rule) bool {
	for _, m := range r.Matches {
		switch m.Kind {
		case ruleset.SAddr, ruleset.DAddr, ruleset.ICMPType, ruleset.ICMPv6Type, ruleset.NFProto:
			return true
		}
	}
	return r.Meter != nil || r.NAT != nil && r.NAT.Family != ""
}
