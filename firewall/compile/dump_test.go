package compile

import (
	"fmt"
	"strings"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// dump writes a ruleset as compact, nft-like text for golden files: one
// line per set element and rule, each rule led by its ID. It is the
// compiler's own view (package nft renders the real syntax); every field
// of the ruleset shows, so a golden diff catches any change.
func dump(rs *ruleset.Ruleset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s\n", rs.TableFamily(), rs.Table)
	if ft := rs.Flowtable; ft != nil {
		fmt.Fprintf(&b, "flowtable %s priority %d devices %s\n", ft.Name, ft.Priority, strings.Join(ft.Devices, ","))
	}
	for _, s := range rs.Sets {
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{s.Interval, "interval"}, {s.Timeout, "timeout"}, {s.Dynamic, "dynamic"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		fmt.Fprintf(&b, "\nset %s type %s", s.Name, s.Type)
		if len(flags) > 0 {
			fmt.Fprintf(&b, " flags %s", strings.Join(flags, ","))
		}
		if s.Size > 0 {
			fmt.Fprintf(&b, " size %d", s.Size)
		}
		fmt.Fprintf(&b, " comment %q\n", s.Comment)
		for _, e := range s.Elements {
			b.WriteString("  element ")
			if e.Prefix.IsValid() {
				b.WriteString(e.Prefix.String())
			} else {
				b.WriteString(portText(ruleset.PortRange{From: e.Port, To: max(e.Port, e.PortEnd)}))
			}
			if e.Timeout > 0 {
				fmt.Fprintf(&b, " timeout %v", e.Timeout)
			}
			if e.Comment != "" {
				fmt.Fprintf(&b, " comment %q", e.Comment)
			}
			b.WriteByte('\n')
		}
	}
	for _, c := range rs.Chains {
		fmt.Fprintf(&b, "\nchain %s", c.Name)
		if c.Hook != "" {
			fmt.Fprintf(&b, " { type %s hook %s priority %d; policy %s; }", c.Type, c.Hook, c.Priority, c.Policy)
		}
		b.WriteByte('\n')
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "  [%s]", r.ID)
			for _, m := range r.Matches {
				b.WriteString(" " + matchText(m))
			}
			b.WriteString(stmtText(r))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func matchText(m ruleset.Match) string {
	op := " "
	if m.Negate {
		op = " != "
	}
	switch m.Kind {
	case ruleset.IIFName, ruleset.OIFName:
		return string(m.Kind) + op + list(quoteAll(m.Names))
	case ruleset.SAddr, ruleset.DAddr:
		if m.Set != "" {
			return string(m.Family) + " " + string(m.Kind) + op + "@" + m.Set
		}
		ps := make([]string, len(m.Prefixes))
		for i, p := range m.Prefixes {
			ps[i] = p.String()
		}
		return string(m.Family) + " " + string(m.Kind) + op + list(ps)
	case ruleset.L4Proto:
		return "meta l4proto" + op + list(m.Protos)
	case ruleset.DPort, ruleset.SPort:
		ps := make([]string, len(m.Ports))
		for i, p := range m.Ports {
			ps[i] = portText(p)
		}
		proto := "th"
		if len(m.Protos) > 0 {
			proto = m.Protos[0]
		}
		return proto + " " + string(m.Kind) + op + list(ps)
	case ruleset.CtState:
		return "ct state" + op + strings.Join(m.Values, ",")
	case ruleset.CtStatus:
		return "ct status" + op + strings.Join(m.Values, ",")
	case ruleset.FibDAddrLocal:
		return "fib daddr type" + op + "local"
	case ruleset.ICMPType:
		return "icmp type" + op + list(m.Values)
	case ruleset.ICMPv6Type:
		return "icmpv6 type" + op + list(m.Values)
	case ruleset.NFProto:
		return "meta nfproto" + op + list(m.Values)
	}
	return fmt.Sprintf("?%+v", m)
}

func stmtText(r *ruleset.Rule) string {
	var b strings.Builder
	if m := r.Meter; m != nil {
		fmt.Fprintf(&b, " add @%s { %s saddr %s }", m.Set, m.Family, limitText(m.Limit))
	}
	if r.Limit != nil {
		b.WriteString(" " + limitText(*r.Limit))
	}
	if r.Counter {
		b.WriteString(" counter")
	}
	if l := r.Log; l != nil {
		fmt.Fprintf(&b, " log prefix %q", l.Prefix)
		if l.Level != "" {
			b.WriteString(" level " + l.Level)
		}
	}
	if n := r.NAT; n != nil {
		b.WriteString(" " + string(n.Kind))
		if n.Family != "" {
			b.WriteString(" " + string(n.Family) + " to " + n.Addr.String())
			if n.Port != 0 {
				fmt.Fprintf(&b, ":%s", portText(ruleset.PortRange{From: n.Port, To: max(n.Port, n.PortEnd)}))
			}
		}
	}
	if r.Offload {
		b.WriteString(" flow add @" + "ft")
	}
	if r.Verdict != "" {
		b.WriteString(" " + string(r.Verdict))
		if r.Target != "" {
			b.WriteString(" " + r.Target)
		}
		if r.RejectWith != ruleset.RejectICMP {
			b.WriteString(" with " + string(r.RejectWith))
		}
	}
	return b.String()
}

func limitText(l ruleset.Limit) string {
	s := "limit rate "
	if l.Over {
		s += "over "
	}
	s += fmt.Sprintf("%d/%s", l.Rate, l.Unit)
	if l.Burst > 0 {
		s += fmt.Sprintf(" burst %d packets", l.Burst)
	}
	return s
}

func portText(p ruleset.PortRange) string {
	if p.From == p.To {
		return fmt.Sprint(p.From)
	}
	return fmt.Sprintf("%d-%d", p.From, p.To)
}

func list(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return "{ " + strings.Join(items, ", ") + " }"
}

func quoteAll(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return q
}
