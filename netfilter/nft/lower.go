package nft

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/homeedge/edge/internal/prefixes"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// A rule is lowered once into a list of statements; the renderer prints
// them and the applier turns them into expressions. Both walk the same
// list, so the text and the kernel's rule cannot drift apart.
//
// Lowering also does what nft does when it compiles and lists a rule, so
// that what the applier sends lists exactly as Render prints it, and
// Render's text, loaded with nft -f, lists as itself (the oracle and
// round-trip tests hold both):
//   - the implicit dependencies nft adds (meta nfproto before ip saddr in
//     an inet table, meta l4proto before tcp dport, both before icmp
//     type);
//   - the explicit matches nft folds away when listing, reading them as
//     such a dependency (`meta l4proto tcp tcp dport 22` lists as
//     `tcp dport 22`; `meta nfproto ipv4 reject` as `reject with icmp
//     port-unreachable`), and the redundant ones it would list
//     differently (a second `meta nfproto ipv4`);
//   - which reject a rule gets: ICMP port unreachable when the family is
//     known, ICMPX otherwise; a TCP reset only in a rule limited to tcp;
//   - anonymous interval sets with adjacent values merged (nft's parser
//     merges them), and one value left is a plain comparison;
//   - a single source and destination port of one protocol next to each
//     other, source first (nft merges them into one load).
//
// What nft could not read back (a port of one protocol after a set of
// protocols, two single ports of the same direction, raw th ports in
// both directions) is refused with an error naming the match.

type stmtKind int

const (
	stMatch stmtKind = iota
	stMeter
	stLimit
	stCounter
	stLog
	stNAT
	stOffload
	stVerdict
)

// stmt is one statement of a lowered rule.
type stmt struct {
	kind stmtKind
	// m is the match (stMatch), its values normalised and sorted the way
	// nft prints them.
	m ruleset.Match
	// hidden is set on an explicit match that nft lists as part of a later
	// statement: it is sent but not printed.
	hidden bool
	// omit is set on an explicit match a later one implies and sends as
	// its dependency: it is neither sent nor printed.
	omit bool
	// depNF and depL4 are implicit meta nfproto / meta l4proto
	// dependencies sent right before the statement.
	depNF, depL4 string
	// proto is the transport a port match reads ("tcp", "udp"), or "" for
	// the raw transport header (th).
	proto string
	// family is the network family: the meter's key, the reject's ICMP
	// flavour ("" for ICMPX), the address match's.
	family string
	// set is true when an address or port match still has several
	// values once de-duplicated and merged: a lookup in an anonymous set.
	// (One value left is a plain comparison, as nft makes of a set of
	// one it parses.)
	set bool
	// ranges are the intervals of an address match with prefixes: nft
	// merges adjacent ones in an anonymous interval set (and lists a
	// merged interval as a prefix when it is one, else as first-last), so
	// the applier sends them merged too. A single interval that is not a
	// prefix is compared as a range. Port ranges merge in m.Ports.
	ranges []addrRange
}

// addrRange is an interval of addresses, both ends included.
type addrRange struct{ first, last netip.Addr }

// mergeRanges turns sorted, disjoint prefixes into intervals, adjacent
// ones merged.
func mergeRanges(ps []netip.Prefix) []addrRange {
	var out []addrRange
	for _, p := range ps {
		first, last := p.Addr(), lastOf(p)
		if n := len(out); n > 0 && out[n-1].last.Next() == first {
			out[n-1].last = last
			continue
		}
		out = append(out, addrRange{first, last})
	}
	return out
}

// lastOf is the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// prefix returns the interval as a prefix, if it is one.
func (r addrRange) prefix() (netip.Prefix, bool) {
	for bits := 0; bits <= r.first.BitLen(); bits++ {
		p := netip.PrefixFrom(r.first, bits)
		if p.Masked().Addr() == r.first && lastOf(p) == r.last {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// String prints the interval as nft does: as a prefix when it is one.
func (r addrRange) String() string {
	if p, ok := r.prefix(); ok {
		return prefixString(p)
	}
	return r.first.String() + "-" + r.last.String()
}

// mergePorts merges adjacent port ranges (sorted and disjoint).
func mergePorts(ps []ruleset.PortRange) []ruleset.PortRange {
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && uint32(out[n-1].To)+1 == uint32(p.From) {
			out[n-1].To = p.To
			continue
		}
		out = append(out, p)
	}
	return out
}

// lowered is a rule ready to render or build.
type lowered struct {
	rule  *ruleset.Rule
	stmts []stmt
	// flowtable is the name an offload statement adds flows to.
	flowtable string
	// meterUpdate says the meter's set has timeouts: the statement is
	// update, which restarts the key's timeout, rather than add.
	meterUpdate bool
}

// lowerCtx tracks what nft's evaluator knows while it walks a rule.
type lowerCtx struct {
	nf, l4 string
	// pendNF and pendL4 are the indexes of explicit meta nfproto / meta
	// l4proto matches nft would still fold into a later statement, or -1.
	pendNF, pendL4 int
	// l4At is the index of the statement that established l4.
	l4At int
	// l4Pinned says a match relies on the explicit meta l4proto at
	// pendL4 being listed (ct original proto-dst): nothing may fold it.
	l4Pinned bool
	// nfSet and l4Set are the values of an earlier set-valued meta
	// nfproto / meta l4proto match. nft's parser takes the last value
	// of such a set as the rule's protocol, and then refuses a later
	// match of another protocol: the text would not load.
	nfSet, l4Set string
}

func errAfterSet(what, set string) error {
	return fmt.Errorf("%s after a match on several protocols (%s): nft cannot parse that back; put the specific match first", what, set)
}

// familyOf is the meta nfproto value (ipv4, ipv6) of address family f.
func familyOf(f ruleset.Family) (string, error) {
	if nf := f.NFProto(); nf != "" {
		return nf, nil
	}
	return "", fmt.Errorf("family %q; use %s or %s", f, ruleset.IP, ruleset.IP6)
}

// lowerRule lowers r; sets are the ruleset's named sets by name.
func lowerRule(r *ruleset.Rule, sets map[string]*ruleset.Set, flowtable *ruleset.Flowtable) (lowered, error) {
	lr := lowered{rule: r}
	if err := checkString("id", r.ID, 128); err != nil {
		return lr, err
	}
	ctx, stmts, err := lowerMatches(r.Matches, sets)
	if err != nil {
		return lr, err
	}
	// nft merges a single source and a single destination port of one
	// protocol into one load and lists them together, source first, where
	// the source port was. Put them there, so that the text nft lists is
	// the text it reads back.
	if matches, moved, err := mergePortOrder(r.Matches, stmts); err != nil {
		return lr, err
	} else if moved {
		if ctx, stmts, err = lowerMatches(matches, sets); err != nil {
			return lr, err
		}
	}
	lr.stmts = stmts
	if m := r.Meter; m != nil {
		fam, err := familyOf(m.Family)
		if err != nil {
			return lr, fmt.Errorf("meter: %w", err)
		}
		set := sets[m.Set]
		if set == nil || !set.Dynamic {
			return lr, fmt.Errorf("meter: %q is not a dynamic set", m.Set)
		}
		if want := addrSetType(fam); set.Type != want {
			return lr, fmt.Errorf("meter: set %s has type %s, the %s saddr key needs %s", m.Set, set.Type, m.Family, want)
		}
		if err := checkLimit(m.Limit); err != nil {
			return lr, fmt.Errorf("meter: %w", err)
		}
		lr.meterUpdate = set.Timeout
		s := stmt{kind: stMeter, family: fam}
		if err := ctx.needNF(&s, lr.stmts, fam); err != nil {
			return lr, fmt.Errorf("meter: %w", err)
		}
		lr.stmts = append(lr.stmts, s)
	}
	if r.Limit != nil {
		if err := checkLimit(*r.Limit); err != nil {
			return lr, err
		}
		lr.stmts = append(lr.stmts, stmt{kind: stLimit})
	}
	if r.Counter {
		lr.stmts = append(lr.stmts, stmt{kind: stCounter})
	}
	if l := r.Log; l != nil {
		if err := checkString("log prefix", l.Prefix, 127); err != nil {
			return lr, err
		}
		if _, ok := logLevels[l.Level]; !ok && l.Level != "" {
			return lr, fmt.Errorf("log level %q; use one of %s", l.Level, strings.Join(logLevelNames, ", "))
		}
		if l.ToGroup && l.Level != "" {
			return lr, fmt.Errorf("log to group %d takes no level (%s)", l.Group, l.Level)
		}
		lr.stmts = append(lr.stmts, stmt{kind: stLog})
	}
	if n := r.NAT; n != nil {
		if err := checkNAT(ctx, n); err != nil {
			return lr, err
		}
		lr.stmts = append(lr.stmts, stmt{kind: stNAT})
	}
	if r.Offload {
		if flowtable == nil {
			return lr, errors.New("offload without a flowtable")
		}
		lr.flowtable = flowtable.Name
		lr.stmts = append(lr.stmts, stmt{kind: stOffload})
	}
	switch r.Verdict {
	case "":
	case ruleset.Accept, ruleset.Drop, ruleset.Return:
		lr.stmts = append(lr.stmts, stmt{kind: stVerdict})
	case ruleset.Jump, ruleset.Goto:
		if r.Target == "" {
			return lr, fmt.Errorf("%s without a target chain", r.Verdict)
		}
		lr.stmts = append(lr.stmts, stmt{kind: stVerdict})
	case ruleset.Reject:
		if ctx.nfSet != "" {
			return lr, errAfterSet("reject", ctx.nfSet)
		}
		s := stmt{kind: stVerdict, family: ctx.nf}
		// nft folds a meta nfproto into the reject only when no other
		// statement stands between them (matches may).
		fold := ctx.pendNF >= 0 && r.Limit == nil && !r.Counter && r.Log == nil && r.NAT == nil && !r.Offload
		switch r.RejectWith {
		case ruleset.RejectICMP:
		case ruleset.RejectTCPReset:
			if ctx.l4 != "tcp" {
				return lr, errors.New("reject with tcp reset needs a match on tcp first (meta l4proto tcp, tcp dport ...)")
			}
			if fold {
				// The listing would lose the family: a TCP reset names
				// none, and nft reads the text back without it.
				return lr, errors.New("reject with tcp reset right after a lone meta nfproto: nft lists the rule without the family; match an address of the family instead")
			}
			s.family = ""
		default:
			return lr, fmt.Errorf("reject with %q; use tcp reset or leave it empty (ICMP port unreachable)", r.RejectWith)
		}
		if fold {
			lr.stmts[ctx.pendNF].hidden = true
			ctx.pendNF = -1
		}
		lr.stmts = append(lr.stmts, s)
	default:
		return lr, fmt.Errorf("verdict %q; use accept, drop, reject, return, jump or goto", r.Verdict)
	}
	if r.RejectWith != ruleset.RejectICMP && r.Verdict != ruleset.Reject {
		return lr, fmt.Errorf("reject with %s on a rule whose verdict is %q", r.RejectWith, r.Verdict)
	}
	if len(lr.stmts) == 0 {
		return lr, errors.New("rule has neither matches nor statements")
	}
	return lr, nil
}

func lowerMatches(matches []ruleset.Match, sets map[string]*ruleset.Set) (*lowerCtx, []stmt, error) {
	ctx := &lowerCtx{pendNF: -1, pendL4: -1, l4At: -1}
	var stmts []stmt
	for i := range matches {
		s, err := lowerMatch(ctx, matches[i], sets, stmts)
		if err != nil {
			return nil, nil, fmt.Errorf("match %d (%s): %w", i+1, matches[i].Kind, err)
		}
		stmts = append(stmts, s)
	}
	return ctx, stmts, nil
}

// mergePortOrder returns the matches with a single destination port
// moved right after the single source port of the same protocol, and
// whether that changed anything.
func mergePortOrder(matches []ruleset.Match, stmts []stmt) ([]ruleset.Match, bool, error) {
	single := func(s stmt, kind ruleset.MatchKind) bool {
		return s.kind == stMatch && s.m.Kind == kind && !s.m.Negate && s.m.Set == "" && !s.set && s.m.Ports[0].From == s.m.Ports[0].To
	}
	sp, dp := -1, -1
	for i, s := range stmts {
		for _, k := range []struct {
			kind ruleset.MatchKind
			at   *int
		}{{ruleset.SPort, &sp}, {ruleset.DPort, &dp}} {
			if !single(s, k.kind) {
				continue
			}
			if *k.at >= 0 {
				return nil, false, fmt.Errorf("two single %s matches; merge them into one list", k.kind)
			}
			*k.at = i
		}
	}
	if sp < 0 || dp < 0 {
		return matches, false, nil
	}
	if stmts[sp].proto == "" || stmts[dp].proto == "" {
		return nil, false, errors.New("a single source and a single destination port without tcp or udp: nft would merge them into a raw @th match; name the protocol")
	}
	if stmts[sp].proto != stmts[dp].proto || dp == sp+1 {
		return matches, false, nil
	}
	// Both keep the protocol they were read with; a raw th port that
	// moves ahead of the match that named the protocol would lose it.
	proto := []string{stmts[sp].proto}
	out := make([]ruleset.Match, 0, len(matches))
	for i, m := range matches {
		switch i {
		case dp:
			continue
		case sp:
			m.Protos = proto
			d := matches[dp]
			d.Protos = proto
			out = append(out, m, d)
			continue
		}
		out = append(out, m)
	}
	return out, true, nil
}

// needNF makes s depend on network family fam: an implicit dependency if
// the family is still unknown, else the explicit one nft folds into s.
func (c *lowerCtx) needNF(s *stmt, stmts []stmt, fam string) error {
	if c.nfSet != "" {
		return errAfterSet(fam, c.nfSet)
	}
	switch {
	case c.nf == "":
		s.depNF = fam
		c.nf = fam
	case c.nf != fam:
		return fmt.Errorf("%s after a match that limits the rule to %s", fam, c.nf)
	case c.pendNF >= 0:
		stmts[c.pendNF].hidden = true
		c.pendNF = -1
	}
	return nil
}

func addrSetType(fam string) ruleset.SetType {
	if fam == "ipv6" {
		return ruleset.IPv6Addr
	}
	return ruleset.IPv4Addr
}

func checkLimit(l ruleset.Limit) error {
	if l.Rate == 0 {
		return errors.New("limit rate 0")
	}
	if _, ok := limitUnits[l.Unit]; !ok {
		return fmt.Errorf("limit unit %q; use second, minute, hour, day or week", l.Unit)
	}
	return nil
}

func checkNAT(ctx *lowerCtx, n *ruleset.NAT) error {
	if n.PortEnd != 0 && n.PortEnd < n.Port {
		return fmt.Errorf("%s port range %d-%d", n.Kind, n.Port, n.PortEnd)
	}
	switch n.Kind {
	case ruleset.Masquerade, ruleset.Redirect:
		if n.Addr.IsValid() {
			return fmt.Errorf("%s takes no address", n.Kind)
		}
	case ruleset.SNAT, ruleset.DNAT:
		fam, err := familyOf(n.Family)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Kind, err)
		}
		if ctx.nfSet != "" {
			return errAfterSet(string(n.Kind)+" "+string(n.Family), ctx.nfSet)
		}
		if !n.Addr.IsValid() || n.Addr.Is4() != (fam == "ipv4") || n.Addr.Is4In6() {
			return fmt.Errorf("%s %s to %v: not an %s address", n.Kind, n.Family, n.Addr, fam)
		}
		if ctx.nf != "" && ctx.nf != fam {
			return fmt.Errorf("%s %s in a rule limited to %s", n.Kind, n.Family, ctx.nf)
		}
	default:
		return fmt.Errorf("nat kind %q; use masquerade, snat, dnat or redirect", n.Kind)
	}
	if n.Port == 0 && n.PortEnd != 0 {
		return fmt.Errorf("%s port range without a first port", n.Kind)
	}
	if n.Port != 0 && ctx.l4 == "" && ctx.l4Set == "" {
		return fmt.Errorf("%s to a port needs a match on the transport protocol (not a negated one) first", n.Kind)
	}
	return nil
}

// checkString refuses what nft cannot print back as a quoted string.
func checkString(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s %q is longer than %d bytes", what, s, max)
	}
	for _, r := range s {
		if r == '"' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q: quotes and control characters cannot be written in nft syntax", what, s)
		}
	}
	return nil
}

// checkName refuses names nft lists unquoted but cannot parse back.
func checkName(what, name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%s name %q: empty or longer than 255 bytes", what, name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' ||
			i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.')
		if !ok {
			return fmt.Errorf("%s name %q: use letters, digits, _ . and -, starting with a letter or _", what, name)
		}
	}
	if keywords[name] {
		return fmt.Errorf("%s name %q is an nft keyword; nft could not parse the listing back", what, name)
	}
	return nil
}

// ifnameKey is an interface name as the kernel compares it: NUL-padded to
// IFNAMSIZ.
func ifnameKey(name string) []byte {
	k := make([]byte, 16)
	copy(k, name)
	return k
}

func normIfnames(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, errors.New("no interface names")
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n == "" || len(n) > 15 || strings.ContainsAny(n, "\"\x00/ \t\n") {
			return nil, fmt.Errorf("interface name %q: 1 to 15 bytes, no quotes, slashes or spaces", n)
		}
		if i := strings.IndexByte(n, '*'); i >= 0 && (i != len(n)-1 || i == 0) {
			return nil, fmt.Errorf("interface name %q: a * may only end a name (a wildcard such as veth*)", n)
		}
		if strings.HasSuffix(n, "*") && len(names) > 1 {
			return nil, fmt.Errorf("wildcard interface name %q must be matched on its own, not with %d other names", n, len(names)-1)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	// nft sorts set elements by value; interface names are host-endian
	// strings, so they compare from the last byte of the padded key (the
	// router and CI are little-endian).
	slices.SortFunc(out, func(a, b string) int {
		ka, kb := ifnameKey(a), ifnameKey(b)
		slices.Reverse(ka)
		slices.Reverse(kb)
		return bytes.Compare(ka, kb)
	})
	return out, nil
}

// normPrefixes masks, sorts and de-duplicates prefixes of family fam, and
// drops those inside another one (an interval set cannot hold both).
func normPrefixes(ps []netip.Prefix, fam string) ([]netip.Prefix, error) {
	if len(ps) == 0 {
		return nil, errors.New("no addresses")
	}
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() || p.Addr().Is4() != (fam == "ipv4") || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%v is not an %s prefix", p, fam)
		}
		out = append(out, p.Masked())
	}
	return prefixes.DropCovered(out), nil
}

func normPorts(ports []ruleset.PortRange) ([]ruleset.PortRange, error) {
	if len(ports) == 0 {
		return nil, errors.New("no ports")
	}
	out := make([]ruleset.PortRange, 0, len(ports))
	for _, p := range ports {
		if p.To == 0 {
			p.To = p.From
		}
		if p.To < p.From {
			return nil, fmt.Errorf("port range %d-%d", p.From, p.To)
		}
		out = append(out, p)
	}
	return canonRanges(out)
}

// canonRanges sorts port ranges and drops those inside another one; a
// partial overlap is an error (nft would refuse it too).
func canonRanges(rs []ruleset.PortRange) ([]ruleset.PortRange, error) {
	slices.SortFunc(rs, func(a, b ruleset.PortRange) int {
		if a.From != b.From {
			return int(a.From) - int(b.From)
		}
		return int(b.To) - int(a.To)
	})
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r.From <= out[n-1].To {
			if r.To <= out[n-1].To {
				continue
			}
			return nil, fmt.Errorf("port ranges %d-%d and %d-%d overlap", out[n-1].From, out[n-1].To, r.From, r.To)
		}
		out = append(out, r)
	}
	return out, nil
}

func normProtos(protos []string) ([]string, error) {
	if len(protos) == 0 {
		return nil, errors.New("no protocols")
	}
	var out []string
	for _, p := range protos {
		if a, ok := l4protoAlias[p]; ok {
			p = a
		}
		if _, ok := l4protos[p]; !ok {
			return nil, fmt.Errorf("protocol %q; use tcp, udp, icmp, ipv6-icmp, sctp, udplite, gre, esp or ah", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return int(l4protos[a]) - int(l4protos[b]) })
	return out, nil
}

func normNFProtos(vals []string) ([]string, error) {
	if len(vals) == 0 {
		return nil, errors.New("no families")
	}
	var out []string
	for _, v := range vals {
		if _, ok := nfprotos[v]; !ok {
			return nil, fmt.Errorf("family %q; use ipv4 or ipv6", v)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return int(nfprotos[a]) - int(nfprotos[b]) })
	return out, nil
}

func normBits(table []namedBit, vals []string) ([]string, error) {
	if len(vals) == 0 {
		return nil, errors.New("no values")
	}
	var mask uint32
	for _, v := range vals {
		b, ok := bitOf(table, v)
		if !ok {
			names := make([]string, len(table))
			for i, e := range table {
				names[i] = e.name
			}
			return nil, fmt.Errorf("value %q; use %s", v, strings.Join(names, ", "))
		}
		mask |= b
	}
	var out []string
	for _, e := range table {
		if mask&e.bit != 0 {
			out = append(out, e.name)
		}
	}
	return out, nil
}

func bitOf(table []namedBit, name string) (uint32, bool) {
	for _, e := range table {
		if e.name == name {
			return e.bit, true
		}
	}
	return 0, false
}

func bitsOf(table []namedBit, names []string) uint32 {
	var mask uint32
	for _, n := range names {
		b, _ := bitOf(table, n)
		mask |= b
	}
	return mask
}

func normBytes(table []namedByte, vals []string) ([]string, error) {
	if len(vals) == 0 {
		return nil, errors.New("no types")
	}
	var nums []uint8
	for _, v := range vals {
		n, ok := lookupByte(table, v)
		if !ok {
			return nil, fmt.Errorf("type %q is not one nft knows", v)
		}
		if !slices.Contains(nums, n) {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	out := make([]string, len(nums))
	for i, n := range nums {
		out[i] = byteName(table, n)
	}
	return out, nil
}
