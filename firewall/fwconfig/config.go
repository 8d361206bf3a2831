// Package fwconfig is the firewall section of the suite's config: zones
// and their policies, the forwarding matrix, rules, services, NAT, port
// forwards, sets, bans, limits, logging, flow offload and commit-confirm,
// with strict validation that names every problem's key. The compiler
// (firewall/compile) turns a validated Config into a ruleset.
package fwconfig

import (
	"net/netip"
	"time"

	"github.com/homeedge/edge/internal/config"
)

// Section is the config file's key for the firewall section.
const Section = "firewall"

// Config is the firewall section.
type Config struct {
	config.Common `yaml:",inline"`
	// Defaults are the policies for traffic that no zone claims.
	Defaults Defaults `yaml:"defaults"`
	// Zones group the router's neighbours by interface or network.
	Zones map[string]Zone `yaml:"zones"`
	// Policies are the forwarding matrix: what may pass from one zone to
	// another. Traffic between zones that no policy names gets the source
	// zone's forward policy.
	Policies []Policy `yaml:"policies"`
	// Services define service names beyond the built-in ones (or
	// redefine them: a wireguard on another port).
	Services map[string]ServiceDef `yaml:"services"`
	// Rules are explicit allow, drop and reject rules.
	Rules []Rule `yaml:"rules"`
	// NAT is source NAT (masquerade, SNAT) and 1:1 NAT.
	NAT NAT `yaml:"nat"`
	// PortForwards send ports of the router to inside hosts.
	PortForwards []PortForward `yaml:"port_forwards"`
	// Sets are named address sets, from the config and from files.
	Sets map[string]Set `yaml:"sets"`
	// Bans configure the ban set that `edgectl fw ban` fills.
	Bans Bans `yaml:"bans"`
	// Limits are per-source and SYN-flood rate limits.
	Limits Limits `yaml:"limits"`
	// Log is how dropped packets are logged.
	Log Log `yaml:"log"`
	// FlowOffload is the flowtable fast path for established traffic.
	FlowOffload FlowOffload `yaml:"flow_offload"`
	// Confirm configures commit-confirm applies.
	Confirm Confirm `yaml:"confirm"`
}

// Action is what a policy or rule does with a packet.
type Action string

// Actions.
const (
	Accept Action = "accept"
	Drop   Action = "drop"
	Reject Action = "reject"
)

// Defaults are the policies for traffic from (or, for output, to) no zone.
type Defaults struct {
	Input   Action `yaml:"input"`
	Forward Action `yaml:"forward"`
	Output  Action `yaml:"output"`
	// LogDrops logs what the input and forward defaults drop or reject.
	LogDrops bool `yaml:"log_drops"`
}

// Zone is a group of the router's neighbours. A packet is from a zone
// when it arrives on one of the zone's interfaces, and to it when it
// leaves through one. A zone without interfaces is its networks: packets
// from (to) them, on interfaces no zone names. Networks given with
// interfaces describe what is behind them (hairpin NAT uses them) and do
// not widen the zone, so a spoofed source on another interface never
// gets the zone's trust.
type Zone struct {
	// Interfaces are roles of site.interfaces (wan, lan) or interface
	// names (br-lan, wg0; a trailing * matches a prefix: veth*).
	Interfaces []string `yaml:"interfaces"`
	// Networks are names of site.networks or prefixes.
	Networks []config.NetRef `yaml:"networks"`
	// Input is the policy for traffic from the zone to the router.
	Input Action `yaml:"input"`
	// Forward is the policy for traffic from the zone through the router
	// that no policy or rule decides.
	Forward Action `yaml:"forward"`
	// Output is the policy for the router's own traffic to the zone.
	Output Action `yaml:"output"`
	// Intra is the policy for traffic forwarded from the zone to the
	// zone itself: between two of its interfaces, or between two ports
	// of its bridge when the bridge hands bridged traffic to netfilter
	// (bridge-nf-call-iptables=1, which Docker sets). Empty means the
	// default, IntraPolicy: accept when Input is accept, else Forward.
	Intra Action `yaml:"intra"`
	// Services are allowed from the zone into the router: built-in or
	// defined names (ssh, dns), or PORT/PROTO (8080/tcp, 6000-6010/udp,
	// 53/both).
	Services []string `yaml:"services"`
	// ForwardTo is shorthand for policies from this zone to those zones
	// with action accept.
	ForwardTo []string `yaml:"forward_to"`
	// LogDrops logs, rate-limited, what the zone's policies drop.
	LogDrops bool `yaml:"log_drops"`
}

// SetDefaults implements config.Defaulter.
func (z *Zone) SetDefaults() { z.Input, z.Forward, z.Output = Drop, Drop, Accept }

// IntraPolicy is what the zone does with traffic from itself to itself:
// Intra when set; else accept for a zone trusted with the router itself
// (input accept, such as a lan), as fw4 and firewalld allow it in their
// trusted zones; else the zone's forward policy, which is what any other
// traffic from the zone gets.
func (z Zone) IntraPolicy() Action {
	switch {
	case z.Intra != "":
		return z.Intra
	case z.Input == Accept:
		return Accept
	}
	return z.Forward
}

// Policy is one entry of the forwarding matrix.
type Policy struct {
	From   string `yaml:"from"`
	To     string `yaml:"to"`
	Action Action `yaml:"action"`
}

// SetDefaults implements config.Defaulter.
func (p *Policy) SetDefaults() { p.Action = Accept }

// ServiceDef defines a named service.
type ServiceDef struct {
	// Proto is tcp, udp or both.
	Proto string      `yaml:"proto"`
	Ports []PortRange `yaml:"ports"`
}

// Rule is an explicit rule. Where it goes follows from From and To:
// to the router (input), to a zone or anywhere else (forward), or from the
// router (output). Rules naming a zone in From run in that zone's chain
// before its services and policies; rules from any zone run before the
// zones' chains.
type Rule struct {
	// Name identifies the rule: its ID, counters and log prefix derive
	// from it.
	Name   string `yaml:"name"`
	Action Action `yaml:"action"`
	// From is a zone, any (default) or router (the router's own traffic).
	From string `yaml:"from"`
	// To is router (default: traffic to the router itself), a zone
	// (forwarded to it) or any (to the router and forwarded anywhere).
	To string `yaml:"to"`
	// Source and Destination are networks or prefixes; SourceSet and
	// DestinationSet name a set instead.
	Source         []config.NetRef `yaml:"source"`
	SourceSet      string          `yaml:"source_set"`
	Destination    []config.NetRef `yaml:"destination"`
	DestinationSet string          `yaml:"destination_set"`
	// Services match by service (as in zones); or Proto (tcp, udp, both,
	// icmp, icmpv6, gre, esp, ah, sctp) with Ports for tcp, udp and both.
	Services []string    `yaml:"services"`
	Proto    string      `yaml:"proto"`
	Ports    []PortRange `yaml:"ports"`
	// ICMPTypes and ICMPv6Types match ICMP messages by nft's names
	// (echo-request, destination-unreachable, ...).
	ICMPTypes   []string `yaml:"icmp_types"`
	ICMPv6Types []string `yaml:"icmpv6_types"`
	// Log logs matching packets (rate-limited by log.rate): true, or the
	// log prefix to use.
	Log LogOpt `yaml:"log"`
	// Limit makes the rule match only up to a rate.
	Limit *RateLimit `yaml:"limit"`
}

// SetDefaults implements config.Defaulter.
func (r *Rule) SetDefaults() { r.From, r.To = Any, Router }

// Reserved zone names in rules.
const (
	// Any is every zone (and traffic from no zone).
	Any = "any"
	// Router is the router itself.
	Router = "router"
)

// RateLimit is a rate with a burst.
type RateLimit struct {
	Rate Rate `yaml:"rate"`
	// Burst is how many packets may exceed the rate at once (0: the
	// kernel's default, 5).
	Burst uint32 `yaml:"burst"`
}

// NAT configures address translation.
type NAT struct {
	// Masquerade rewrites IPv4 sources of traffic leaving these zones to
	// the outgoing interface's address.
	Masquerade []string `yaml:"masquerade"`
	// Masquerade6 does the same for IPv6 (NAT66, rarely wanted).
	Masquerade6 []string `yaml:"masquerade6"`
	// SNAT rewrites sources to a fixed address.
	SNAT []SNAT `yaml:"snat"`
	// OneToOne maps an outside address to an inside host, both ways.
	OneToOne []OneToOne `yaml:"one_to_one"`
}

// SNAT is source NAT to a fixed address for traffic leaving a zone.
type SNAT struct {
	Zone string     `yaml:"zone"`
	To   netip.Addr `yaml:"to"`
	// Source limits it to these networks (default: every source of the
	// address's family).
	Source []config.NetRef `yaml:"source"`
}

// OneToOne is 1:1 NAT: traffic from Zone to External goes to Internal, and
// Internal's traffic to Zone leaves as External. Every port is forwarded.
type OneToOne struct {
	External netip.Addr `yaml:"external"`
	Internal netip.Addr `yaml:"internal"`
	Zone     string     `yaml:"zone"`
}

// SetDefaults implements config.Defaulter.
func (o *OneToOne) SetDefaults() { o.Zone = "wan" }

// PortForward sends a port (or range) of the router to an inside host.
type PortForward struct {
	Name string `yaml:"name"`
	// FromZone is where the traffic comes from (default wan).
	FromZone string `yaml:"from_zone"`
	// Proto is tcp (default), udp or both.
	Proto string     `yaml:"proto"`
	Port  PortRange  `yaml:"port"`
	To    netip.Addr `yaml:"to"`
	// ToPort is the host's port or range (of Port's length); default
	// Port.
	ToPort PortRange `yaml:"to_port"`
	// Hairpin lets inside clients use the router's public address too
	// (NAT reflection); default true.
	Hairpin bool `yaml:"hairpin"`
	// AllowFrom limits who may use the forward (default everyone).
	AllowFrom []config.NetRef `yaml:"allow_from"`
}

// SetDefaults implements config.Defaulter.
func (p *PortForward) SetDefaults() { p.FromZone, p.Proto, p.Hairpin = "wan", "tcp", true }

// Set is a named set of addresses and prefixes. It is compiled into an
// IPv4 set <name>_v4 and an IPv6 set <name>_v6.
type Set struct {
	// Entries are networks of site.networks, prefixes or addresses.
	Entries []config.NetRef `yaml:"entries"`
	// File holds one prefix or address per line; # and ; start comments.
	// It is read at every apply; when it cannot be read, the apply fails
	// and the previous ruleset stays.
	File string `yaml:"file"`
}

// Bans configure the ban set: addresses dropped from the zones named, with
// or without a timeout, filled at run time by `edgectl fw ban`.
type Bans struct {
	// Zones whose traffic is checked (default wan).
	Zones []string `yaml:"zones"`
	// DefaultTimeout is a ban's length when the ban does not say.
	DefaultTimeout config.Duration `yaml:"default_timeout"`
	// MaxTimeout caps a ban's length; 0 allows bans without an end.
	MaxTimeout config.Duration `yaml:"max_timeout"`
	// Static are banned for good.
	Static []netip.Addr `yaml:"static"`
}

// Limits are rate limits on new connections.
type Limits struct {
	// PerSource limits new connections to a service per source address.
	PerSource []SourceLimit `yaml:"per_source"`
	// SYNFlood limits new TCP connections from the zones named, in all.
	SYNFlood *SYNFlood `yaml:"syn_flood"`
}

// SourceLimit drops a source's new connections to a service of the
// router, or to a port forward, above a rate.
type SourceLimit struct {
	// Name names the limit (and its meter sets); default the service or
	// the port forward.
	Name string `yaml:"name"`
	// Service is limited where the router itself receives it (input).
	Service string `yaml:"service"`
	// PortForward names a port forward to limit instead: its traffic is
	// DNATed to the host and passes the router's forward path, where the
	// limit then applies, told by the port it was sent to.
	PortForward string `yaml:"port_forward"`
	Rate        Rate   `yaml:"rate"`
	Burst       uint32 `yaml:"burst"`
	// Zones whose traffic is limited (default wan).
	Zones []string `yaml:"zones"`
}

// SetDefaults implements config.Defaulter.
func (l *SourceLimit) SetDefaults() { l.Zones = []string{"wan"} }

// SYNFlood is a global limit on new TCP connections.
type SYNFlood struct {
	Rate  Rate   `yaml:"rate"`
	Burst uint32 `yaml:"burst"`
	// Zones whose traffic is limited (default wan).
	Zones []string `yaml:"zones"`
}

// SetDefaults implements config.Defaulter.
func (s *SYNFlood) SetDefaults() { s.Zones = []string{"wan"} }

// Log is how drops are logged. Every log rule shares the rate (each rule
// on its own budget).
type Log struct {
	Rate  Rate   `yaml:"rate"`
	Burst uint32 `yaml:"burst"`
	// To is where logged packets go: "kernel" (the kernel log, read by
	// journald; inside a network namespace only when the host allows it)
	// or "daemon" (NFLOG group Group, which edge-firewall reads and writes
	// to its own log, one structured line per packet).
	To string `yaml:"to"`
	// Group is the NFLOG group for to: daemon.
	Group uint16 `yaml:"group"`
	// Level is a syslog level for to: kernel: emerg, alert, crit, err,
	// warn, notice, info or debug.
	Level string `yaml:"level"`
}

// Where logged packets go.
const (
	LogToKernel = "kernel"
	LogToDaemon = "daemon"
)

// FlowOffload is the flowtable fast path.
type FlowOffload struct {
	Enabled bool `yaml:"enabled"`
	// Devices are roles or interface names (default: every interface the
	// zones name, without wildcards).
	Devices []string `yaml:"devices"`
}

// Confirm configures commit-confirm.
type Confirm struct {
	// DefaultTimeout is how long an apply waits for `edgectl fw confirm`
	// before rolling back, when the apply does not say.
	DefaultTimeout config.Duration `yaml:"default_timeout"`
}

// DefaultConfig is the firewall section's defaults.
func DefaultConfig() Config {
	return Config{
		Common:   config.Common{Metrics: config.Metrics{Listen: "127.0.0.1:9711"}},
		Defaults: Defaults{Input: Drop, Forward: Drop, Output: Accept},
		Bans: Bans{
			Zones:          []string{"wan"},
			DefaultTimeout: config.Duration(time.Hour),
			MaxTimeout:     config.Duration(30 * 24 * time.Hour),
		},
		Log:     Log{Rate: Rate{Count: 10, Unit: "minute"}, Burst: 5, To: LogToKernel, Group: 100, Level: "info"},
		Confirm: Confirm{DefaultTimeout: config.Duration(60 * time.Second)},
	}
}
