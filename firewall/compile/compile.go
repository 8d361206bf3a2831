// Package compile turns the firewall section of the config into the
// ruleset of table inet edge: base chains with the standard prelude
// (established, invalid, loopback, ICMP essentials), a chain per zone and
// direction, the forwarding matrix, rules, sets split by family, the ban
// set, meters, NAT (masquerade, SNAT, port forwards with hairpin, 1:1)
// and the flow offload rule. Every nft rule gets a stable ID naming the
// config item it came from.
package compile

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// Table is the name of the inet table edge-firewall owns.
const Table = "edge"

// FlowtableName is the flowtable's name.
const FlowtableName = "ft"

// Base chain priorities (nft's filter, dstnat and srcnat).
const (
	PriorityFilter = 0
	PriorityDstNAT = -100
	PrioritySrcNAT = 100
)

// Options are what the compiler needs beyond the config.
type Options struct {
	// Flowtable says the kernel supports flowtables; without it, flow
	// offload is left out (the daemon says so once in its log).
	Flowtable bool
	// Bans are the run-time bans to include, with their remaining time.
	Bans []BanEntry
	// ReadFile reads set files; nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// BanEntry is a run-time ban.
type BanEntry struct {
	Addr netip.Addr
	// Timeout is the ban's remaining time; 0 bans for good, and a
	// negative one (expired) is left out.
	Timeout time.Duration
	Comment string
}

// Compile builds the ruleset for a loaded config. Its errors are
// config.Errors naming the key (and line) they concern: a set file that
// cannot be read or parsed, a rule that can match nothing.
func Compile(f *config.File[fwconfig.Config], opts Options) (*ruleset.Ruleset, error) {
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	c := &compiler{
		file: f,
		cfg:  &f.Section,
		site: &f.Site,
		opts: opts,
		rs:   &ruleset.Ruleset{Family: ruleset.INet, Table: Table},
	}
	c.resolveZones()
	c.sets()
	c.filter()
	c.nat()
	if len(c.errs) > 0 {
		slices.SortStableFunc(c.errs, func(a, b *config.Error) int { return a.Line - b.Line })
		return nil, c.errs
	}
	if err := c.rs.Validate(); err != nil {
		// A compiler bug: say so plainly, naming the rule or set.
		return nil, config.Errors{c.file.ErrorAt(fwconfig.Section, "internal error: compiled ruleset is invalid: %v", err)}
	}
	return c.rs, nil
}

type compiler struct {
	file  *config.File[fwconfig.Config]
	cfg   *fwconfig.Config
	site  *config.Site
	opts  Options
	rs    *ruleset.Ruleset
	errs  config.Errors
	zones map[string]*zoneSel

	input, forward, output, dstnat, srcnat *ruleset.Chain
	zoneIn, zoneFwd, zoneOut               map[string]*ruleset.Chain
	// rejects says a rule jumps to RejectChain.
	rejects bool
}

// errorf records an error at a key path relative to the section, with
// the line where that key (or its nearest parent) was set.
func (c *compiler) errorf(rel, format string, args ...any) {
	path := fwconfig.Section
	if rel != "" {
		path += "." + rel
	}
	c.errs = append(c.errs, c.file.ErrorAt(path, format, args...))
}

func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// zoneSel is how packets are told to be from or to a zone: by its
// interfaces when it has any, else by its networks. Networks given with
// interfaces only describe what is behind them (own4, own6): they do not
// widen the zone, so that a lan source spoofed on an interface no zone
// names (docker0) does not get the lan's trust.
type zoneSel struct {
	name       string
	ifaces     []string
	v4, v6     []netip.Prefix
	own4, own6 []netip.Prefix
}

func (c *compiler) resolveZones() {
	c.zones = map[string]*zoneSel{}
	for _, name := range c.cfg.ZoneNames() {
		z := c.cfg.Zones[name]
		v4, v6 := fwconfig.Prefixes(c.site, z.Networks)
		v4, v6 = mergePrefixes(v4), mergePrefixes(v6)
		zs := &zoneSel{name: name, ifaces: fwconfig.Interfaces(c.site, z.Interfaces), own4: v4, own6: v6}
		if len(zs.ifaces) == 0 {
			zs.v4, zs.v6 = v4, v6
		}
		c.zones[name] = zs
	}
}

// union is the selector of packets from or to any of the named zones.
func (c *compiler) union(names []string) *zoneSel {
	u := &zoneSel{}
	for _, n := range names {
		z := c.zones[n]
		if z == nil {
			continue
		}
		for _, i := range z.ifaces {
			if !slices.Contains(u.ifaces, i) {
				u.ifaces = append(u.ifaces, i)
			}
		}
		u.v4 = append(u.v4, z.v4...)
		u.v6 = append(u.v6, z.v6...)
	}
	u.v4, u.v6 = mergePrefixes(u.v4), mergePrefixes(u.v6)
	return u
}

// src matches packets from the zone: by interface, else by network.
func (z *zoneSel) src() axis { return z.sel(ruleset.IIFName, ruleset.SAddr, slotSrc, "iif", "saddr") }

// dst matches packets to the zone.
func (z *zoneSel) dst() axis { return z.sel(ruleset.OIFName, ruleset.DAddr, slotDst, "oif", "daddr") }

func (z *zoneSel) sel(ifKind, addrKind ruleset.MatchKind, slot int, ifTok, addrTok string) axis {
	ax := ifaceAxis(ifKind, slot, ifTok, z.ifaces)
	for _, a := range addrAxis(addrKind, z.v4, z.v6) {
		a.slot, a.token = slot, addrTok
		ax = append(ax, a)
	}
	return ax
}

// ifaceAxis matches any of names: exact names in one match, and each
// wildcard ("veth*", a prefix compare in the kernel, which cannot share a
// set with exact names) in a match of its own, qualified by the wildcard
// when there are several alternatives.
func ifaceAxis(kind ruleset.MatchKind, slot int, tok string, names []string) axis {
	ax := axis{}
	var plain, wild []string
	for _, n := range names {
		if strings.HasSuffix(n, "*") {
			wild = append(wild, n)
		} else {
			plain = append(plain, n)
		}
	}
	if len(plain) > 0 {
		ax = append(ax, alt{slot: slot, token: tok, matches: []ruleset.Match{{Kind: kind, Names: plain}}})
	}
	for _, w := range wild {
		t := tok
		if len(names) > 1 && tok != "" {
			t = tok + " " + w
		}
		ax = append(ax, alt{slot: slot, token: t, matches: []ruleset.Match{{Kind: kind, Names: []string{w}}}})
	}
	return ax
}

// notFrom matches packets that are not from the zone (for hairpin): not
// on its interfaces and not from its networks of family fam.
func (z *zoneSel) notFrom(fam ruleset.Family) []ruleset.Match {
	var ms []ruleset.Match
	// Not on any of them: one != per wildcard, and one for the rest.
	for _, a := range ifaceAxis(ruleset.IIFName, slotSrc, "", z.ifaces) {
		m := a.matches[0]
		m.Negate = true
		ms = append(ms, m)
	}
	if ps := z.family(fam); len(ps) > 0 {
		ms = append(ms, ruleset.Match{Kind: ruleset.SAddr, Negate: true, Family: fam, Prefixes: ps})
	}
	return ms
}

// family is the zone's selecting networks of family fam.
func (z *zoneSel) family(fam ruleset.Family) []netip.Prefix {
	if fam == ruleset.IP {
		return z.v4
	}
	return z.v6
}

// ownFamily is the zone's networks of family fam, selecting or not.
func (z *zoneSel) ownFamily(fam ruleset.Family) []netip.Prefix {
	if fam == ruleset.IP {
		return z.own4
	}
	return z.own6
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
