package nft

import (
	"fmt"
	"strings"
	"time"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// The tables below are nft 1.0.6's own names for the values it prints, so
// that Render writes exactly what `nft list` shows.

// l4protos are the transport protocols a match may name, by number as
// /etc/protocols (which nft prints from) names them.
var l4protos = map[string]uint8{
	"icmp":      1,
	"tcp":       6,
	"udp":       17,
	"gre":       47,
	"esp":       50,
	"ah":        51,
	"ipv6-icmp": 58,
	"sctp":      132,
	"udplite":   136,
}

// l4protoAlias maps accepted spellings to the name nft prints.
var l4protoAlias = map[string]string{"icmpv6": "ipv6-icmp"}

// nfprotos are the values of meta nfproto.
var nfprotos = map[string]uint8{"ipv4": 2, "ipv6": 10}

// ctStates are the conntrack state bits, printed in bit order.
var ctStates = []namedBit{
	{"invalid", 0x01},
	{"established", 0x02},
	{"related", 0x04},
	{"new", 0x08},
	{"untracked", 0x40},
}

// ctStatuses are the conntrack status bits, printed in bit order.
var ctStatuses = []namedBit{
	{"expected", 0x01},
	{"seen-reply", 0x02},
	{"assured", 0x04},
	{"confirmed", 0x08},
	{"snat", 0x10},
	{"dnat", 0x20},
	{"dying", 0x200},
}

type namedBit struct {
	name string
	bit  uint32
}

// icmpTypes and icmpv6Types are nft's names for ICMP types; a number
// with two names prints as the first.
var icmpTypes = []namedByte{
	{"echo-reply", 0}, {"destination-unreachable", 3}, {"source-quench", 4},
	{"redirect", 5}, {"echo-request", 8}, {"router-advertisement", 9},
	{"router-solicitation", 10}, {"time-exceeded", 11}, {"parameter-problem", 12},
	{"timestamp-request", 13}, {"timestamp-reply", 14}, {"info-request", 15},
	{"info-reply", 16}, {"address-mask-request", 17}, {"address-mask-reply", 18},
}

var icmpv6Types = []namedByte{
	{"destination-unreachable", 1}, {"packet-too-big", 2}, {"time-exceeded", 3},
	{"parameter-problem", 4}, {"echo-request", 128}, {"echo-reply", 129},
	{"mld-listener-query", 130}, {"mld-listener-report", 131}, {"mld-listener-done", 132},
	{"mld-listener-reduction", 132}, {"nd-router-solicit", 133}, {"nd-router-advert", 134},
	{"nd-neighbor-solicit", 135}, {"nd-neighbor-advert", 136}, {"nd-redirect", 137},
	{"router-renumbering", 138}, {"ind-neighbor-solicit", 141}, {"ind-neighbor-advert", 142},
	{"mld2-listener-report", 143},
}

type namedByte struct {
	name string
	val  uint8
}

func lookupByte(table []namedByte, name string) (uint8, bool) {
	for _, e := range table {
		if e.name == name {
			return e.val, true
		}
	}
	return 0, false
}

func byteName(table []namedByte, v uint8) string {
	for _, e := range table {
		if e.val == v {
			return e.name
		}
	}
	return fmt.Sprint(v)
}

// logLevels are syslog levels by nft's names (and the common long
// spellings); warn is the kernel's default and nft does not print it.
var logLevels = map[string]uint32{
	"emerg": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warn": 4, "warning": 4,
	"notice": 5, "info": 6, "debug": 7, "audit": 8,
}

var logLevelNames = []string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit"}

// limitUnits are the limit statement's time units in seconds.
var limitUnits = map[string]uint64{"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}

// hookNums are the netfilter hook numbers of the inet family.
var hookNums = map[ruleset.Hook]uint32{
	ruleset.Prerouting: 0, ruleset.Input: 1, ruleset.Forward: 2, ruleset.Output: 3, ruleset.Postrouting: 4,
}

// stdPrios are nft's standard priority names, in the order nft tries them.
var stdPrios = []struct {
	name string
	val  int
}{
	{"raw", -300}, {"mangle", -150}, {"dstnat", -100}, {"filter", 0}, {"security", 50}, {"srcnat", 100},
}

// prioString is nft's prio2str: the first standard priority within 10 of
// prio names it (with an offset) if it is usable on the hook, else the
// number. Flowtables are printed as netdev, where only filter is usable.
func prioString(prio int, hook ruleset.Hook, netdev bool) string {
	for _, p := range stdPrios {
		off := prio - p.val
		if off < -10 || off > 10 {
			continue
		}
		if !prioCompatible(p.name, hook, netdev) {
			break
		}
		switch {
		case off > 0:
			return fmt.Sprintf("%s + %d", p.name, off)
		case off < 0:
			return fmt.Sprintf("%s - %d", p.name, -off)
		}
		return p.name
	}
	return fmt.Sprint(prio)
}

func prioCompatible(name string, hook ruleset.Hook, netdev bool) bool {
	switch name {
	case "filter":
		return true
	case "raw", "mangle", "security":
		return !netdev
	case "dstnat": // nft 1.0.6; later versions also allow output
		return !netdev && hook == ruleset.Prerouting
	case "srcnat": // nft 1.0.6; later versions also allow input
		return !netdev && hook == ruleset.Postrouting
	}
	return false
}

// formatDuration is nft's time_print: 1d2h3m4s5ms, leaving out zero parts.
func formatDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if ms <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		ms     int64
		suffix string
	}{{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}} {
		if n := ms / u.ms; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.suffix)
			ms %= u.ms
		}
	}
	return b.String()
}

// keywords are the words nft 1.0.6 reads as tokens where a chain or set
// name goes (measured with nft -c against every keyword of its
// scanner). A table, chain, set or flowtable with such a name is listed
// by nft unquoted but cannot be parsed back, so Check refuses it.
var keywords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		eq ne le lt ge gt lshift rshift xor and or not vmap include define redefine undefine describe
		hook device devices table chain rule set element map flowtable handle ruleset socket tproxy
		accept drop continue jump goto return inet netdev add replace update create insert delete get
		list reset flush rename import export monitor position index comment constant interval dynamic
		auto-merge timeout gc-interval elements expires policy size flow offload meter counter log queue
		limit quota hour day reject snat dnat masquerade redirect random ll nh th bridge ether type typeof
		vlan arp ip ecn time icmp igmp ip6 priority icmpv6 ah esp comp flags udp udplite tcp dccp sctp rt
		rt0 rt2 srh hbh frag dst mh meta mark iif iifname iiftype oif oifname oiftype skuid skgid nftrace
		rtclassid ibriport ibrname obriport obrname pkttype cpu iifgroup oifgroup cgroup ct numgen jhash
		symhash dup fwd fib osf synproxy notrack all exists missing exthdr ipsec secmark`) {
		m[w] = true
	}
	return m
}()
