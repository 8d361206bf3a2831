package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// matchKind is everything this package knows about one kind of match
// (ruleset.MatchKind): how it is checked and normalised the way nft's
// evaluator does (lower), printed the way nft lists it (render) and sent
// to the kernel (build). Lowering, Render and Apply look a kind up here
// and nowhere else, so a new kind is one entry in matchKinds.
type matchKind struct {
	// setType is the type of the named set a match of this kind looks
	// up, and how the match reads in an error ("ip saddr"); nil for
	// kinds that look up no named sets.
	setType func(m ruleset.Match) (t ruleset.SetType, what string, err error)
	// lower checks s.m and normalises its values into the order nft
	// prints them, and tells ctx what the match implies for the rest of
	// the rule; stmts are the statements before it.
	lower func(ctx *lowerCtx, s *stmt, stmts []stmt) error
	// render prints the lowered match.
	render func(s stmt) string
	// build sends the lowered match to e.
	build func(e emitter, s stmt) error
}

var matchKinds = map[ruleset.MatchKind]matchKind{
	ruleset.IIFName:         ifnameMatch(metaIIFName),
	ruleset.OIFName:         ifnameMatch(metaOIFName),
	ruleset.SAddr:           addrMatch,
	ruleset.DAddr:           addrMatch,
	ruleset.L4Proto:         l4protoMatch,
	ruleset.DPort:           portMatch,
	ruleset.SPort:           portMatch,
	ruleset.CtState:         ctMatch(ctState, "state", ctStates),
	ruleset.CtStatus:        ctMatch(ctStatus, "status", ctStatuses),
	ruleset.CtOriginalDPort: ctOrigPortMatch,
	ruleset.FibDAddrLocal:   fibLocalMatch,
	ruleset.ICMPType:        icmpMatch("icmp", "ipv4", "icmp", icmpTypes, dtICMPType),
	ruleset.ICMPv6Type:      icmpMatch("icmpv6", "ipv6", "ipv6-icmp", icmpv6Types, dtICMPv6Type),
	ruleset.NFProto:         nfprotoMatch,
}

// emitter takes a match's expressions: a load into register 1, then
// comparisons of it. The netlink builder implements it (Linux).
type emitter interface {
	meta(key metaKey)
	payload(base payloadBase, off, n uint32)
	ct(key ctKey)
	// fibDAddrType loads the address type of the destination.
	fibDAddrType()
	cmp(op cmpOp, data []byte)
	// notInRange compares with != from-to.
	notInRange(from, to []byte)
	// mask ands register 1 with mask.
	mask(mask []byte)
	// lookup looks register 1 up in the named set.
	lookup(set string, neg bool)
	// anonLookup looks register 1 up in a new anonymous constant set of
	// keys.
	anonLookup(dt datatype, interval bool, keys []kelem, neg bool) error
}

// The loads, comparisons and key types an emitter knows.
type (
	metaKey     int
	payloadBase int
	ctKey       int
	cmpOp       int
	datatype    int
)

const (
	metaIIFName metaKey = iota
	metaOIFName
	metaNFProto
	metaL4Proto
)

const (
	networkHeader payloadBase = iota
	transportHeader
)

const (
	ctState ctKey = iota
	ctStatus
	// ctOrigProtoDst is the transport destination of the original
	// direction.
	ctOrigProtoDst
)

const (
	cmpEq cmpOp = iota
	cmpNeq
	cmpGte
	cmpLte
)

const (
	dtIfname datatype = iota
	dtIPv4Addr
	dtIPv6Addr
	dtInetService
	dtInetProto
	dtNFProto
	dtICMPType
	dtICMPv6Type
)

// rtnLocal is RTN_LOCAL, the address type fib reports for the host's
// own addresses.
const rtnLocal = 2

// setDatatype is the key type of a named set of type t.
func setDatatype(t ruleset.SetType) datatype {
	switch t {
	case ruleset.IPv6Addr:
		return dtIPv6Addr
	case ruleset.InetService:
		return dtInetService
	}
	return dtIPv4Addr
}

func eqOp(neg bool) cmpOp {
	if neg {
		return cmpNeq
	}
	return cmpEq
}

// neq is the operator nft prints for a negated match.
func neq(m ruleset.Match) string {
	if m.Negate {
		return "!= "
	}
	return ""
}

// matchValues compares register 1 with one key, or looks it up in an
// anonymous set of several.
func matchValues(e emitter, dt datatype, keys [][]byte, neg bool) error {
	if len(keys) == 1 {
		e.cmp(eqOp(neg), keys[0])
		return nil
	}
	ks := make([]kelem, len(keys))
	for i, k := range keys {
		ks[i] = kelem{key: k}
	}
	return e.anonLookup(dt, false, ks, neg)
}

// inRange compares register 1 with from-to: two comparisons, as nft
// compiles a range, or one != range.
func inRange(e emitter, from, to []byte, neg bool) {
	if neg {
		e.notInRange(from, to)
		return
	}
	e.cmp(cmpGte, from)
	e.cmp(cmpLte, to)
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// iifname, oifname: interface names, NUL-padded; a single name ending
// in * compares its first bytes only (veth*).
func ifnameMatch(key metaKey) matchKind {
	return matchKind{
		lower: func(ctx *lowerCtx, s *stmt, stmts []stmt) error {
			names, err := normIfnames(s.m.Names)
			s.m.Names = names
			return err
		},
		render: func(s stmt) string {
			q := make([]string, len(s.m.Names))
			for i, n := range s.m.Names {
				q[i] = quote(n)
			}
			return fmt.Sprintf("%s %s%s", s.m.Kind, neq(s.m), list(q))
		},
		build: func(e emitter, s stmt) error {
			m := s.m
			e.meta(key)
			if n := m.Names[0]; len(m.Names) == 1 && strings.HasSuffix(n, "*") {
				e.cmp(eqOp(m.Negate), []byte(strings.TrimSuffix(n, "*")))
				return nil
			}
			keys := make([][]byte, len(m.Names))
			for i, n := range m.Names {
				keys[i] = ifnameKey(n)
			}
			return matchValues(e, dtIfname, keys, m.Negate)
		},
	}
}

// ip saddr, ip6 daddr, ...: prefixes, merged as nft merges them, or a
// named set.
var addrMatch = matchKind{
	setType: func(m ruleset.Match) (ruleset.SetType, string, error) {
		fam, err := familyOf(m.Family)
		return addrSetType(fam), fmt.Sprintf("%s %s", m.Family, m.Kind), err
	},
	lower: func(ctx *lowerCtx, s *stmt, stmts []stmt) error {
		m := &s.m
		fam, err := familyOf(m.Family)
		if err != nil {
			return err
		}
		s.family = fam
		if m.Set == "" {
			ps, err := normPrefixes(m.Prefixes, fam)
			if err != nil {
				return err
			}
			m.Prefixes = ps
			if len(ps) > 1 && slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Bits() != p.Addr().BitLen() }) {
				s.ranges = mergeRanges(ps)
				if len(s.ranges) == 1 {
					if p, ok := s.ranges[0].prefix(); ok {
						m.Prefixes, s.ranges = []netip.Prefix{p}, nil
					}
				}
			}
			s.set = len(s.ranges) > 1 || s.ranges == nil && len(m.Prefixes) > 1
		}
		return ctx.needNF(s, stmts, fam)
	},
	render: func(s stmt) string {
		m := s.m
		if m.Set != "" {
			return fmt.Sprintf("%s %s %s@%s", m.Family, m.Kind, neq(m), m.Set)
		}
		var vals []string
		if s.ranges != nil {
			for _, r := range s.ranges {
				vals = append(vals, r.String())
			}
		} else {
			for _, p := range m.Prefixes {
				vals = append(vals, prefixString(p))
			}
		}
		return fmt.Sprintf("%s %s %s%s", m.Family, m.Kind, neq(m), valueList(vals, s.set))
	},
	build: func(e emitter, s stmt) error {
		m, neg := s.m, s.m.Negate
		off, n := addrOffset(m.Kind, s.family)
		switch {
		case m.Set != "":
			e.payload(networkHeader, off, n)
			e.lookup(m.Set, neg)
		case !s.set && s.ranges != nil:
			e.payload(networkHeader, off, n)
			inRange(e, s.ranges[0].first.AsSlice(), s.ranges[0].last.AsSlice(), neg)
		case !s.set:
			// nft's code: a byte-aligned prefix loads only its bytes, any
			// other is masked.
			p := m.Prefixes[0]
			addr := p.Addr().AsSlice()
			if bits := p.Bits(); bits%8 == 0 && bits > 0 {
				e.payload(networkHeader, off, uint32(bits/8))
				e.cmp(eqOp(neg), addr[:bits/8])
				return nil
			}
			e.payload(networkHeader, off, n)
			e.mask(maskBytes(p))
			e.cmp(eqOp(neg), addr)
		default:
			e.payload(networkHeader, off, n)
			var keys []kelem
			interval := s.ranges != nil
			if interval {
				for _, r := range s.ranges {
					keys = append(keys, kelem{key: r.first.AsSlice()})
					if end, ok := increment(r.last.AsSlice()); ok {
						keys = append(keys, kelem{key: end, end: true})
					}
				}
			} else {
				for _, p := range m.Prefixes {
					keys = append(keys, kelem{key: p.Addr().AsSlice()})
				}
			}
			return e.anonLookup(setDatatype(addrSetType(s.family)), interval, keys, neg)
		}
		return nil
	},
}

// addrOffset is where the source or destination address of family fam
// (ipv4, ipv6) is in the network header, and its length.
func addrOffset(kind ruleset.MatchKind, fam string) (off, n uint32) {
	if fam == "ipv6" {
		if kind == ruleset.DAddr {
			return 24, 16
		}
		return 8, 16
	}
	if kind == ruleset.DAddr {
		return 16, 4
	}
	return 12, 4
}

func maskBytes(p netip.Prefix) []byte {
	b := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}

// meta l4proto: transport protocols.
var l4protoMatch = matchKind{
	lower: func(ctx *lowerCtx, s *stmt, stmts []stmt) error {
		m := &s.m
		idx := len(stmts)
		protos, err := normProtos(m.Protos)
		if err != nil {
			return err
		}
		m.Protos = protos
		if len(protos) > 1 && !m.Negate {
			ctx.l4Set = "{ " + strings.Join(protos, ", ") + " }"
		}
		if m.Negate || len(protos) != 1 {
			return nil
		}
		switch ctx.l4 {
		case "":
			ctx.l4, ctx.pendL4, ctx.l4At = protos[0], idx, idx
			// nft reads an ICMP protocol as implying its family and
			// folds a meta nfproto of that family before it.
			if implied := map[string]string{"icmp": "ipv4", "ipv6-icmp": "ipv6"}[protos[0]]; implied != "" && ctx.pendNF >= 0 && ctx.nf == implied {
				stmts[ctx.pendNF].hidden = true
				ctx.pendNF = -1
			}
		case protos[0]:
			// Already known: redundant, and nft would list a second
			// one differently from the first.
			s.omit = true
		default:
			return fmt.Errorf("%s after a match that limits the rule to %s", protos[0], ctx.l4)
		}
		return nil
	},
	render: func(s stmt) string {
		return fmt.Sprintf("meta l4proto %s%s", neq(s.m), list(s.m.Protos))
	},
	build: func(e emitter, s stmt) error {
		e.meta(metaL4Proto)
		keys := make([][]byte, len(s.m.Protos))
		for i, p := range s.m.Protos {
			keys[i] = []byte{l4protos[p]}
		}
		return matchValues(e, dtInetProto, keys, s.m.Negate)
	},
}

// tcp dport, udp sport, th dport, ...: ports of Protos[0], or of the
// transport the rule already limits itself to, or of any (th).
var portMatch = matchKind{
	setType: func(ruleset.Match) (ruleset.SetType, string, error) {
		return ruleset.InetService, "a port match", nil
	},
	lower: func(ctx *lowerCtx, s *stmt, stmts []stmt) error {
		m := &s.m
		idx := len(stmts)
		proto := ""
		if len(m.Protos) > 0 {
			p, err := normProtos(m.Protos[:1])
			if err != nil {
				return err
			}
			proto = p[0]
			if proto != "tcp" && proto != "udp" {
				return fmt.Errorf("ports of %s; use tcp, udp or no protocol (th)", proto)
			}
		} else if ctx.l4 == "tcp" || ctx.l4 == "udp" {
			// nft reads the raw transport header as the known protocol's.
			proto = ctx.l4
		} else if ctx.l4 != "" {
			return fmt.Errorf("port match after a match that limits the rule to %s", ctx.l4)
		}
		s.proto = proto
		m.Protos = nil
		if proto != "" && ctx.l4Set != "" {
			return errAfterSet(proto+" port", ctx.l4Set)
		}
		if proto != "" {
			m.Protos = []string{proto}
			switch {
			case ctx.l4 == "":
				s.depL4 = proto
				ctx.l4, ctx.l4At = proto, idx
			case ctx.l4 != proto:
				return fmt.Errorf("%s port after a match that limits the rule to %s", proto, ctx.l4)
			case ctx.pendL4 >= 0:
				if ctx.l4Pinned {
					return fmt.Errorf("%s port after a ct original proto-dst that relies on the meta l4proto before it: nft would list the rule without that and could not read it back; put the port match first", proto)
				}
				stmts[ctx.pendL4].hidden = true
				ctx.pendL4 = -1
			}
		}
		if m.Set == "" {
			ports, err := normPorts(m.Ports)
			if err != nil {
				return err
			}
			if len(ports) > 1 && slices.ContainsFunc(ports, func(p ruleset.PortRange) bool { return p.From != p.To }) {
				ports = mergePorts(ports)
			}
			m.Ports = ports
			s.set = len(ports) > 1
		}
		return nil
	},
	render: func(s stmt) string {
		m := s.m
		proto := s.proto
		if proto == "" {
			proto = "th"
		}
		if m.Set != "" {
			return fmt.Sprintf("%s %s %s@%s", proto, m.Kind, neq(m), m.Set)
		}
		vals := make([]string, len(m.Ports))
		for i, p := range m.Ports {
			vals[i] = portRangeString(p)
		}
		return fmt.Sprintf("%s %s %s%s", proto, m.Kind, neq(m), valueList(vals, s.set))
	},
	build: func(e emitter, s stmt) error {
		m, neg := s.m, s.m.Negate
		off := uint32(2)
		if m.Kind == ruleset.SPort {
			off = 0
		}
		e.payload(transportHeader, off, 2)
		switch p := m.Ports; {
		case m.Set != "":
			e.lookup(m.Set, neg)
		case !s.set && p[0].From == p[0].To:
			e.cmp(eqOp(neg), be16(p[0].From))
		case !s.set:
			inRange(e, be16(p[0].From), be16(p[0].To), neg)
		default:
			set := &ruleset.Set{Type: ruleset.InetService}
			elems := make([]ruleset.Element, len(p))
			for i, r := range p {
				elems[i] = ruleset.Element{Port: r.From, PortEnd: r.To}
				set.Interval = set.Interval || r.To != r.From
			}
			return e.anonLookup(dtInetService, set.Interval, kernelElements(set, elems), neg)
		}
		return nil
	},
}

// ct state, ct status: any of the bits set, or (negated) none of them.
func ctMatch(key ctKey, name string, bits []namedBit) matchKind {
	return matchKind{
		lower: func(ctx *lowerCtx, s *stmt, stmts []stmt) error {
			vals, err := normBits(bits, s.m.Values)
			s.m.Values = vals
			return err
		},
		render: func(s stmt) string {
			if s.m.Negate {
				// Sent as "none of these bits"; nft 1.0.6 lists that as "!".
				return fmt.Sprintf("ct %s ! %s", name, strings.Join(s.m.Values, ","))
			}
			return fmt.Sprintf("ct %s %s", name, strings.Join(s.m.Values, ","))
		},
		build: func(e emitter, s stmt) error {
			// Conntrack status has several bits at once, so != on the
			// value would not mean "not dnat".
			op := cmpNeq
			if s.m.Negate {
				op = cmpEq
			}
			e.ct(key)
			e.mask(ne32(bitsOf(bits, s.m.Values)))
			e.cmp(op, make([]byte, 4))
			return nil
		},
	}
}

// ct original proto-dst: the destination port the connection was opened
// to, before DNAT. nft types the value by the transport the rule already
// knows (without one it cannot even parse a port), and lists a set of
// them with invalid types: one port or range only.
var ctOrigPortMatch = matchKind{
	lower: func(ctx *lowerCtx, s *stmt, stmts []stmt) error {
		m := &s.m
		if ctx.l4Set != "" {
			return errAfterSet("ct original proto-dst", ctx.l4Set)
		}
		if ctx.l4 != "tcp" && ctx.l4 != "udp" {
			return errors.New("ct original proto-dst needs a match on tcp or udp first (meta l4proto tcp, udp dport ...)")
		}
		ports, err := normPorts(m.Ports)
		if err != nil {
			return err
		}
		if len(mergePorts(ports)) != 1 {
			return fmt.Errorf("%d port ranges; ct original proto-dst takes one port or range (nft cannot list a set of them)", len(ports))
		}
		m.Ports = mergePorts(ports)
		// An explicit meta l4proto it relies on must stay listed: a later
		// port match would fold it, and nft could not read the text back.
		if ctx.pendL4 >= 0 {
			ctx.l4Pinned = true
		}
		return nil
	},
	render: func(s stmt) string {
		return "ct original proto-dst " + neq(s.m) + portRangeString(s.m.Ports[0])
	},
	build: func(e emitter, s stmt) error {
		p := s.m.Ports[0]
		e.ct(ctOrigProtoDst)
		if p.From == p.To {
			e.cmp(eqOp(s.m.Negate), be16(p.From))
			return nil
		}
		inRange(e, be16(p.From), be16(p.To), s.m.Negate)
		return nil
	},
}

// fib daddr type local: packets to one of the host's own addresses.
var fibLocalMatch = matchKind{
	lower: func(*lowerCtx, *stmt, []stmt) error { return nil },
	render: func(s stmt) string {
		return "fib daddr type " + neq(s.m) + "local"
	},
	build: func(e emitter, s stmt) error {
		e.fibDAddrType()
		e.cmp(eqOp(s.m.Negate), ne32(rtnLocal))
		return nil
	},
}

// icmp type, icmpv6 type: by nft's names; the match implies its family
// (nf) and protocol (proto).
func icmpMatch(name, nf, proto string, types []namedByte, dt datatype) matchKind {
	return matchKind{
		lower: func(ctx *lowerCtx, s *stmt, stmts []stmt) error {
			idx := len(stmts)
			vals, err := normBytes(types, s.m.Values)
			if err != nil {
				return err
			}
			s.m.Values = vals
			s.family = nf
			if ctx.l4Set != "" {
				return errAfterSet(proto, ctx.l4Set)
			}
			switch {
			case ctx.l4 == proto && ctx.nf == "" && ctx.pendL4 >= 0:
				// An explicit meta l4proto and no family yet: nft lists the
				// rule without the meta l4proto but could then not tell the
				// family (a reject after it lists as plain ICMPX), and its
				// text would compile differently. The ICMP match implies the
				// meta l4proto: drop it and add both dependencies here, as
				// nft compiles the listed text.
				stmts[ctx.pendL4].omit = true
				ctx.pendL4 = -1
				if err := ctx.needNF(s, stmts, nf); err != nil {
					return err
				}
				s.depL4 = proto
				ctx.l4At = idx
			case ctx.l4 == proto:
				// nft adds no dependency after an explicit meta l4proto; the
				// listing folds that match (and a meta nfproto before it).
				if ctx.nf != nf {
					return fmt.Errorf("%s after a match that limits the rule to %s", nf, ctx.nf)
				}
				if ctx.pendL4 >= 0 {
					stmts[ctx.pendL4].hidden = true
					ctx.pendL4 = -1
					if ctx.pendNF >= 0 && ctx.pendNF < ctx.l4At {
						stmts[ctx.pendNF].hidden = true
						ctx.pendNF = -1
					}
				}
			case ctx.l4 == "":
				if err := ctx.needNF(s, stmts, nf); err != nil {
					return err
				}
				s.depL4 = proto
				ctx.l4, ctx.l4At = proto, idx
			default:
				return fmt.Errorf("%s after a match that limits the rule to %s", proto, ctx.l4)
			}
			return nil
		},
		render: func(s stmt) string {
			return fmt.Sprintf("%s type %s%s", name, neq(s.m), list(s.m.Values))
		},
		build: func(e emitter, s stmt) error {
			e.payload(transportHeader, 0, 1)
			keys := make([][]byte, len(s.m.Values))
			for i, v := range s.m.Values {
				n, _ := lookupByte(types, v)
				keys[i] = []byte{n}
			}
			return matchValues(e, dt, keys, s.m.Negate)
		},
	}
}

// meta nfproto: the family (ipv4, ipv6).
var nfprotoMatch = matchKind{
	lower: func(ctx *lowerCtx, s *stmt, stmts []stmt) error {
		m := &s.m
		vals, err := normNFProtos(m.Values)
		if err != nil {
			return err
		}
		m.Values = vals
		if len(vals) > 1 && !m.Negate {
			ctx.nfSet = "{ " + strings.Join(vals, ", ") + " }"
		}
		if m.Negate || len(vals) != 1 {
			return nil
		}
		switch ctx.nf {
		case "":
			ctx.nf, ctx.pendNF = vals[0], len(stmts)
		case vals[0]:
			s.omit = true // already known, as for meta l4proto
		default:
			return fmt.Errorf("%s after a match that limits the rule to %s", vals[0], ctx.nf)
		}
		return nil
	},
	render: func(s stmt) string {
		return fmt.Sprintf("meta nfproto %s%s", neq(s.m), list(s.m.Values))
	},
	build: func(e emitter, s stmt) error {
		e.meta(metaNFProto)
		keys := make([][]byte, len(s.m.Values))
		for i, v := range s.m.Values {
			keys[i] = []byte{nfprotos[v]}
		}
		return matchValues(e, dtNFProto, keys, s.m.Negate)
	},
}

// lowerMatch lowers the match m of a rule whose statements so far are
// stmts: the named set it looks up checked, then its kind's lower.
func lowerMatch(ctx *lowerCtx, m ruleset.Match, sets map[string]*ruleset.Set, stmts []stmt) (stmt, error) {
	s := stmt{kind: stMatch, m: m}
	k, ok := matchKinds[m.Kind]
	if !ok {
		return s, fmt.Errorf("unknown match kind %q", m.Kind)
	}
	if m.Set != "" {
		set := sets[m.Set]
		if set == nil {
			return s, fmt.Errorf("undefined set %q", m.Set)
		}
		if k.setType == nil {
			return s, errors.New("only address and port matches look up named sets")
		}
		want, what, err := k.setType(m)
		if err != nil {
			return s, err
		}
		if set.Type != want {
			return s, fmt.Errorf("set %s has type %s, %s needs %s", m.Set, set.Type, what, want)
		}
		if len(m.Prefixes) > 0 || len(m.Ports) > 0 {
			return s, errors.New("both a set and values")
		}
	}
	err := k.lower(ctx, &s, stmts)
	return s, err
}
