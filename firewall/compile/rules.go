package compile

import (
	"fmt"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/netfilter/ruleset"
)

func pathf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// rule compiles a config rule. Its chain follows from From and To: to the
// router it is an input rule, to a zone or anywhere a forward rule (to
// any is both), from the router an output rule. A rule naming a From zone
// runs in that zone's chain, else in the base chain before the zones.
func (c *compiler) rule(i int, r *fwconfig.Rule) {
	path := pathf("rules[%d]", i)
	type place struct {
		chain *ruleset.Chain
		tok   string
		dst   axis
	}
	dstZone := func() (axis, bool) {
		if r.To == fwconfig.Any {
			return nil, true
		}
		z := c.zones[r.To]
		if z == nil {
			c.errorf(path+".to", "unknown zone %q", r.To)
			return nil, false
		}
		return z.dst(), true
	}
	var places []place
	if r.From == fwconfig.Router {
		dst, ok := dstZone()
		if !ok {
			return
		}
		places = append(places, place{c.output, "output", dst})
	} else {
		in, fwd := c.input, c.forward
		if r.From != fwconfig.Any {
			in, fwd = c.zoneIn[r.From], c.zoneFwd[r.From]
			if in == nil {
				c.errorf(path+".from", "unknown zone %q", r.From)
				return
			}
		}
		if r.To == fwconfig.Router || r.To == fwconfig.Any {
			places = append(places, place{in, "input", nil})
		}
		if r.To != fwconfig.Router {
			dst, ok := dstZone()
			if !ok {
				return
			}
			places = append(places, place{fwd, "forward", dst})
		}
	}

	var src, dst axis
	switch {
	case len(r.Source) > 0:
		v4, v6 := fwconfig.Prefixes(c.site, r.Source)
		src = addrAxis(ruleset.SAddr, mergePrefixes(v4), mergePrefixes(v6))
	case r.SourceSet != "":
		src = setAxis(ruleset.SAddr, r.SourceSet)
	}
	switch {
	case len(r.Destination) > 0:
		v4, v6 := fwconfig.Prefixes(c.site, r.Destination)
		dst = addrAxis(ruleset.DAddr, mergePrefixes(v4), mergePrefixes(v6))
	case r.DestinationSet != "":
		dst = setAxis(ruleset.DAddr, r.DestinationSet)
	}
	proto, err := c.ruleProto(r)
	if err != nil {
		c.errorf(path+".services", "%v", err)
		return
	}

	g := &group{base: "rule " + r.Name}
	for _, p := range places {
		for _, v := range expand(p.dst, src, dst, proto) {
			if r.Log.On {
				prefix := r.Log.Prefix
				if prefix == "" {
					prefix = "edge rule " + r.Name + ": "
				}
				lr := c.logRule("")
				lr.Matches, lr.Log.Prefix = v.matches, prefix
				lv := v
				lv.tokens[slotLog] = "log"
				g.addOne(p.chain, p.tok, lv, lr)
			}
			rr := c.decide(&ruleset.Rule{Matches: v.matches, Counter: true}, r.Action)
			if r.Limit != nil {
				rr.Limit = limit(r.Limit.Rate, r.Limit.Burst, false)
			}
			g.addOne(p.chain, p.tok, v, rr)
		}
	}
	if len(g.items) == 0 {
		c.errorf(path, "rule %q can match no packet: its addresses, protocol and zones have no address family in common", r.Name)
		return
	}
	g.emit()
}

// ruleProto matches a rule's services, or its protocol, ports and ICMP
// types. nil means any protocol.
func (c *compiler) ruleProto(r *fwconfig.Rule) (axis, error) {
	if len(r.Services) > 0 {
		svcs := make([]fwconfig.Service, 0, len(r.Services))
		for _, s := range r.Services {
			svc, err := c.cfg.Service(s)
			if err != nil {
				return nil, err
			}
			svcs = append(svcs, svc)
		}
		return serviceAxis(svcs...), nil
	}
	ports := make([]ruleset.PortRange, 0, len(r.Ports))
	for _, p := range r.Ports {
		ports = append(ports, ruleset.PortRange{From: p.From, To: p.To})
	}
	l4 := func(fam ruleset.Family, protos ...string) axis {
		return axis{{family: fam, matches: []ruleset.Match{{Kind: ruleset.L4Proto, Protos: protos}}}}
	}
	switch r.Proto {
	case "tcp", "udp", "both":
		switch {
		case len(ports) > 0 && r.Proto == "tcp":
			return portAxis(ports, nil), nil
		case len(ports) > 0 && r.Proto == "udp":
			return portAxis(nil, ports), nil
		case len(ports) > 0:
			return portAxis(ports, ports), nil
		case r.Proto == "both":
			return l4("", "tcp", "udp"), nil
		}
		return l4("", r.Proto), nil
	case "icmp":
		if len(r.ICMPTypes) > 0 {
			return axis{{family: ruleset.IP, matches: []ruleset.Match{{Kind: ruleset.ICMPType, Values: r.ICMPTypes}}}}, nil
		}
		return l4(ruleset.IP, "icmp"), nil
	case "icmpv6":
		if len(r.ICMPv6Types) > 0 {
			return axis{{family: ruleset.IP6, matches: []ruleset.Match{{Kind: ruleset.ICMPv6Type, Values: r.ICMPv6Types}}}}, nil
		}
		return l4(ruleset.IP6, "ipv6-icmp"), nil
	case "":
		var ax axis
		if len(r.ICMPTypes) > 0 {
			ax = append(ax, alt{family: ruleset.IP, matches: []ruleset.Match{{Kind: ruleset.ICMPType, Values: r.ICMPTypes}}})
		}
		if len(r.ICMPv6Types) > 0 {
			ax = append(ax, alt{family: ruleset.IP6, matches: []ruleset.Match{{Kind: ruleset.ICMPv6Type, Values: r.ICMPv6Types}}})
		}
		return ax, nil
	}
	return l4("", r.Proto), nil
}
