// Package ruleset is the intermediate form of edge's nftables library:
// the nftables concepts the daemons use (one table of sets, chains and
// rules, and a flowtable) as plain data. edge-firewall's compiler builds
// a Ruleset from the config, edge-vpn its access table, edge-lb will
// build its DNAT maps; package nft checks it, renders it as nft text
// (for -render, diffs and golden tests) and applies it over netlink.
// Keeping both on one form is what lets `edgectl fw diff` show exactly
// what an apply would do.
package ruleset

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Ruleset is one whole table, as the daemon that owns it declares it.
type Ruleset struct {
	// Family is the table's family. The zero value means INet, the only
	// family package nft builds tables of (see Family).
	Family Family
	// Table is the table's name ("edge", "edge_vpn").
	Table string
	// Sets come before chains in the table, as nft lists them.
	Sets   []*Set
	Chains []*Chain
	// Flowtable is the offload fast path, or nil.
	Flowtable *Flowtable
}

// Family is an nftables family: of a table (ip, ip6, inet), or of the
// addresses an address match, a meter or a NAT statement reads (ip or
// ip6).
type Family string

// Families.
const (
	IP   Family = "ip"
	IP6  Family = "ip6"
	INet Family = "inet"
)

// FamilyOf is the family of a's addresses: IP or IP6.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IP
	}
	return IP6
}

// NFProto is the meta nfproto value of an address family: "ipv4" for
// IP, "ipv6" for IP6, "" for any other.
func (f Family) NFProto() string {
	switch f {
	case IP:
		return "ipv4"
	case IP6:
		return "ipv6"
	}
	return ""
}

// TableFamily is r's table family: r.Family, or INet when that is unset.
func (r *Ruleset) TableFamily() Family {
	if r.Family == "" {
		return INet
	}
	return r.Family
}

// SetType is the type of a set's keys.
type SetType string

// Set types.
const (
	IPv4Addr    SetType = "ipv4_addr"
	IPv6Addr    SetType = "ipv6_addr"
	InetService SetType = "inet_service"
)

// Set is a named set.
type Set struct {
	Name string
	Type SetType
	// Interval sets hold prefixes (and ranges); others single keys.
	Interval bool
	// Timeout lets elements expire (ban sets, meters).
	Timeout bool
	// DefaultTimeout is how long an element without a timeout of its own
	// lives, such as one a meter adds (0: forever). It needs Timeout.
	DefaultTimeout time.Duration
	// Dynamic sets are updated from the packet path (meters).
	Dynamic bool
	// Size bounds a dynamic set (0: the kernel's default).
	Size int
	// Elements are the set's initial content.
	Elements []Element
	Comment  string
}

// Element is a set element. Exactly one of Prefix and Port is set,
// according to the set's type.
type Element struct {
	// Prefix is an address (full-length prefix) or a network.
	Prefix netip.Prefix
	// Port and PortEnd (for a range, in an interval set) are a service.
	Port, PortEnd uint16
	// Timeout is how long the element lives; 0 means forever.
	Timeout time.Duration
	Comment string
}

// Hook is a base chain's netfilter hook.
type Hook string

// Hooks.
const (
	Prerouting  Hook = "prerouting"
	Input       Hook = "input"
	Forward     Hook = "forward"
	Output      Hook = "output"
	Postrouting Hook = "postrouting"
)

// ChainType is a base chain's type.
type ChainType string

// Chain types.
const (
	Filter  ChainType = "filter"
	NATType ChainType = "nat"
)

// Verdict ends a rule's evaluation.
type Verdict string

// Verdicts. Empty means the rule has none and evaluation continues.
const (
	Accept Verdict = "accept"
	Drop   Verdict = "drop"
	Reject Verdict = "reject"
	Return Verdict = "return"
	Jump   Verdict = "jump"
	Goto   Verdict = "goto"
)

// Chain is a base chain (with a hook) or a regular one.
type Chain struct {
	Name string
	// Hook, Type, Priority and Policy are for base chains only.
	Hook     Hook
	Type     ChainType
	Priority int
	// Policy is accept or drop.
	Policy Verdict
	Rules  []*Rule
}

// Rule is one rule: matches, then statements in a fixed order (meter,
// limit, counter, log, nat, offload, verdict), as nft evaluates them.
type Rule struct {
	// ID names the rule stably across applies and is its comment in the
	// kernel: counters, log lines and errors refer to it
	// ("zone lan input: allow ssh").
	ID      string
	Matches []Match
	Meter   *Meter
	Limit   *Limit
	Counter bool
	Log     *Log
	NAT     *NAT
	// Offload adds the flow to the flowtable (flow add @ft).
	Offload bool
	Verdict Verdict
	// Target is the chain of a jump or goto.
	Target string
	// RejectWith is how a reject answers (the zero value: ICMP port
	// unreachable).
	RejectWith RejectKind
}

// RejectKind is how a reject answers the packet it refuses.
type RejectKind string

// Reject kinds.
const (
	// RejectICMP answers with an ICMP port unreachable, or ICMPv6 for
	// IPv6: of the rule's family when the rule has one, else of the
	// packet's (nft's icmpx).
	RejectICMP RejectKind = ""
	// RejectTCPReset answers with a TCP reset, as a closed port does. It
	// needs a rule limited to tcp (meta l4proto tcp, tcp dport ...).
	RejectTCPReset RejectKind = "tcp reset"
)

// MatchKind says what a Match compares.
type MatchKind string

// Match kinds.
const (
	// IIFName and OIFName compare interface names (Names).
	IIFName MatchKind = "iifname"
	OIFName MatchKind = "oifname"
	// SAddr and DAddr compare addresses (Prefixes, or the named Set) of
	// one Family (ip or ip6).
	SAddr MatchKind = "saddr"
	DAddr MatchKind = "daddr"
	// L4Proto compares the transport protocol (Protos: tcp, udp, icmp,
	// ipv6-icmp).
	L4Proto MatchKind = "l4proto"
	// DPort and SPort compare ports (Ports) of Protos[0] (tcp or udp), or
	// of any transport ("th") when Protos is empty.
	DPort MatchKind = "dport"
	SPort MatchKind = "sport"
	// CtState compares conntrack states (Values: new, established,
	// related, invalid, untracked).
	CtState MatchKind = "ctstate"
	// CtStatus compares conntrack status bits (Values: dnat, snat).
	CtStatus MatchKind = "ctstatus"
	// CtOriginalDPort compares the destination port the connection was
	// opened to, before any DNAT rewrote it (ct original proto-dst), with
	// Ports: one port or range. An earlier match must limit the rule to
	// tcp or udp.
	CtOriginalDPort MatchKind = "ctoriginaldport"
	// FibDAddrLocal matches packets to one of the host's own addresses.
	FibDAddrLocal MatchKind = "fibdaddrlocal"
	// ICMPType and ICMPv6Type compare ICMP types (Values, by nft's names:
	// echo-request, nd-neighbor-solicit, ...).
	ICMPType   MatchKind = "icmptype"
	ICMPv6Type MatchKind = "icmpv6type"
	// NFProto compares the family (Values: ipv4 or ipv6).
	NFProto MatchKind = "nfproto"
)

// Match is one comparison of a rule. Only the fields of its Kind are set.
type Match struct {
	Kind MatchKind
	// Negate inverts the comparison (!=).
	Negate bool
	// Family is IP or IP6, for SAddr and DAddr.
	Family   Family
	Names    []string
	Prefixes []netip.Prefix
	// Set names a set to look the address up in instead of Prefixes.
	Set    string
	Protos []string
	Ports  []PortRange
	Values []string
}

// PortRange is a port (From == To) or a range.
type PortRange struct{ From, To uint16 }

// MergePorts returns ranges sorted, with those that overlap or touch
// joined (80, 81-90, 85-100 is 80-100); ranges itself is not changed.
func MergePorts(ranges []PortRange) []PortRange {
	if len(ranges) == 0 {
		return nil
	}
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b PortRange) int { return cmp.Compare(a.From, b.From) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if uint32(r.From) <= uint32(last.To)+1 {
			last.To = max(last.To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Limit is a rate limit statement. Over inverts it: the rule matches
// only above the rate.
type Limit struct {
	Rate uint64
	// Unit is second, minute, hour or day.
	Unit  string
	Burst uint32
	Over  bool
}

// Meter limits per key (source address) through a dynamic set:
// `add @set { ip saddr limit rate over 10/minute }`. On a set with
// timeouts the statement is `update`, which restarts the key's timeout at
// every packet: a source's limit state then lives as long as the source
// is active, and the set frees the keys of sources gone quiet instead of
// filling up (a full set adds nothing, and the limit would stop applying
// to new sources).
type Meter struct {
	Set string
	// Family is IP or IP6: the key is that family's source address.
	Family Family
	Limit  Limit
}

// Log is a log statement: to the kernel log at Level, or with ToGroup
// to NFLOG group Group (read by edge-firewall itself, or ulogd), which
// takes no level.
type Log struct {
	Prefix string
	// Level is a syslog level (info, warn, ...); empty means warn.
	Level   string
	ToGroup bool
	Group   uint16
}

// NATKind is the kind of a NAT statement.
type NATKind string

// NAT kinds.
const (
	Masquerade NATKind = "masquerade"
	SNAT       NATKind = "snat"
	DNAT       NATKind = "dnat"
	Redirect   NATKind = "redirect"
)

// NAT rewrites addresses. For SNAT and DNAT, Family (IP or IP6) and Addr
// are set; Port and PortEnd optionally (a rule with a port must match
// its transport protocol first).
type NAT struct {
	Kind    NATKind
	Family  Family
	Addr    netip.Addr
	Port    uint16
	PortEnd uint16
}

// Flowtable is the flow offload fast path.
type Flowtable struct {
	Name     string
	Devices  []string
	Priority int
}

// Validate checks the ruleset's internal consistency: names unique, jump
// targets and set references defined, set elements of the set's type.
// The compiler's output must always pass; it guards against compiler
// bugs reaching the kernel, whose errors name nothing. What each kind of
// match and statement requires is package nft's to check (nft.Check),
// in the one place that knows the kind.
func (r *Ruleset) Validate() error {
	sets := map[string]*Set{}
	for _, s := range r.Sets {
		if s.Name == "" || sets[s.Name] != nil {
			return fmt.Errorf("set %q: empty or duplicate name", s.Name)
		}
		sets[s.Name] = s
		for _, e := range s.Elements {
			switch s.Type {
			case IPv4Addr, IPv6Addr:
				if !e.Prefix.IsValid() || e.Prefix.Addr().Is4() != (s.Type == IPv4Addr) {
					return fmt.Errorf("set %s: element %v is not of type %s", s.Name, e.Prefix, s.Type)
				}
				if !s.Interval && e.Prefix.Bits() != e.Prefix.Addr().BitLen() {
					return fmt.Errorf("set %s: network %v in a set without intervals", s.Name, e.Prefix)
				}
			case InetService:
				if e.PortEnd != 0 && (!s.Interval || e.PortEnd < e.Port) {
					return fmt.Errorf("set %s: bad port range %d-%d", s.Name, e.Port, e.PortEnd)
				}
			default:
				return fmt.Errorf("set %s: unknown type %q", s.Name, s.Type)
			}
			if e.Timeout != 0 && !s.Timeout {
				return fmt.Errorf("set %s: element timeout in a set without timeouts", s.Name)
			}
		}
		if s.DefaultTimeout != 0 && !s.Timeout {
			return fmt.Errorf("set %s: default timeout in a set without timeouts", s.Name)
		}
	}
	chains := map[string]*Chain{}
	for _, c := range r.Chains {
		if c.Name == "" || chains[c.Name] != nil {
			return fmt.Errorf("chain %q: empty or duplicate name", c.Name)
		}
		chains[c.Name] = c
	}
	ids := map[string]bool{}
	for _, c := range r.Chains {
		if c.Hook != "" && c.Policy != Accept && c.Policy != Drop {
			return fmt.Errorf("chain %s: base chain policy %q; use accept or drop", c.Name, c.Policy)
		}
		for _, rule := range c.Rules {
			if rule.ID == "" || ids[rule.ID] {
				return fmt.Errorf("chain %s: rule with empty or duplicate id %q", c.Name, rule.ID)
			}
			ids[rule.ID] = true
			if (rule.Verdict == Jump || rule.Verdict == Goto) && chains[rule.Target] == nil {
				return fmt.Errorf("rule %q: %s to undefined chain %q", rule.ID, rule.Verdict, rule.Target)
			}
			for _, m := range rule.Matches {
				if m.Set != "" && sets[m.Set] == nil {
					return fmt.Errorf("rule %q: undefined set %q", rule.ID, m.Set)
				}
			}
			if rule.Meter != nil && (sets[rule.Meter.Set] == nil || !sets[rule.Meter.Set].Dynamic) {
				return fmt.Errorf("rule %q: meter needs a dynamic set, %q is not one", rule.ID, rule.Meter.Set)
			}
			if rule.Offload && r.Flowtable == nil {
				return fmt.Errorf("rule %q: offload without a flowtable", rule.ID)
			}
		}
	}
	return nil
}
