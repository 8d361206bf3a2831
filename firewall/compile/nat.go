package compile

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// nat builds the NAT chains. dstnat: port forwards (with hairpin), then
// 1:1. srcnat: 1:1, hairpin, SNAT, then masquerade, so that the specific
// rewrites come before the catch-all.
func (c *compiler) nat() {
	var hairpins []*group
	for i := range c.cfg.PortForwards {
		if g := c.portForward(i, &c.cfg.PortForwards[i]); g != nil {
			hairpins = append(hairpins, g)
		}
	}
	c.oneToOne()
	for _, g := range hairpins {
		g.emit()
	}
	c.snat()
	c.masquerade("masquerade", c.cfg.NAT.Masquerade, ruleset.IP)
	c.masquerade("masquerade6", c.cfg.NAT.Masquerade6, ruleset.IP6)
}

// portMap is one DNAT of a port forward: the router's ports it matches
// and the host's port it rewrites to (0: the same ports).
type portMap struct {
	match  fwconfig.PortRange
	toPort uint16
	tok    string
}

func (c *compiler) portMaps(p *fwconfig.PortForward) []portMap {
	switch {
	case p.ToPort.IsZero() || p.ToPort == p.Port:
		return []portMap{{match: p.Port}}
	case p.Port.Len() == 1:
		return []portMap{{match: p.Port, toPort: p.ToPort.From}}
	}
	// A range moved to other ports: nft's DNAT to a range picks any port
	// of it, so each port gets its own rule.
	maps := make([]portMap, 0, p.Port.Len())
	for k := 0; k < p.Port.Len(); k++ {
		from := p.Port.From + uint16(k)
		maps = append(maps, portMap{
			match:  fwconfig.PortRange{From: from, To: from},
			toPort: p.ToPort.From + uint16(k),
			tok:    strconv.Itoa(int(from)),
		})
	}
	return maps
}

// portMatches matches a transport protocol (tcp, udp or both) and a
// destination port range.
func portMatches(proto string, pr fwconfig.PortRange) []ruleset.Match {
	rp := []ruleset.PortRange{{From: pr.From, To: pr.To}}
	if proto == "both" {
		return []ruleset.Match{{Kind: ruleset.L4Proto, Protos: []string{"tcp", "udp"}}, {Kind: ruleset.DPort, Ports: rp}}
	}
	return []ruleset.Match{{Kind: ruleset.DPort, Protos: []string{proto}, Ports: rp}}
}

// portForward adds a port forward's DNAT rules and, with hairpin, the
// DNAT for inside clients that use the router's public address. It
// returns the hairpin's srcnat group for nat to emit in its place.
//
// Hairpin (fw4's reflection): a lan client connecting to the router's
// public address is sent to the lan host like outside traffic; the host
// would answer the client directly, from its own address, and the client
// would drop the answer. So traffic from the host's own network to the
// host, DNATed, is masqueraded: the host then answers the router.
func (c *compiler) portForward(i int, p *fwconfig.PortForward) *group {
	path := pathf("port_forwards[%d]", i)
	from := c.zones[p.FromZone]
	if from == nil || !p.To.IsValid() || p.Port.IsZero() {
		c.errorf(path, "port forward %q is incomplete", p.Name)
		return nil
	}
	fam := ruleset.FamilyOf(p.To)
	fromAx := from.src().onlyFamily(fam)
	if len(fromAx) == 0 {
		c.errorf(path+".from_zone", "zone %s has no interfaces and no %s networks to forward from", p.FromZone, famText(fam))
		return nil
	}
	var allow axis
	if len(p.AllowFrom) > 0 {
		v4, v6 := fwconfig.Prefixes(c.site, p.AllowFrom)
		allow = addrAxis(ruleset.SAddr, mergePrefixes(v4), mergePrefixes(v6)).onlyFamily(fam)
		if len(allow) == 0 {
			c.errorf(path+".allow_from", "no %s network; the forward goes to %s", famText(fam), p.To)
			return nil
		}
	}
	local := axis{{family: fam, matches: []ruleset.Match{{Kind: ruleset.FibDAddrLocal}}}}
	maps := c.portMaps(p)

	g := &group{base: "dstnat: port forward " + p.Name}
	for _, m := range maps {
		for _, v := range expand(fromAx, allow, local, axis{{matches: portMatches(p.Proto, m.match)}}) {
			v.tokens[slotPort] = m.tok
			g.addOne(c.dstnat, "", v, &ruleset.Rule{
				Matches: v.matches,
				Counter: true,
				NAT:     &ruleset.NAT{Kind: ruleset.DNAT, Family: fam, Addr: p.To, Port: m.toPort},
			})
		}
	}
	g.emit()
	if !p.Hairpin {
		return nil
	}

	// Inside clients: from anywhere but the forward's zone, to one of the
	// router's addresses that is not an inside one (the public address,
	// whatever it is today).
	hg := &group{base: "dstnat: hairpin " + p.Name}
	var notInside []ruleset.Match
	if inside := c.insidePrefixes(p.FromZone, fam); len(inside) > 0 {
		notInside = []ruleset.Match{{Kind: ruleset.DAddr, Negate: true, Family: fam, Prefixes: inside}}
	}
	for _, m := range maps {
		ms := append(append(append(from.notFrom(fam), ruleset.Match{Kind: ruleset.FibDAddrLocal}), notInside...), portMatches(p.Proto, m.match)...)
		v := variant{family: fam, matches: ms}
		v.tokens[slotPort] = m.tok
		hg.addOne(c.dstnat, "", v, &ruleset.Rule{
			Matches: ms,
			Counter: true,
			NAT:     &ruleset.NAT{Kind: ruleset.DNAT, Family: fam, Addr: p.To, Port: m.toPort},
		})
	}
	hg.emit()

	hostNet, ok := c.cfg.HostNetwork(c.site, p.To)
	if !ok {
		c.errorf(path+".hairpin", "hairpin needs the network %s is on; add it to site.networks or set hairpin: false", p.To)
		return nil
	}
	dstPorts := p.Port
	if !p.ToPort.IsZero() {
		dstPorts = p.ToPort
	}
	ms := append([]ruleset.Match{
		{Kind: ruleset.SAddr, Family: fam, Prefixes: []netip.Prefix{hostNet}},
		{Kind: ruleset.DAddr, Family: fam, Prefixes: []netip.Prefix{hostPrefix(p.To)}},
	}, portMatches(p.Proto, dstPorts)...)
	ms = append(ms, ruleset.Match{Kind: ruleset.CtStatus, Values: []string{"dnat"}})
	sg := &group{base: "srcnat: hairpin " + p.Name}
	sg.addOne(c.srcnat, "", variant{family: fam}, &ruleset.Rule{Matches: ms, Counter: true, NAT: &ruleset.NAT{Kind: ruleset.Masquerade}})
	return sg
}

// insidePrefixes are the networks of family fam that are not the zone's:
// site.networks and every zone's networks. The router's addresses in
// them are inside addresses, which hairpin must leave alone (a lan client
// talking to the router's lan address means the router).
func (c *compiler) insidePrefixes(zone string, fam ruleset.Family) []netip.Prefix {
	own := c.zones[zone].ownFamily(fam)
	var out []netip.Prefix
	consider := func(ps []netip.Prefix) {
		for _, p := range ps {
			if ruleset.FamilyOf(p.Addr()) != fam {
				continue
			}
			mine := false
			for _, o := range own {
				mine = mine || o.Overlaps(p)
			}
			if !mine {
				out = append(out, p)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.site.Networks)) {
		consider(c.site.Networks[name])
	}
	for _, name := range c.cfg.ZoneNames() {
		z := c.zones[name]
		consider(z.own4)
		consider(z.own6)
	}
	return mergePrefixes(out)
}

// oneToOne maps external addresses to inside hosts: DNAT of traffic from
// the zone to the external address, SNAT of the host's traffic to the
// zone.
func (c *compiler) oneToOne() {
	var snats []*group
	for i, o := range c.cfg.NAT.OneToOne {
		path := pathf("nat.one_to_one[%d]", i)
		z := c.zones[o.Zone]
		if z == nil || !o.External.IsValid() || !o.Internal.IsValid() || o.External.Is4() != o.Internal.Is4() {
			c.errorf(path, "incomplete 1:1 NAT entry")
			continue
		}
		fam := ruleset.FamilyOf(o.External)
		id := "one-to-one " + o.External.String()
		dg := &group{base: "dstnat: " + id}
		ext := axis{{family: fam, matches: []ruleset.Match{{Kind: ruleset.DAddr, Family: fam, Prefixes: []netip.Prefix{hostPrefix(o.External)}}}}}
		dg.add(c.dstnat, "", expand(z.src().onlyFamily(fam), ext), func(v variant) *ruleset.Rule {
			return &ruleset.Rule{Matches: v.matches, Counter: true, NAT: &ruleset.NAT{Kind: ruleset.DNAT, Family: fam, Addr: o.Internal}}
		})
		sg := &group{base: "srcnat: " + id}
		in := axis{{family: fam, matches: []ruleset.Match{{Kind: ruleset.SAddr, Family: fam, Prefixes: []netip.Prefix{hostPrefix(o.Internal)}}}}}
		sg.add(c.srcnat, "", expand(z.dst().onlyFamily(fam), in), func(v variant) *ruleset.Rule {
			return &ruleset.Rule{Matches: v.matches, Counter: true, NAT: &ruleset.NAT{Kind: ruleset.SNAT, Family: fam, Addr: o.External}}
		})
		if len(dg.items) == 0 || len(sg.items) == 0 {
			c.errorf(path+".zone", "zone %s has no interfaces and no %s networks", o.Zone, famText(fam))
			continue
		}
		dg.emit()
		snats = append(snats, sg)
	}
	for _, g := range snats {
		g.emit()
	}
}

// snat rewrites sources of traffic leaving a zone to a fixed address.
func (c *compiler) snat() {
	for i, s := range c.cfg.NAT.SNAT {
		path := pathf("nat.snat[%d]", i)
		z := c.zones[s.Zone]
		if z == nil || !s.To.IsValid() {
			c.errorf(path, "incomplete SNAT entry")
			continue
		}
		fam := ruleset.FamilyOf(s.To)
		var src axis
		if len(s.Source) > 0 {
			v4, v6 := fwconfig.Prefixes(c.site, s.Source)
			src = addrAxis(ruleset.SAddr, mergePrefixes(v4), mergePrefixes(v6)).onlyFamily(fam)
		}
		g := &group{base: "srcnat: snat " + s.Zone + " to " + s.To.String()}
		g.add(c.srcnat, "", expand(z.dst().onlyFamily(fam), src, famAxis(fam == ruleset.IP, fam == ruleset.IP6)), func(v variant) *ruleset.Rule {
			return &ruleset.Rule{Matches: v.matches, Counter: true, NAT: &ruleset.NAT{Kind: ruleset.SNAT, Family: fam, Addr: s.To}}
		})
		if len(g.items) == 0 {
			c.errorf(path, "SNAT to %s matches nothing: zone %s has no interfaces and no %s networks, or source has no %s network", s.To, s.Zone, famText(fam), famText(fam))
			continue
		}
		g.emit()
	}
}

// masquerade rewrites sources of one family leaving the zones to the
// outgoing interface's address.
func (c *compiler) masquerade(key string, zones []string, fam ruleset.Family) {
	for i, name := range zones {
		z := c.zones[name]
		if z == nil {
			c.errorf(pathf("nat.%s[%d]", key, i), "unknown zone %q", name)
			continue
		}
		g := &group{base: "srcnat: " + key + " " + name}
		g.add(c.srcnat, "", expand(z.dst().onlyFamily(fam), famAxis(fam == ruleset.IP, fam == ruleset.IP6)), func(v variant) *ruleset.Rule {
			return &ruleset.Rule{Matches: v.matches, Counter: true, NAT: &ruleset.NAT{Kind: ruleset.Masquerade}}
		})
		if len(g.items) == 0 {
			c.errorf(pathf("nat.%s[%d]", key, i), "zone %s has no interfaces and no %s networks to masquerade out of", name, famText(fam))
			continue
		}
		g.emit()
	}
}

func famText(fam ruleset.Family) string {
	if fam == ruleset.IP {
		return "IPv4"
	}
	return "IPv6"
}
