package compile

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// ICMP messages accepted whatever the zone (RFC 4890 for ICMPv6): errors
// that path MTU discovery and diagnostics need, and on input neighbour
// discovery and MLD, without which IPv6 on a link does not work. Echo
// requests to the router are accepted up to echoLimit in each zone's
// input chain, after the zone's rules, so that a rule can refuse them
// (above the limit the zone's policy decides).
var (
	icmpErrors    = []string{"destination-unreachable", "time-exceeded", "parameter-problem"}
	icmpv6Errors  = []string{"destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"}
	icmpv6OnInput = []string{
		"nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert",
		"mld-listener-query", "mld-listener-report", "mld-listener-done", "mld2-listener-report",
	}
	echoLimit = ruleset.Limit{Rate: 20, Unit: "second", Burst: 50}
)

// filter builds the filter chains: input, forward and output, and each
// zone's.
func (c *compiler) filter() {
	d := c.cfg.Defaults
	c.input = &ruleset.Chain{Name: "input", Hook: ruleset.Input, Type: ruleset.Filter, Priority: PriorityFilter, Policy: basePolicy(d.Input)}
	c.forward = &ruleset.Chain{Name: "forward", Hook: ruleset.Forward, Type: ruleset.Filter, Priority: PriorityFilter, Policy: basePolicy(d.Forward)}
	c.output = &ruleset.Chain{Name: "output", Hook: ruleset.Output, Type: ruleset.Filter, Priority: PriorityFilter, Policy: basePolicy(d.Output)}
	c.dstnat = &ruleset.Chain{Name: "dstnat", Hook: ruleset.Prerouting, Type: ruleset.NATType, Priority: PriorityDstNAT, Policy: ruleset.Accept}
	c.srcnat = &ruleset.Chain{Name: "srcnat", Hook: ruleset.Postrouting, Type: ruleset.NATType, Priority: PrioritySrcNAT, Policy: ruleset.Accept}
	c.rs.Chains = append(c.rs.Chains, c.input, c.forward, c.output, c.dstnat, c.srcnat)
	c.zoneIn, c.zoneFwd, c.zoneOut = map[string]*ruleset.Chain{}, map[string]*ruleset.Chain{}, map[string]*ruleset.Chain{}
	for _, name := range c.cfg.ZoneNames() {
		c.zoneIn[name] = &ruleset.Chain{Name: "input_" + name}
		c.zoneFwd[name] = &ruleset.Chain{Name: "forward_" + name}
		c.rs.Chains = append(c.rs.Chains, c.zoneIn[name], c.zoneFwd[name])
		if c.cfg.Zones[name].Output != fwconfig.Accept {
			c.zoneOut[name] = &ruleset.Chain{Name: "output_" + name}
			c.rs.Chains = append(c.rs.Chains, c.zoneOut[name])
		}
	}

	c.bans()
	c.offload()
	c.prelude()
	c.synFlood()
	c.meters()
	for i := range c.cfg.Rules {
		c.rule(i, &c.cfg.Rules[i])
	}
	c.zoneChains()
	c.dispatch()
	c.rejectChain()
}

func basePolicy(a fwconfig.Action) ruleset.Verdict {
	if a == fwconfig.Accept {
		return ruleset.Accept
	}
	return ruleset.Drop
}

// decide ends r with action a: accept, drop, or for reject a jump to
// RejectChain, which answers the way a closed port does.
func (c *compiler) decide(r *ruleset.Rule, a fwconfig.Action) *ruleset.Rule {
	switch a {
	case fwconfig.Accept:
		r.Verdict = ruleset.Accept
	case fwconfig.Reject:
		c.rejects = true
		r.Verdict, r.Target = ruleset.Jump, RejectChain
	default:
		r.Verdict = ruleset.Drop
	}
	return r
}

// RejectChain is the chain every reject jumps to (fw4's handle_reject):
// TCP gets a reset, as from a closed port, which clients take for "no
// such service" at once; everything else an ICMP or ICMPv6 port
// unreachable (nft's icmpx, by the packet's family). A reject with ICMP
// for TCP too would look filtered to a scanner and, to some stacks, like
// a path problem worth retrying.
const RejectChain = "handle_reject"

// rejectChain adds RejectChain when a rule jumps to it.
func (c *compiler) rejectChain() {
	if !c.rejects {
		return
	}
	ch := &ruleset.Chain{Name: RejectChain}
	one(ch, RejectChain+": tcp reset", &ruleset.Rule{Matches: []ruleset.Match{{Kind: ruleset.L4Proto, Protos: []string{"tcp"}}},
		Counter: true, Verdict: ruleset.Reject, RejectWith: ruleset.RejectTCPReset})
	one(ch, RejectChain+": port unreachable", &ruleset.Rule{Counter: true, Verdict: ruleset.Reject})
	c.rs.Chains = append(c.rs.Chains, ch)
}

// one appends a rule that needs no variants.
func one(ch *ruleset.Chain, id string, r *ruleset.Rule) {
	r.ID = id
	ch.Rules = append(ch.Rules, r)
}

// outputFiltered reports whether the router's own traffic is filtered at
// all; if not, the output chain stays empty.
func (c *compiler) outputFiltered() bool {
	if len(c.zoneOut) > 0 || c.cfg.Defaults.Output != fwconfig.Accept {
		return true
	}
	return slices.ContainsFunc(c.cfg.Rules, func(r fwconfig.Rule) bool { return r.From == fwconfig.Router })
}

// bans drop traffic from banned sources in the zones bans apply to. They
// come first, before established traffic is accepted, so that a ban also
// cuts the connections a banned address already has.
func (c *compiler) bans() {
	sel := c.union(c.cfg.Bans.Zones)
	for _, ch := range []*ruleset.Chain{c.input, c.forward} {
		g := &group{base: ch.Name + ": ban"}
		g.add(ch, "", expand(sel.src(), setAxis(ruleset.SAddr, fwconfig.BanSet)), func(v variant) *ruleset.Rule {
			return &ruleset.Rule{Matches: v.matches, Counter: true, Verdict: ruleset.Drop}
		})
		g.emit()
	}
}

// offload adds established forward traffic to the flowtable, when the
// config asks for it and the kernel has flowtables.
func (c *compiler) offload() {
	if !c.cfg.FlowOffload.Enabled || !c.opts.Flowtable {
		return
	}
	c.rs.Flowtable = &ruleset.Flowtable{Name: FlowtableName, Devices: c.cfg.OffloadDevices(c.site), Priority: PriorityFilter}
	one(c.forward, "forward: offload", &ruleset.Rule{
		Matches: []ruleset.Match{{Kind: ruleset.L4Proto, Protos: []string{"tcp", "udp"}}, ctState("established")},
		Counter: true,
		Offload: true,
	})
}

func ctState(states ...string) ruleset.Match {
	return ruleset.Match{Kind: ruleset.CtState, Values: states}
}

func accept(ms ...ruleset.Match) *ruleset.Rule {
	return &ruleset.Rule{Matches: ms, Counter: true, Verdict: ruleset.Accept}
}

// prelude is what every filter chain starts with.
func (c *compiler) prelude() {
	one(c.input, "input: ct established", accept(ctState("established", "related")))
	one(c.input, "input: ct invalid", &ruleset.Rule{Matches: []ruleset.Match{ctState("invalid")}, Counter: true, Verdict: ruleset.Drop})
	one(c.input, "input: loopback", accept(ruleset.Match{Kind: ruleset.IIFName, Names: []string{"lo"}}))
	one(c.input, "input: icmp", accept(ruleset.Match{Kind: ruleset.ICMPType, Values: icmpErrors}))
	one(c.input, "input: icmpv6", accept(ruleset.Match{Kind: ruleset.ICMPv6Type, Values: append(slices.Clone(icmpv6Errors), icmpv6OnInput...)}))

	one(c.forward, "forward: ct established", accept(ctState("established", "related")))
	one(c.forward, "forward: ct invalid", &ruleset.Rule{Matches: []ruleset.Match{ctState("invalid")}, Counter: true, Verdict: ruleset.Drop})
	one(c.forward, "forward: icmp", accept(ruleset.Match{Kind: ruleset.ICMPType, Values: icmpErrors}))
	one(c.forward, "forward: icmpv6", accept(ruleset.Match{Kind: ruleset.ICMPv6Type, Values: icmpv6Errors}))

	if c.outputFiltered() {
		one(c.output, "output: ct established", accept(ctState("established", "related")))
		one(c.output, "output: loopback", accept(ruleset.Match{Kind: ruleset.OIFName, Names: []string{"lo"}}))
		one(c.output, "output: icmp", accept(ruleset.Match{Kind: ruleset.L4Proto, Protos: []string{"icmp", "ipv6-icmp"}}))
	}
}

// synFlood limits new TCP connections from the zones named, in input and
// forward.
func (c *compiler) synFlood() {
	s := c.cfg.Limits.SYNFlood
	if s == nil {
		return
	}
	sel := c.union(s.Zones)
	newTCP := axis{{matches: []ruleset.Match{{Kind: ruleset.L4Proto, Protos: []string{"tcp"}}, ctState("new")}}}
	for _, ch := range []*ruleset.Chain{c.input, c.forward} {
		g := &group{base: ch.Name + ": syn flood"}
		g.add(ch, "", expand(sel.src(), newTCP), func(v variant) *ruleset.Rule {
			return &ruleset.Rule{Matches: v.matches, Limit: limit(s.Rate, s.Burst, true), Counter: true, Verdict: ruleset.Drop}
		})
		g.emit()
	}
}

func limit(r fwconfig.Rate, burst uint32, over bool) *ruleset.Limit {
	return &ruleset.Limit{Rate: r.Count, Unit: r.Unit, Burst: burst, Over: over}
}

// meters drop a source's new connections to a service above its rate,
// keeping one limiter per source address in a dynamic set.
func (c *compiler) meters() {
	for i := range c.cfg.Limits.PerSource {
		l := &c.cfg.Limits.PerSource[i]
		if l.PortForward != "" {
			c.forwardMeter(i, l)
			continue
		}
		svc, err := c.cfg.Service(l.Service)
		if err != nil {
			c.errorf(pathf("limits.per_source[%d].service", i), "%v", err)
			continue
		}
		name := l.MeterName()
		g := &group{base: "input: limit " + strings.TrimPrefix(name, "meter_")}
		newConn := axis{{matches: []ruleset.Match{ctState("new")}}}
		g.add(c.input, "", expand(c.union(l.Zones).src(), newConn, serviceAxis(svc), famAxis(true, true)), func(v variant) *ruleset.Rule {
			set := name + "_v4"
			if v.family == ruleset.IP6 {
				set = name + "_v6"
			}
			return &ruleset.Rule{
				Matches: v.matches,
				Meter:   &ruleset.Meter{Set: set, Family: v.family, Limit: *limit(l.Rate, l.Burst, true)},
				Counter: true,
				Verdict: ruleset.Drop,
			}
		})
		g.emit()
	}
}

// forwardMeter limits new connections per source to a port forward. Its
// traffic never reaches the input chain: DNAT sent it to the host, so
// the limit is in the forward chain, before the zones', and tells the
// forward's connections by what DNAT cannot change: the port they were
// opened to (ct original proto-dst), the host the forward rewrote them
// to, and that a DNAT did it.
func (c *compiler) forwardMeter(i int, l *fwconfig.SourceLimit) {
	path := pathf("limits.per_source[%d]", i)
	fi, ok := c.cfg.ForwardNamed(l.PortForward)
	if !ok {
		c.errorf(path+".port_forward", "unknown port forward %q", l.PortForward)
		return
	}
	p := &c.cfg.PortForwards[fi]
	fam := ruleset.FamilyOf(p.To)
	src := c.union(l.Zones).src().onlyFamily(fam)
	if len(src) == 0 {
		c.errorf(path+".zones", "no zone of %s has interfaces or %s networks; the port forward %s goes to %s", strings.Join(l.Zones, ", "), famText(fam), p.Name, p.To)
		return
	}
	var protos axis
	for _, proto := range []string{"tcp", "udp"} {
		if p.Proto == proto || p.Proto == "both" {
			protos = append(protos, alt{slot: slotProto, token: proto, matches: []ruleset.Match{
				{Kind: ruleset.L4Proto, Protos: []string{proto}},
				{Kind: ruleset.CtOriginalDPort, Ports: []ruleset.PortRange{{From: p.Port.From, To: p.Port.To}}},
			}})
		}
	}
	conn := axis{{family: fam, matches: []ruleset.Match{ctState("new"), {Kind: ruleset.CtStatus, Values: []string{"dnat"}}}}}
	host := axis{{family: fam, matches: []ruleset.Match{{Kind: ruleset.DAddr, Family: fam, Prefixes: []netip.Prefix{hostPrefix(p.To)}}}}}
	name := l.MeterName()
	set := name + "_v4"
	if fam == ruleset.IP6 {
		set = name + "_v6"
	}
	g := &group{base: "forward: limit " + strings.TrimPrefix(name, "meter_")}
	g.add(c.forward, "", expand(src, conn, protos, host), func(v variant) *ruleset.Rule {
		return &ruleset.Rule{
			Matches: v.matches,
			Meter:   &ruleset.Meter{Set: set, Family: fam, Limit: *limit(l.Rate, l.Burst, true)},
			Counter: true,
			Verdict: ruleset.Drop,
		}
	})
	g.emit()
}

// serviceAxis matches a service's ports.
func serviceAxis(svcs ...fwconfig.Service) axis {
	var tcp, udp []ruleset.PortRange
	for _, s := range svcs {
		for _, p := range s.Ports {
			pr := ruleset.PortRange{From: p.From, To: p.To}
			if s.Proto != "udp" {
				tcp = append(tcp, pr)
			}
			if s.Proto != "tcp" {
				udp = append(udp, pr)
			}
		}
	}
	return portAxis(tcp, udp)
}

// zoneChains fills each zone's chains after the rules that name the zone:
// echo requests and services into the router, then the forwarding matrix,
// then the zone's policies.
func (c *compiler) zoneChains() {
	for _, name := range c.cfg.ZoneNames() {
		z := c.cfg.Zones[name]
		in := c.zoneIn[name]
		for _, e := range []struct {
			kind ruleset.MatchKind
			id   string
		}{{ruleset.ICMPType, "icmp echo"}, {ruleset.ICMPv6Type, "icmpv6 echo"}} {
			echo := echoLimit
			one(in, "zone "+name+" input: "+e.id, &ruleset.Rule{Matches: []ruleset.Match{{Kind: e.kind, Values: []string{"echo-request"}}}, Limit: &echo, Counter: true, Verdict: ruleset.Accept})
		}
		for i, s := range z.Services {
			svc, err := c.cfg.Service(s)
			if err != nil {
				c.errorf(pathf("zones.%s.services[%d]", name, i), "%v", err)
				continue
			}
			g := &group{base: "zone " + name + " input: allow " + s}
			g.add(in, "", expand(serviceAxis(svc)), func(v variant) *ruleset.Rule { return accept(v.matches...) })
			g.emit()
		}
		c.zoneEnd(in, "zone "+name+" input", name+" input", z.Input, z.LogDrops)

		fwd := c.zoneFwd[name]
		// Port forwards, 1:1 NAT and edge-lb's fast path decided their
		// DNAT already; the zone's own rules (a blocklist) came first.
		one(fwd, "zone "+name+" forward: ct dnat", accept(ruleset.Match{Kind: ruleset.CtStatus, Values: []string{"dnat"}}))
		c.intra(fwd, name, z)
		for _, p := range c.matrixFrom(name) {
			to := c.zones[p.To]
			if to == nil {
				continue
			}
			g := &group{base: "zone " + name + " forward: to " + p.To}
			g.add(fwd, "", expand(to.dst()), func(v variant) *ruleset.Rule {
				return c.decide(&ruleset.Rule{Matches: v.matches, Counter: true}, p.Action)
			})
			g.emit()
		}
		c.zoneEnd(fwd, "zone "+name+" forward", name+" forward", z.Forward, z.LogDrops)
		if out := c.zoneOut[name]; out != nil {
			c.zoneEnd(out, "zone "+name+" output", name+" output", z.Output, z.LogDrops)
		}
	}
}

// intra decides traffic from the zone back into it (two lan interfaces,
// or two ports of the lan bridge once br_netfilter hands bridged frames
// to the forward hook) by the zone's intra policy. When that is the
// zone's forward policy, the chain's last rule decides it the same way
// and no rule is needed.
func (c *compiler) intra(fwd *ruleset.Chain, name string, z fwconfig.Zone) {
	a := z.IntraPolicy()
	if a == z.Forward {
		return
	}
	id := "zone " + name + " forward: intra"
	g := &group{base: id}
	g.add(fwd, "", expand(c.zones[name].dst()), func(v variant) *ruleset.Rule {
		return c.decide(&ruleset.Rule{Matches: v.matches, Counter: true}, a)
	})
	if a != fwconfig.Accept && z.LogDrops {
		lg := &group{base: id + ": log"}
		for _, it := range g.items {
			lr := c.logRule(string(a) + " " + name + " intra")
			lr.Matches = slices.Clone(it.rule.Matches)
			lg.items = append(lg.items, item{chain: fwd, tokens: it.tokens, rule: lr})
		}
		lg.emit()
	}
	g.emit()
}

// matrixFrom lists the forwarding matrix entries from a zone: its
// forward_to, then the policies, in config order.
func (c *compiler) matrixFrom(zone string) []fwconfig.Policy {
	var out []fwconfig.Policy
	for _, to := range c.cfg.Zones[zone].ForwardTo {
		out = append(out, fwconfig.Policy{From: zone, To: to, Action: fwconfig.Accept})
	}
	for _, p := range c.cfg.Policies {
		if p.From == zone {
			out = append(out, p)
		}
	}
	return out
}

// zoneEnd ends a zone chain with its policy, logged (rate-limited) first
// when asked.
func (c *compiler) zoneEnd(ch *ruleset.Chain, id, what string, a fwconfig.Action, logDrops bool) {
	if a != fwconfig.Accept && logDrops {
		one(ch, id+": log", c.logRule(string(a)+" "+what))
	}
	one(ch, id+": "+string(a), c.decide(&ruleset.Rule{Counter: true}, a))
}

// logRule logs with the config's rate, to the kernel log at the config's
// level or to its NFLOG group, with the prefix "edge <what>: ".
func (c *compiler) logRule(what string) *ruleset.Rule {
	l := c.cfg.Log
	lg := &ruleset.Log{Prefix: "edge " + what + ": ", Level: l.Level}
	if l.To == fwconfig.LogToDaemon {
		lg.Level, lg.ToGroup, lg.Group = "", true, l.Group
	}
	return &ruleset.Rule{Limit: limit(l.Rate, l.Burst, false), Counter: true, Log: lg}
}

// dispatch sends traffic to the zones' chains: interface matches first
// for every zone, so that a packet on the wan interface is wan's whatever
// its source, then network matches. Then come the defaults for traffic
// no zone claimed.
func (c *compiler) dispatch() {
	type target struct {
		base  *ruleset.Chain
		zones map[string]*ruleset.Chain
		dst   bool
	}
	for _, t := range []target{{c.input, c.zoneIn, false}, {c.forward, c.zoneFwd, false}, {c.output, c.zoneOut, true}} {
		tmp := &ruleset.Chain{}
		for _, name := range c.cfg.ZoneNames() {
			zc := t.zones[name]
			if zc == nil {
				continue
			}
			sel := c.zones[name].src()
			if t.dst {
				sel = c.zones[name].dst()
			}
			g := &group{base: t.base.Name + ": zone " + name}
			g.add(tmp, "", expand(sel), func(v variant) *ruleset.Rule {
				return &ruleset.Rule{Matches: v.matches, Counter: true, Verdict: ruleset.Jump, Target: zc.Name}
			})
			g.emit()
		}
		byIf := func(r *ruleset.Rule) bool {
			return slices.ContainsFunc(r.Matches, func(m ruleset.Match) bool {
				return m.Kind == ruleset.IIFName || m.Kind == ruleset.OIFName
			})
		}
		for _, r := range tmp.Rules {
			if byIf(r) {
				t.base.Rules = append(t.base.Rules, r)
			}
		}
		for _, r := range tmp.Rules {
			if !byIf(r) {
				t.base.Rules = append(t.base.Rules, r)
			}
		}
	}
	one(c.forward, "forward: ct dnat", accept(ruleset.Match{Kind: ruleset.CtStatus, Values: []string{"dnat"}}))
	d := c.cfg.Defaults
	c.baseEnd(c.input, d.Input, d.LogDrops)
	c.baseEnd(c.forward, d.Forward, d.LogDrops)
	if c.outputFiltered() {
		c.baseEnd(c.output, d.Output, false)
	}
}

// baseEnd ends a base chain for traffic no zone claimed. The chain's
// policy agrees, but an explicit last rule counts what it decides.
func (c *compiler) baseEnd(ch *ruleset.Chain, a fwconfig.Action, logDrops bool) {
	if a != fwconfig.Accept && logDrops {
		one(ch, ch.Name+": log", c.logRule(string(a)+" "+ch.Name))
	}
	one(ch, ch.Name+": "+string(a), c.decide(&ruleset.Rule{Counter: true}, a))
}
