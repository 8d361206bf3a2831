package fwconfig

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/prefixes"
)

// Validate implements config.Validator: it reports every problem of the
// section at its key path.
func (c *Config) Validate(v *config.Checker) {
	site := v.Site()
	if site == nil {
		site = &config.Site{}
	}
	checkAction(v.Key("defaults").Key("input"), c.Defaults.Input)
	checkAction(v.Key("defaults").Key("forward"), c.Defaults.Forward)
	checkAction(v.Key("defaults").Key("output"), c.Defaults.Output)
	c.validateZones(v, site)
	c.validateServices(v.Key("services"))
	c.validatePolicies(v)
	c.validateSets(v.Key("sets"))
	c.validateRules(v, site)
	c.validateNAT(v.Key("nat"), site)
	c.validatePortForwards(v.Key("port_forwards"), site)
	c.validateBans(v.Key("bans"))
	c.validateLimits(v.Key("limits"))
	c.validateLog(v.Key("log"))
	c.validateOffload(v.Key("flow_offload"), site)
	if d := c.Confirm.DefaultTimeout.D(); d < time.Second || d > time.Hour {
		v.Key("confirm").Key("default_timeout").Errorf("must be between 1s and 1h, got %v", d)
	}
}

// ZoneNames returns the zones' names, sorted.
func (c *Config) ZoneNames() []string {
	names := make([]string, 0, len(c.Zones))
	for n := range c.Zones {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func checkAction(v *config.Checker, a Action) {
	switch a {
	case Accept, Drop, Reject:
	case "":
		v.Errorf("missing; use accept, drop or reject")
	default:
		v.Errorf("unknown action %q; use accept, drop or reject", a)
	}
}

// checkZone reports a name that is not a zone. extra are the reserved
// names also accepted there (any, router).
func (c *Config) checkZone(v *config.Checker, name string, extra ...string) bool {
	if _, ok := c.Zones[name]; ok || slices.Contains(extra, name) {
		return true
	}
	known := append(c.ZoneNames(), extra...)
	switch {
	case name == "":
		v.Errorf("missing; name a zone: %s", quoted(known))
	case slices.Contains([]string{Any, Router}, name):
		v.Errorf("%q is not allowed here; name a zone: %s", name, quoted(known))
	default:
		v.Errorf("unknown zone %q%s; firewall.zones has %s", name, config.DidYouMean(name, known), quoted(c.ZoneNames()))
	}
	return false
}

func (c *Config) checkZones(v *config.Checker, names []string, what string) {
	if len(names) == 0 {
		v.Errorf("no zones; name the zones %s applies to", what)
	}
	dup := repeats(names)
	for i, z := range names {
		c.checkZone(v.Index(i), z)
		if dup[i] {
			v.Index(i).Errorf("zone %q is listed twice", z)
		}
	}
}

func (c *Config) validateZones(v *config.Checker, site *config.Site) {
	zv := v.Key("zones")
	if len(c.Zones) == 0 {
		zv.Errorf("no zones; declare at least one, such as wan: {interfaces: [wan]}")
		return
	}
	type owner struct {
		zone string
		p    netip.Prefix
		at   *config.Checker
	}
	ifOwner := map[string]string{}
	var nets []owner
	for _, name := range c.ZoneNames() {
		z := c.Zones[name]
		v := zv.Key(name)
		switch {
		case name == Any || name == Router:
			v.Errorf("%q is reserved (rules use it for every zone and for the router itself); choose another name", name)
		case !validName(name):
			v.Errorf("invalid zone name %q; %s", name, nameRule)
		}
		if len(z.Interfaces) == 0 && len(z.Networks) == 0 {
			v.Errorf("zone %q has no interfaces and no networks; give it at least one", name)
		}
		for i, ifc := range z.Interfaces {
			iv := v.Key("interfaces").Index(i)
			ifname := Interface(site, ifc)
			if err := checkIfName(ifname, true); err != nil {
				iv.Errorf("%v", err)
				continue
			}
			if other, ok := ifOwner[ifname]; ok {
				if other == name {
					iv.Errorf("interface %q is listed twice", ifname)
				} else {
					iv.Errorf("interface %q is also in zone %q; an interface belongs to one zone", ifname, other)
				}
				continue
			}
			for o, oz := range ifOwner {
				if oz != name && (wildcardMatch(o, ifname) || wildcardMatch(ifname, o)) {
					iv.Errorf("interface %q overlaps %q of zone %q; an interface belongs to one zone", ifname, o, oz)
				}
			}
			ifOwner[ifname] = name
		}
		for i, ref := range z.Networks {
			nv := v.Key("networks").Index(i)
			ps, _ := ref.Prefixes(site)
			for _, p := range ps {
				if p.Addr().Is4In6() {
					nv.Errorf("%s is an IPv4-mapped IPv6 prefix; write the IPv4 prefix", p)
					continue
				}
				nets = append(nets, owner{name, p.Masked(), nv})
			}
		}
		checkAction(v.Key("input"), z.Input)
		checkAction(v.Key("forward"), z.Forward)
		checkAction(v.Key("output"), z.Output)
		if z.Intra != "" {
			checkAction(v.Key("intra"), z.Intra)
		}
		dup := repeats(z.Services)
		for i, s := range z.Services {
			sv := v.Key("services").Index(i)
			svc, err := c.Service(s)
			switch {
			case err != nil:
				sv.Errorf("%v", err)
			case dup[i]:
				sv.Errorf("service %q is listed twice", s)
			default:
				if fw, what, ok := c.forwarded([]string{name}, svc); ok {
					p := c.PortForwards[fw]
					sv.Errorf("%s forwarded to %s by firewall.port_forwards[%d] (%s): those connections go to the host, never to the router, and a port forward is open without a service; remove it here",
						what, p.To, fw, p.Name)
				}
			}
		}
		for i, to := range z.ForwardTo {
			c.checkZone(v.Key("forward_to").Index(i), to)
		}
	}
	// Networks overlap when one holds the other. Sorted by start (and
	// the shorter first), a network overlaps an earlier one exactly when
	// it starts before the furthest end seen so far.
	slices.SortStableFunc(nets, func(a, b owner) int { return prefixes.Compare(a.p, b.p) })
	var reach *owner
	for i := range nets {
		n := &nets[i]
		if reach != nil && reach.p.Addr().BitLen() == n.p.Addr().BitLen() && reach.p.Contains(n.p.Addr()) {
			if reach.zone != n.zone || reach.p != n.p {
				n.at.Errorf("network %s overlaps %s of zone %q; a network belongs to one zone", n.p, reach.p, reach.zone)
			}
			continue
		}
		reach = n
	}
}

// wildcardMatch reports whether pattern (which may end in *) matches the
// interface name.
func wildcardMatch(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(strings.TrimSuffix(name, "*"), p)
	}
	return false
}

func (c *Config) validateServices(v *config.Checker) {
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		d := c.Services[name]
		sv := v.Key(name)
		if !validName(name) {
			sv.Errorf("invalid service name %q; %s", name, nameRule)
		}
		if !slices.Contains(PortProtos, d.Proto) {
			sv.Key("proto").Errorf("unknown protocol %q; use tcp, udp or both", d.Proto)
		}
		if len(d.Ports) == 0 {
			sv.Key("ports").Errorf("no ports; list ports or ranges such as [8080, 8000-8010]")
		}
		for i, p := range d.Ports {
			if p.IsZero() {
				sv.Key("ports").Index(i).Errorf("empty port")
			}
		}
	}
}

func (c *Config) validatePolicies(v *config.Checker) {
	seen := map[[2]string]string{}
	add := func(pv *config.Checker, from, to, place string) {
		if from == to {
			pv.Errorf("forwarding from zone %s to itself is firewall.zones.%s.intra (accept, drop or reject), not a policy", from, from)
			return
		}
		k := [2]string{from, to}
		if prev, dup := seen[k]; dup {
			pv.Errorf("forwarding from %s to %s is already set by %s", from, to, prev)
			return
		}
		seen[k] = place
	}
	for _, name := range c.ZoneNames() {
		for i, to := range c.Zones[name].ForwardTo {
			add(v.Key("zones").Key(name).Key("forward_to").Index(i), name, to, fmt.Sprintf("firewall.zones.%s.forward_to[%d]", name, i))
		}
	}
	for i, p := range c.Policies {
		pv := v.Key("policies").Index(i)
		okFrom := c.checkZone(pv.Key("from"), p.From)
		okTo := c.checkZone(pv.Key("to"), p.To)
		checkAction(pv.Key("action"), p.Action)
		if okFrom && okTo {
			add(pv, p.From, p.To, fmt.Sprintf("firewall.policies[%d]", i))
		}
	}
}

// Reserved set names: the ban set and meters are the compiler's own.
const (
	BanSet      = "ban"
	meterPrefix = "meter_"
)

func (c *Config) validateSets(v *config.Checker) {
	for _, name := range slices.Sorted(maps.Keys(c.Sets)) {
		s := c.Sets[name]
		sv := v.Key(name)
		switch {
		case !validName(name):
			sv.Errorf("invalid set name %q; %s", name, nameRule)
		case name == BanSet || strings.HasPrefix(name, meterPrefix):
			sv.Errorf("set name %q is reserved (the ban set and meters use it); choose another", name)
		}
		if len(s.Entries) == 0 && s.File == "" {
			sv.Errorf("set %q is empty; give entries or a file", name)
		}
		if s.File != "" && !filepath.IsAbs(s.File) {
			sv.Key("file").Errorf("must be an absolute path, got %q", s.File)
		}
		for i, e := range s.Entries {
			checkMapped(sv.Key("entries").Index(i), e, v.Site())
		}
	}
}

func checkMapped(v *config.Checker, ref config.NetRef, site *config.Site) {
	if site == nil {
		return
	}
	ps, _ := ref.Prefixes(site)
	for _, p := range ps {
		if p.Addr().Is4In6() {
			v.Errorf("%s is an IPv4-mapped IPv6 address; write the IPv4 address", p)
		}
	}
}

func (c *Config) checkSet(v *config.Checker, name string) {
	if _, ok := c.Sets[name]; !ok {
		v.Errorf("unknown set %q%s; firewall.sets has %s", name, config.DidYouMean(name, slices.Sorted(maps.Keys(c.Sets))), quoted(slices.Sorted(maps.Keys(c.Sets))))
	}
}

// families says which address families a packet may have.
type families struct{ ip, ip6 bool }

func (f families) and(g families) families { return families{f.ip && g.ip, f.ip6 && g.ip6} }

// ruleFamilies returns the families a rule can match given its addresses,
// protocol and ICMP types, and what limits them, for messages.
func (c *Config) ruleFamilies(r *Rule, site *config.Site) (families, string) {
	f, why := families{true, true}, ""
	limit := func(g families, reason string) {
		if f.and(g) != f {
			why = strings.TrimPrefix(why+" and "+reason, " and ")
		}
		f = f.and(g)
	}
	if len(r.Source) > 0 {
		v4, v6 := Prefixes(site, r.Source)
		limit(families{len(v4) > 0, len(v6) > 0}, "source has "+famText(len(v4) > 0, len(v6) > 0))
	}
	if len(r.Destination) > 0 {
		v4, v6 := Prefixes(site, r.Destination)
		limit(families{len(v4) > 0, len(v6) > 0}, "destination has "+famText(len(v4) > 0, len(v6) > 0))
	}
	switch {
	case r.Proto == "icmp" || len(r.ICMPTypes) > 0 && len(r.ICMPv6Types) == 0:
		limit(families{ip: true}, "ICMP is IPv4 only")
	case r.Proto == "icmpv6" || len(r.ICMPv6Types) > 0 && len(r.ICMPTypes) == 0:
		limit(families{ip6: true}, "ICMPv6 is IPv6 only")
	}
	return f, why
}

func famText(v4, v6 bool) string {
	switch {
	case v4 && v6:
		return "IPv4 and IPv6"
	case v4:
		return "IPv4 only"
	case v6:
		return "IPv6 only"
	}
	return "no address"
}

func (c *Config) validateRules(v *config.Checker, site *config.Site) {
	names := map[string]int{}
	for i := range c.Rules {
		r := &c.Rules[i]
		rv := v.Key("rules").Index(i)
		switch prev, dup := names[r.Name]; {
		case r.Name == "":
			rv.Key("name").Errorf("missing; every rule needs a name (its ID, counters and logs use it)")
		case !validName(r.Name):
			rv.Key("name").Errorf("invalid rule name %q; %s", r.Name, nameRule)
		case dup:
			rv.Key("name").Errorf("rule name %q is also used by firewall.rules[%d]; names must be unique", r.Name, prev)
		default:
			names[r.Name] = i
		}
		checkAction(rv.Key("action"), r.Action)
		c.checkZone(rv.Key("from"), r.From, Any, Router)
		c.checkZone(rv.Key("to"), r.To, Any, Router)
		if r.From == Router && r.To == Router {
			rv.Key("to").Errorf("a rule from router to router matches nothing (loopback is always accepted); name a zone or any")
		}
		if len(r.Source) > 0 && r.SourceSet != "" {
			rv.Key("source_set").Errorf("give source or source_set, not both")
		}
		if len(r.Destination) > 0 && r.DestinationSet != "" {
			rv.Key("destination_set").Errorf("give destination or destination_set, not both")
		}
		if r.SourceSet != "" {
			c.checkSet(rv.Key("source_set"), r.SourceSet)
		}
		if r.DestinationSet != "" {
			c.checkSet(rv.Key("destination_set"), r.DestinationSet)
		}
		for i, ref := range r.Source {
			checkMapped(rv.Key("source").Index(i), ref, site)
		}
		for i, ref := range r.Destination {
			checkMapped(rv.Key("destination").Index(i), ref, site)
		}
		c.validateRuleProto(rv, r)
		c.checkRuleToForward(rv, r)
		if r.Limit != nil && r.Limit.Rate.IsZero() {
			rv.Key("limit").Key("rate").Errorf("missing; write a rate such as 10/second")
		}
		if c.resolves(r, site) {
			if f, why := c.ruleFamilies(r, site); !f.ip && !f.ip6 {
				rv.Errorf("rule %q can match no packet: %s", r.Name, why)
			}
		}
	}
}

// checkRuleToForward reports a rule to the router for ports that a port
// forward from the rule's zone sends to a host: the rule would never see
// that traffic.
func (c *Config) checkRuleToForward(rv *config.Checker, r *Rule) {
	if r.To != Router || r.From == Any || r.From == Router {
		return
	}
	var svcs []Service
	key := "ports"
	switch {
	case len(r.Services) > 0:
		key = "services"
		for _, ref := range r.Services {
			if s, err := c.Service(ref); err == nil {
				svcs = append(svcs, s)
			}
		}
	case len(r.Ports) > 0 && slices.Contains(PortProtos, r.Proto):
		svcs = []Service{{Proto: r.Proto, Ports: r.Ports}}
	}
	if fw, what, ok := c.forwarded([]string{r.From}, svcs...); ok {
		p := c.PortForwards[fw]
		rv.Key(key).Errorf("%s forwarded to %s by firewall.port_forwards[%d] (%s): that traffic goes to the host and never reaches a rule to the router; match it on its way there (to: the host's zone, destination: %s, the host's port), or use the forward's allow_from",
			what, p.To, fw, p.Name, p.To)
	}
}

// resolves reports whether a rule's services and networks all resolve,
// so that its families can be told (else their own errors say why).
func (c *Config) resolves(r *Rule, site *config.Site) bool {
	for _, s := range r.Services {
		if _, err := c.Service(s); err != nil {
			return false
		}
	}
	for _, ref := range append(slices.Clone(r.Source), r.Destination...) {
		if _, ok := ref.Prefixes(site); !ok {
			return false
		}
	}
	return true
}

func (c *Config) validateRuleProto(rv *config.Checker, r *Rule) {
	if len(r.Services) > 0 {
		if r.Proto != "" || len(r.Ports) > 0 {
			rv.Key("services").Errorf("give services, or proto with ports, not both")
		}
		if len(r.ICMPTypes) > 0 || len(r.ICMPv6Types) > 0 {
			rv.Key("services").Errorf("give services or ICMP types, not both")
		}
		dup := repeats(r.Services)
		for i, s := range r.Services {
			if _, err := c.Service(s); err != nil {
				rv.Key("services").Index(i).Errorf("%v", err)
			} else if dup[i] {
				rv.Key("services").Index(i).Errorf("service %q is listed twice", s)
			}
		}
	}
	if r.Proto != "" && !slices.Contains(RuleProtos, r.Proto) {
		rv.Key("proto").Errorf("unknown protocol %q; use %s", r.Proto, strings.Join(RuleProtos, ", "))
	}
	if len(r.Ports) > 0 && !slices.Contains(PortProtos, r.Proto) {
		rv.Key("ports").Errorf("ports need proto tcp, udp or both")
	}
	for i, p := range r.Ports {
		if p.IsZero() {
			rv.Key("ports").Index(i).Errorf("empty port")
		}
	}
	if (len(r.ICMPTypes) > 0 || len(r.ICMPv6Types) > 0) && r.Proto != "" && r.Proto != "icmp" && r.Proto != "icmpv6" {
		rv.Key("proto").Errorf("proto %s does not go with ICMP types; leave proto out", r.Proto)
	}
	if r.Proto == "icmp" && len(r.ICMPv6Types) > 0 {
		rv.Key("icmpv6_types").Errorf("ICMPv6 types with proto icmp; use proto icmpv6, or leave proto out")
	}
	if r.Proto == "icmpv6" && len(r.ICMPTypes) > 0 {
		rv.Key("icmp_types").Errorf("ICMP types with proto icmpv6; use proto icmp, or leave proto out")
	}
	for i, t := range r.ICMPTypes {
		if !slices.Contains(ICMPTypes, t) {
			rv.Key("icmp_types").Index(i).Errorf("unknown ICMP type %q%s; use one of %s", t, config.DidYouMean(t, ICMPTypes), strings.Join(ICMPTypes, ", "))
		}
	}
	for i, t := range r.ICMPv6Types {
		if !slices.Contains(ICMPv6Types, t) {
			rv.Key("icmpv6_types").Index(i).Errorf("unknown ICMPv6 type %q%s; use one of %s", t, config.DidYouMean(t, ICMPv6Types), strings.Join(ICMPv6Types, ", "))
		}
	}
}

func (c *Config) validateNAT(v *config.Checker, site *config.Site) {
	for _, key := range []string{"masquerade", "masquerade6"} {
		list := c.NAT.Masquerade
		if key == "masquerade6" {
			list = c.NAT.Masquerade6
		}
		dup := repeats(list)
		for i, z := range list {
			c.checkZone(v.Key(key).Index(i), z)
			if dup[i] {
				v.Key(key).Index(i).Errorf("zone %q is listed twice", z)
			}
		}
	}
	snats := map[string]int{}
	for i, s := range c.NAT.SNAT {
		sv := v.Key("snat").Index(i)
		c.checkZone(sv.Key("zone"), s.Zone)
		if !checkHost(sv.Key("to"), s.To) {
			continue
		}
		k := s.Zone + " " + s.To.String()
		if prev, dup := snats[k]; dup {
			sv.Errorf("zone %s already has an SNAT to %s at firewall.nat.snat[%d]; list both sources there", s.Zone, s.To, prev)
		}
		snats[k] = i
		if len(s.Source) > 0 {
			v4, v6 := Prefixes(site, s.Source)
			if s.To.Is4() && len(v4) == 0 || s.To.Is6() && len(v6) == 0 {
				sv.Key("source").Errorf("no %s source; SNAT to %s rewrites that family only", famName(s.To), s.To)
			}
		}
	}
	externals := map[netip.Addr]int{}
	for i, o := range c.NAT.OneToOne {
		ov := v.Key("one_to_one").Index(i)
		c.checkZone(ov.Key("zone"), o.Zone)
		okExt := checkHost(ov.Key("external"), o.External)
		okInt := checkHost(ov.Key("internal"), o.Internal)
		if !okExt || !okInt {
			continue
		}
		if o.External.Is4() != o.Internal.Is4() {
			ov.Key("internal").Errorf("%s and external %s are of different families", o.Internal, o.External)
		}
		if prev, dup := externals[o.External]; dup {
			ov.Key("external").Errorf("%s is also mapped by firewall.nat.one_to_one[%d]", o.External, prev)
		}
		externals[o.External] = i
	}
}

// isHost reports whether checkHost accepts a.
func isHost(a netip.Addr) bool {
	return a.IsValid() && !a.Is4In6() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback()
}

// checkHost reports a missing, unspecified, multicast or IPv4-mapped
// host address.
func checkHost(v *config.Checker, a netip.Addr) bool {
	switch {
	case !a.IsValid():
		v.Errorf("missing; give a host address such as 192.168.1.10")
	case a.Is4In6():
		v.Errorf("%s is an IPv4-mapped IPv6 address; write the IPv4 address", a)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
		v.Errorf("%s is not a host address", a)
	default:
		return true
	}
	return false
}

func famName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// HostNetwork is the most specific prefix of site.networks or of a zone's
// networks that holds addr: the segment a hairpinned client shares with
// the host. It reports false when no network holds addr.
func (c *Config) HostNetwork(site *config.Site, addr netip.Addr) (netip.Prefix, bool) {
	var best netip.Prefix
	consider := func(ps []netip.Prefix) {
		for _, p := range ps {
			if p.Contains(addr) && (!best.IsValid() || p.Bits() > best.Bits()) {
				best = p
			}
		}
	}
	if site != nil {
		for _, name := range slices.Sorted(maps.Keys(site.Networks)) {
			consider(site.Networks[name])
		}
	}
	for _, name := range c.ZoneNames() {
		v4, v6 := Prefixes(site, c.Zones[name].Networks)
		consider(v4)
		consider(v6)
	}
	return best, best.IsValid()
}

func (c *Config) validatePortForwards(v *config.Checker, site *config.Site) {
	names := map[string]int{}
	for i := range c.PortForwards {
		p := &c.PortForwards[i]
		pv := v.Index(i)
		switch prev, dup := names[p.Name]; {
		case p.Name == "":
			pv.Key("name").Errorf("missing; every port forward needs a name (its rule IDs use it)")
		case !validName(p.Name):
			pv.Key("name").Errorf("invalid name %q; %s", p.Name, nameRule)
		case dup:
			pv.Key("name").Errorf("port forward name %q is also used by firewall.port_forwards[%d]", p.Name, prev)
		default:
			names[p.Name] = i
		}
		c.checkZone(pv.Key("from_zone"), p.FromZone)
		if !slices.Contains(PortProtos, p.Proto) {
			pv.Key("proto").Errorf("unknown protocol %q; use tcp, udp or both", p.Proto)
		}
		if p.Port.IsZero() {
			pv.Key("port").Errorf("missing; give the router's port or range, such as 8080 or 8000-8010")
		}
		hostOK := checkHost(pv.Key("to"), p.To)
		if !p.ToPort.IsZero() && !p.Port.IsZero() && p.ToPort.Len() != p.Port.Len() {
			switch {
			case p.Port.Len() == 1:
				pv.Key("to_port").Errorf("one port (%s) cannot go to the range %s; give one port", p.Port, p.ToPort)
			default:
				pv.Key("to_port").Errorf("range %s has %d ports but port %s has %d; give a range of the same length", p.ToPort, p.ToPort.Len(), p.Port, p.Port.Len())
			}
		}
		if !p.ToPort.IsZero() && p.ToPort.From != p.Port.From && p.Port.Len() > MaxShiftedRange {
			pv.Key("to_port").Errorf("a range moved to other ports is limited to %d ports (each gets its own rule); forward the range to the same ports (leave to_port out) or split it", MaxShiftedRange)
		}
		if !hostOK {
			continue
		}
		if len(p.AllowFrom) > 0 {
			v4, v6 := Prefixes(site, p.AllowFrom)
			if p.To.Is4() && len(v4) == 0 || p.To.Is6() && len(v6) == 0 {
				pv.Key("allow_from").Errorf("no %s network; the forward goes to %s", famName(p.To), p.To)
			}
			for j, ref := range p.AllowFrom {
				checkMapped(pv.Key("allow_from").Index(j), ref, site)
			}
		}
		if p.Hairpin {
			if _, ok := c.HostNetwork(site, p.To); !ok {
				pv.Key("hairpin").Errorf("hairpin needs the network %s is on: add it to site.networks (or the inside zone's networks), or set hairpin: false", p.To)
			}
		}
	}
	c.checkForwardOverlap(v)
}

// checkForwardOverlap reports two forwards of one port from one zone
// (the first would win), naming both. Sorted by zone, family, protocol
// and first port, a forward overlaps an earlier one exactly when its
// first port is at most the furthest last port seen in its group.
func (c *Config) checkForwardOverlap(v *config.Checker) {
	type span struct {
		zone     string
		v4       bool
		proto    string
		from, to uint16
		idx      int
	}
	var spans []span
	for i, p := range c.PortForwards {
		if p.Port.IsZero() || !isHost(p.To) {
			continue
		}
		for _, proto := range []string{"tcp", "udp"} {
			if p.Proto == proto || p.Proto == "both" {
				spans = append(spans, span{p.FromZone, p.To.Is4(), proto, p.Port.From, p.Port.To, i})
			}
		}
	}
	slices.SortStableFunc(spans, func(a, b span) int {
		return cmp.Or(strings.Compare(a.zone, b.zone), boolCmp(a.v4, b.v4), strings.Compare(a.proto, b.proto), int(a.from)-int(b.from), a.idx-b.idx)
	})
	reported := map[int]bool{}
	var reach *span
	for i := range spans {
		s := &spans[i]
		if reach == nil || reach.zone != s.zone || reach.v4 != s.v4 || reach.proto != s.proto {
			reach = s
			continue
		}
		if s.from <= reach.to && s.idx != reach.idx {
			first, later := min(s.idx, reach.idx), max(s.idx, reach.idx)
			if !reported[later] {
				reported[later] = true
				p, q := c.PortForwards[later], c.PortForwards[first]
				name := ""
				if q.Name != "" {
					name = " (" + q.Name + ")"
				}
				v.Index(later).Key("port").Errorf("port %s is also forwarded from zone %s by firewall.port_forwards[%d]%s", p.Port, p.FromZone, first, name)
			}
		}
		if s.to > reach.to {
			reach = s
		}
	}
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// MaxShiftedRange bounds a port range forwarded to other ports: each port
// gets a rule of its own.
const MaxShiftedRange = 64

func (c *Config) validateBans(v *config.Checker) {
	c.checkZones(v.Key("zones"), c.Bans.Zones, "bans")
	d, m := c.Bans.DefaultTimeout.D(), c.Bans.MaxTimeout.D()
	if d <= 0 {
		v.Key("default_timeout").Errorf("must be positive")
	}
	if m != 0 && m < d {
		v.Key("max_timeout").Errorf("%v is shorter than default_timeout %v", m, d)
	}
	dup := repeats(c.Bans.Static)
	for i, a := range c.Bans.Static {
		if checkHost(v.Key("static").Index(i), a) && dup[i] {
			v.Key("static").Index(i).Errorf("%s is listed twice", a)
		}
	}
}

func (c *Config) validateLimits(v *config.Checker) {
	names := map[string]int{}
	for i := range c.Limits.PerSource {
		l := &c.Limits.PerSource[i]
		lv := v.Key("per_source").Index(i)
		switch {
		case l.Service != "" && l.PortForward != "":
			lv.Key("port_forward").Errorf("give service (to the router) or port_forward, not both")
		case l.PortForward != "":
			c.validateForwardLimit(lv, l)
		case l.Service == "":
			lv.Key("service").Errorf("missing; name the service to limit, such as ssh or 8080/tcp, or a port forward with port_forward")
		default:
			if svc, err := c.Service(l.Service); err != nil {
				lv.Key("service").Errorf("%v", err)
			} else if fw, what, ok := c.forwardedFromAll(l.Zones, svc); ok {
				p := c.PortForwards[fw]
				lv.Key("service").Errorf("%s forwarded to %s by firewall.port_forwards[%d] (%s): those connections go to the host through the forward path and never reach this limit, which applies to the router's own services; limit the forward with port_forward: %s",
					what, p.To, fw, p.Name, p.Name)
			}
		}
		name, nv := l.Name, lv.Key("name")
		switch {
		case name != "":
		case l.Service != "":
			name, nv = l.Service, lv.Key("service")
		default:
			name, nv = l.PortForward, lv.Key("port_forward")
		}
		switch prev, dup := names[name]; {
		case name == "":
		case !validName(name) || len(name) > 24:
			nv.Errorf("limit name %q is not a valid name: use up to 24 lowercase letters, digits, - and _, starting with a letter (give name: when the service is PORT/PROTO)", name)
		case dup:
			nv.Errorf("limit name %q is also used by firewall.limits.per_source[%d]; give each a name", name, prev)
		default:
			names[name] = i
		}
		if l.Rate.IsZero() {
			lv.Key("rate").Errorf("missing; write a rate such as 10/minute")
		}
		c.checkZones(lv.Key("zones"), l.Zones, "the limit")
	}
	if s := c.Limits.SYNFlood; s != nil {
		sv := v.Key("syn_flood")
		if s.Rate.IsZero() {
			sv.Key("rate").Errorf("missing; write a rate such as 200/second")
		}
		c.checkZones(sv.Key("zones"), s.Zones, "the SYN flood limit")
	}
}

// MeterName is the base name of a per-source limit's meter sets.
func (l *SourceLimit) MeterName() string {
	switch {
	case l.Name != "":
		return meterPrefix + l.Name
	case l.Service != "":
		return meterPrefix + l.Service
	}
	return meterPrefix + l.PortForward
}

// ForwardNamed returns the index of the port forward called name.
func (c *Config) ForwardNamed(name string) (int, bool) {
	for i, p := range c.PortForwards {
		if p.Name == name {
			return i, true
		}
	}
	return 0, false
}

// validateForwardLimit checks a per-source limit on a port forward.
func (c *Config) validateForwardLimit(lv *config.Checker, l *SourceLimit) {
	i, ok := c.ForwardNamed(l.PortForward)
	if !ok {
		var known []string
		for _, p := range c.PortForwards {
			if p.Name != "" {
				known = append(known, p.Name)
			}
		}
		lv.Key("port_forward").Errorf("unknown port forward %q%s; firewall.port_forwards has %s", l.PortForward, config.DidYouMean(l.PortForward, known), quoted(known))
		return
	}
	// Without hairpin only the forward's own zone reaches it.
	if p := c.PortForwards[i]; !p.Hairpin && len(l.Zones) > 0 && !slices.Contains(l.Zones, p.FromZone) {
		lv.Key("zones").Errorf("port forward %s takes connections from zone %s only (hairpin: false), so a limit on sources from %s would never apply; add %s",
			p.Name, p.FromZone, strings.Join(l.Zones, ", "), p.FromZone)
	}
}

// forwarded reports whether port forwards from zones send every port of
// svcs to hosts, so that the router's input never sees any of it (a
// limit, a service or a rule for those ports can do nothing): the index
// of the first forward involved, and what is forwarded ("8080/tcp from
// zone wan is"). Where some
// ports are the router's own, the item does something, and stands.
func (c *Config) forwarded(zones []string, svcs ...Service) (int, string, bool) {
	first, covered := -1, false
	var ports []string
	for _, s := range svcs {
		for _, proto := range []string{"tcp", "udp"} {
			if s.Proto != proto && s.Proto != "both" {
				continue
			}
			for _, r := range s.Ports {
				i, ok := c.forwardsCover(zones, proto, r)
				if !ok {
					return 0, "", false
				}
				if first < 0 || i < first {
					first = i
				}
				covered = true
				ports = append(ports, r.String()+"/"+proto)
			}
		}
	}
	verb := "is"
	if len(ports) > 1 {
		verb = "are"
	}
	return first, strings.Join(ports, ", ") + " from zone " + strings.Join(zones, ", ") + " " + verb, covered
}

// forwardedFromAll is forwarded for each of zones: whether no zone's
// traffic to svc reaches the router. It reports the first zone's.
func (c *Config) forwardedFromAll(zones []string, svc Service) (int, string, bool) {
	first, what := 0, ""
	for i, z := range zones {
		fw, w, ok := c.forwarded([]string{z}, svc)
		if !ok {
			return 0, "", false
		}
		if i == 0 {
			first, what = fw, w
		}
	}
	return first, what, len(zones) > 0
}

// forwardsCover reports whether forwards of proto from zones take every
// port of r, and the first of them.
func (c *Config) forwardsCover(zones []string, proto string, r PortRange) (int, bool) {
	type span struct {
		from, to uint16
		idx      int
	}
	var spans []span
	for i, p := range c.PortForwards {
		if !p.Port.IsZero() && slices.Contains(zones, p.FromZone) && (p.Proto == proto || p.Proto == "both") &&
			p.Port.From <= r.To && r.From <= p.Port.To {
			spans = append(spans, span{p.Port.From, p.Port.To, i})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return int(a.from) - int(b.from) })
	next, first := uint32(r.From), -1
	for _, sp := range spans {
		if uint32(sp.from) > next {
			break
		}
		if first < 0 || sp.idx < first {
			first = sp.idx
		}
		next = max(next, uint32(sp.to)+1)
	}
	return first, first >= 0 && next > uint32(r.To)
}

func (c *Config) validateLog(v *config.Checker) {
	if c.Log.Rate.IsZero() {
		v.Key("rate").Errorf("missing; write a rate such as 10/minute")
	}
	if c.Log.To != LogToKernel && c.Log.To != LogToDaemon {
		v.Key("to").Errorf("unknown log target %q; use kernel (the kernel log) or daemon (edge-firewall's own log, through NFLOG group firewall.log.group)", c.Log.To)
	}
	if !slices.Contains(LogLevels, c.Log.Level) {
		v.Key("level").Errorf("unknown level %q; use %s", c.Log.Level, strings.Join(LogLevels, ", "))
	}
}

// OffloadDevices returns the flowtable's devices: the configured ones, or
// every interface of every zone that is not a wildcard.
func (c *Config) OffloadDevices(site *config.Site) []string {
	if len(c.FlowOffload.Devices) > 0 {
		return Interfaces(site, c.FlowOffload.Devices)
	}
	var out []string
	for _, name := range c.ZoneNames() {
		for _, ifname := range Interfaces(site, c.Zones[name].Interfaces) {
			if !strings.HasSuffix(ifname, "*") && !slices.Contains(out, ifname) {
				out = append(out, ifname)
			}
		}
	}
	return out
}

func (c *Config) validateOffload(v *config.Checker, site *config.Site) {
	for i, d := range c.FlowOffload.Devices {
		if err := checkIfName(Interface(site, d), false); err != nil {
			v.Key("devices").Index(i).Errorf("%v (flowtables take no wildcards)", err)
		}
	}
	if c.FlowOffload.Enabled && len(c.OffloadDevices(site)) == 0 {
		v.Key("devices").Errorf("no devices to offload; list them, or give the zones interfaces")
	}
}

// repeats reports, for each item, whether an earlier item equals it.
func repeats[T comparable](items []T) []bool {
	seen := make(map[T]bool, len(items))
	out := make([]bool, len(items))
	for i, it := range items {
		out[i] = seen[it]
		seen[it] = true
	}
	return out
}
