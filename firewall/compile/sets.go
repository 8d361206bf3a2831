package compile

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/prefixes"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// meterSize bounds a meter's dynamic set: one element per source address.
const meterSize = 65535

// sets adds the ban sets, the config's sets and the meters' sets.
func (c *compiler) sets() {
	c.banSets()
	for _, name := range slices.Sorted(maps.Keys(c.cfg.Sets)) {
		s := c.cfg.Sets[name]
		v4, v6 := fwconfig.Prefixes(c.site, s.Entries)
		if s.File != "" {
			f4, f6, err := c.readPrefixFile(s.File)
			if err != nil {
				c.errorf("sets."+name+".file", "set %s: %v", name, err)
			}
			v4, v6 = append(v4, f4...), append(v6, f6...)
		}
		comment := "set " + name
		c.rs.Sets = append(c.rs.Sets,
			&ruleset.Set{Name: name + "_v4", Type: ruleset.IPv4Addr, Interval: true, Elements: prefixElements(mergePrefixes(v4)), Comment: comment},
			&ruleset.Set{Name: name + "_v6", Type: ruleset.IPv6Addr, Interval: true, Elements: prefixElements(mergePrefixes(v6)), Comment: comment},
		)
	}
	for i := range c.cfg.Limits.PerSource {
		l := &c.cfg.Limits.PerSource[i]
		comment := "per-source limit " + strings.TrimPrefix(l.MeterName(), "meter_")
		idle := meterIdle(l.Rate, l.Burst)
		v4, v6 := true, true
		if fi, ok := c.cfg.ForwardNamed(l.PortForward); l.PortForward != "" && ok {
			// A forward goes to a host of one family.
			to := c.cfg.PortForwards[fi].To
			v4, v6 = to.Is4(), to.Is6()
		}
		if v4 {
			c.rs.Sets = append(c.rs.Sets, &ruleset.Set{Name: l.MeterName() + "_v4", Type: ruleset.IPv4Addr, Dynamic: true, Timeout: true, DefaultTimeout: idle, Size: meterSize, Comment: comment})
		}
		if v6 {
			c.rs.Sets = append(c.rs.Sets, &ruleset.Set{Name: l.MeterName() + "_v6", Type: ruleset.IPv6Addr, Dynamic: true, Timeout: true, DefaultTimeout: idle, Size: meterSize, Comment: comment})
		}
	}
}

// banSets builds ban_v4 and ban_v6 from the config's static bans and the
// run-time ones. A config entry wins over a run-time one for the same
// address (config wins for what it declares); expired run-time bans are
// left out.
func (c *compiler) banSets() {
	v4 := &ruleset.Set{Name: fwconfig.BanSet + "_v4", Type: ruleset.IPv4Addr, Timeout: true, Comment: "bans"}
	v6 := &ruleset.Set{Name: fwconfig.BanSet + "_v6", Type: ruleset.IPv6Addr, Timeout: true, Comment: "bans"}
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr, e ruleset.Element) {
		a = a.Unmap()
		if seen[a] {
			return
		}
		seen[a] = true
		e.Prefix = netip.PrefixFrom(a, a.BitLen())
		if a.Is4() {
			v4.Elements = append(v4.Elements, e)
		} else {
			v6.Elements = append(v6.Elements, e)
		}
	}
	for _, a := range c.cfg.Bans.Static {
		if a.IsValid() {
			add(a, ruleset.Element{Comment: "config"})
		}
	}
	for i, b := range c.opts.Bans {
		switch {
		case !b.Addr.IsValid():
			c.errorf("bans", "run-time ban %d has no valid address", i)
		case b.Timeout < 0:
		default:
			add(b.Addr, ruleset.Element{Timeout: b.Timeout, Comment: b.Comment})
		}
	}
	sortElements(v4.Elements)
	sortElements(v6.Elements)
	c.rs.Sets = append(c.rs.Sets, v4, v6)
}

// readPrefixFile reads a blocklist: one prefix or address per line, with
// comments after # or ; and blank lines ignored. Host bits are cleared
// (lists from elsewhere often carry them).
func (c *compiler) readPrefixFile(name string) (v4, v6 []netip.Prefix, err error) {
	data, err := c.opts.ReadFile(name)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %v", name, pathErrText(err))
	}
	return parsePrefixes(name, data)
}

// parsePrefixes parses a prefix file's content; errors name the file
// and line, and say how many more lines were bad.
func parsePrefixes(name string, data []byte) (v4, v6 []netip.Prefix, err error) {
	var first error
	bad := 0
	// Most lists are one family; size for the whole file up front rather
	// than grow through 100k appends.
	v4 = make([]netip.Prefix, 0, bytes.Count(data, []byte{'\n'})+1)
	// One conversion for the whole file: lines are substrings of it, so
	// a 100k-line list costs no allocation per line.
	text := string(data)
	for lineNo := 1; len(text) > 0; lineNo++ {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, perr := parseEntry(line)
		if perr != nil {
			if first == nil {
				first = fmt.Errorf("%s:%d: %v", name, lineNo, perr)
			}
			bad++
			continue
		}
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	if first != nil {
		if bad > 1 {
			return nil, nil, fmt.Errorf("%v (and %d more bad lines)", first, bad-1)
		}
		return nil, nil, first
	}
	return v4, v6, nil
}

func parseEntry(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid prefix %q", truncate(s))
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid prefix %q", truncate(s))
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked(), nil
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address or prefix %q", truncate(s))
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// mergePrefixes sorts a copy of ps and drops those inside another, since
// an nft interval set refuses overlapping elements.
func mergePrefixes(ps []netip.Prefix) []netip.Prefix {
	if len(ps) == 0 {
		return nil
	}
	return prefixes.DropCovered(slices.Clone(ps))
}

func prefixElements(ps []netip.Prefix) []ruleset.Element {
	if len(ps) == 0 {
		return nil
	}
	es := make([]ruleset.Element, len(ps))
	for i, p := range ps {
		es[i].Prefix = p
	}
	return es
}

func sortElements(es []ruleset.Element) {
	slices.SortFunc(es, func(a, b ruleset.Element) int { return prefixes.Compare(a.Prefix, b.Prefix) })
}

// meterIdle is how long a meter keeps a source that sends nothing: the
// time its limiter takes to refill completely (burst plus one packets at
// the rate; nft's default burst is 5), at least a minute, in whole
// seconds. A source that comes back later starts with a full bucket,
// exactly what it would have had; and the meter's keys are freed instead
// of filling the set, whose full state would let new sources pass
// unlimited.
func meterIdle(r fwconfig.Rate, burst uint32) time.Duration {
	if burst == 0 {
		burst = 5
	}
	unit := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[r.Unit]
	if r.Count == 0 || unit == 0 {
		return time.Minute
	}
	d := time.Duration(burst+1) * unit / time.Duration(r.Count)
	d = (d + time.Second - 1).Truncate(time.Second)
	return max(d, time.Minute)
}
