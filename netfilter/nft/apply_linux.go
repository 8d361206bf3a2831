//go:build linux

package nft

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/homeedge/edge/netfilter/ruleset"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Element chunks: at most maxChunk elements per NEWSETELEM message
// (docs/targets.md), and few enough bytes that the element list stays under
// netlink's 64 KiB attribute length when elements carry comments.
const (
	maxChunk      = 1000
	maxChunkBytes = 60000
)

// expiryMargin: elements with less time left than this may be gone by
// the time the element count is read back, and are not missed then.
const expiryMargin = 30 * time.Second

// ApplyOption changes what Apply carries into the new table.
type ApplyOption func(*applyOptions)

type applyOptions struct {
	state *State
	keep  bool
}

// WithState makes Apply carry st (rule counters by rule ID, elements of
// timeout sets) into the new table; see the package documentation.
func WithState(st *State) ApplyOption {
	return func(o *applyOptions) { o.state = st }
}

// KeepState makes Apply read the live table's state (ReadState) right
// before it replaces the table, and carry it over. Whatever changes
// between that read and the commit (packets counted, elements added in
// those few milliseconds) is lost.
func KeepState() ApplyOption {
	return func(o *applyOptions) { o.keep = true }
}

// Apply replaces table inet r.Table with r in one netlink transaction:
// the table is declared, deleted and rebuilt in a single batch, so the
// kernel switches from the old ruleset to the new one atomically, a
// refused batch changes nothing, and no other table is touched. Set
// elements go out in chunks of at most 1,000; after the commit the
// element count of every set is read back and must match.
//
// r must pass Check; nothing is sent otherwise. A refusal by the kernel
// is a *BatchError naming the rule, set or chain it refused.
func Apply(c *Conn, r *ruleset.Ruleset, opts ...ApplyOption) error {
	p, err := prepare(r)
	if err != nil {
		return fmt.Errorf("apply %s: %w", tableRef(tableName(r)), err)
	}
	return apply(c, r, p, opts...)
}

// Validate checks r against the kernel without changing anything, for
// the prepare step of a daemon's two-phase reload (Apply is the commit).
//
// It runs Check, then sends the batch Apply would send for r and opts
// (KeepState reads the live state as Apply does) without its
// NFNL_MSG_BATCH_END. The kernel processes every message as for a
// commit (tables, chains, sets and their elements, rules, the modules
// they need), reports each one it refuses, and then aborts the
// unfinished transaction (NFNL_ABORT_VALIDATE; nft -c works the same
// way). A refusal is the *BatchError Apply's would be, naming the same
// objects.
//
// The checks a commit runs on the whole table (jump loops and depth,
// statements reached from hooks they cannot run in) are Check's: the
// kernel (Linux 6.18) skips them when it aborts a batch that creates
// the table, as every replace does, and nft -c misses them too.
// TestValidateCommitChecks shows both, and that Check names the rule a
// failed commit names. What only a commit can find (memory running out
// while committing, the element counts read back after it) stays
// Apply's to report.
func Validate(c *Conn, r *ruleset.Ruleset, opts ...ApplyOption) error {
	p, err := prepare(r)
	if err != nil {
		return fmt.Errorf("validate %s: %w", tableRef(tableName(r)), err)
	}
	return validate(c, r, p, opts...)
}

// validate is Validate after Check (p may be nil); tests call it to
// send what Check would refuse.
func validate(c *Conn, r *ruleset.Ruleset, p *prepared, opts ...ApplyOption) error {
	b, err := batchFor(c, r, p, opts)
	if err != nil {
		return fmt.Errorf("validate %s: %w", tableRef(r.Table), err)
	}
	if err := c.batch(b.msgs, false); err != nil {
		return fmt.Errorf("validate %s: %w", tableRef(r.Table), err)
	}
	return nil
}

func tableName(r *ruleset.Ruleset) string {
	if r == nil {
		return ""
	}
	return r.Table
}

// apply is Apply after Check (p may be nil); tests call it to send what
// Validate would refuse.
func apply(c *Conn, r *ruleset.Ruleset, p *prepared, opts ...ApplyOption) error {
	b, err := batchFor(c, r, p, opts)
	if err != nil {
		return fmt.Errorf("apply %s: %w", tableRef(r.Table), err)
	}
	if err := c.send(b.msgs); err != nil {
		return fmt.Errorf("apply %s: %w", tableRef(r.Table), err)
	}
	if err := c.verifyCounts(r, b.counts); err != nil {
		return fmt.Errorf("apply %s: applied, but %w", tableRef(r.Table), err)
	}
	return nil
}

// batchFor builds the batch that replaces r's table, carrying over the
// state opts ask for.
func batchFor(c *Conn, r *ruleset.Ruleset, p *prepared, opts []ApplyOption) (*builder, error) {
	var o applyOptions
	for _, opt := range opts {
		opt(&o)
	}
	st := o.state
	if o.keep {
		live, err := ReadState(c, r.Table)
		if err != nil {
			return nil, fmt.Errorf("read the live state to keep: %w", err)
		}
		st = live
	}
	return build(r, p, st)
}

// verifyCounts reads back how many elements each set holds. The kernel
// reports a count with the set (NFTA_SET_COUNT, Linux 6.x) for the price
// of one request; when that matches what was sent, the set is complete.
// Otherwise (an older kernel, elements that expired meanwhile, or a
// count that means something else on this kernel) the set's elements
// are dumped and counted, which decides.
func (c *Conn) verifyCounts(r *ruleset.Ruleset, want map[string]setCount) error {
	quick, err := c.setCounts(r.Table)
	if err != nil {
		return fmt.Errorf("reading back the sets failed: %w", err)
	}
	for _, s := range r.Sets {
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		if got, ok := quick[s.Name]; ok && got == w.quick {
			continue
		}
		got, err := c.countElements(r.Table, s.Name)
		if err != nil {
			return fmt.Errorf("reading back set %s failed: %w", s.Name, err)
		}
		if got > w.n || got < w.n-w.mayExpire {
			return fmt.Errorf("set %s holds %d kernel elements where %d were sent", s.Name, got, w.n)
		}
	}
	return nil
}

// setCount is how many kernel elements a set must hold after an apply,
// and how many of those may have expired by the time they are counted.
// quick is the NFTA_SET_COUNT the kernel reports for a complete set:
// every element of a plain set, the end elements of an interval set
// (Linux 6.18; an interval that runs to the end of the key space has
// none).
type setCount struct{ n, mayExpire, quick int }

// builder collects the messages of one batch. Tables, chains, sets and
// flowtables are encoded by google/nftables (captured through its test
// dialer instead of sent); rules and set elements are encoded here.
type builder struct {
	t        *nftables.Table
	lib      *nftables.Conn
	captured []netlink.Message
	msgs     []message
	nextID   uint32
	setIDs   map[string]uint32
	counts   map[string]setCount
	counters map[string]Counter
}

func newBuilder(table string) (*builder, error) {
	b := &builder{
		t:      libTable(table),
		setIDs: map[string]uint32{},
		counts: map[string]setCount{},
	}
	lib, err := nftables.New(nftables.WithTestDial(b.capture))
	if err != nil {
		return nil, err
	}
	b.lib = lib
	return b, nil
}

// capture is the library's test dialer: it keeps what Flush sends and
// acknowledges each message.
func (b *builder) capture(req []netlink.Message) ([]netlink.Message, error) {
	if req == nil {
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 4)}}, nil
	}
	b.captured = append(b.captured, req...)
	return nil, nil
}

// libAdd queues what fn asks of the library under label.
func (b *builder) libAdd(label string, fn func(*nftables.Conn) error) error {
	if err := fn(b.lib); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	b.captured = b.captured[:0]
	if err := b.lib.Flush(); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if len(b.captured) < 2 {
		return nil
	}
	for _, m := range b.captured[1 : len(b.captured)-1] { // batch begin and end
		b.msgs = append(b.msgs, message{typ: uint16(m.Header.Type) & 0xff, flags: uint16(m.Header.Flags), data: m.Data, label: label})
	}
	return nil
}

func (b *builder) id() uint32 {
	b.nextID++
	return b.nextID
}

// build turns r into the messages of one transaction: declare the table,
// delete it, rebuild it.
func build(r *ruleset.Ruleset, p *prepared, st *State) (*builder, error) {
	b, err := newBuilder(r.Table)
	if err != nil {
		return nil, err
	}
	if st != nil {
		b.counters = st.Counters
	}
	t := b.t
	if err := b.libAdd(tableRef(r.Table), func(c *nftables.Conn) error { c.AddTable(t); return nil }); err != nil {
		return nil, err
	}
	if err := b.libAdd("delete the previous "+tableRef(r.Table), func(c *nftables.Conn) error { c.DelTable(t); return nil }); err != nil {
		return nil, err
	}
	if err := b.libAdd(tableRef(r.Table), func(c *nftables.Conn) error { c.AddTable(t); return nil }); err != nil {
		return nil, err
	}
	if ft := r.Flowtable; ft != nil {
		prio := nftables.FlowtablePriority(ft.Priority)
		f := &nftables.Flowtable{Table: t, Name: ft.Name, Hooknum: nftables.FlowtableHookIngress, Priority: &prio, Devices: ft.Devices}
		if err := b.libAdd("flowtable "+ft.Name, func(c *nftables.Conn) error { c.AddFlowtable(f); return nil }); err != nil {
			return nil, err
		}
	}
	sets := setsByName(r)
	for _, s := range r.Sets {
		var live []SetElement
		if st != nil {
			live = st.Elements[s.Name]
		}
		var elems []ruleset.Element
		if p != nil {
			elems = p.elems[s.Name]
		} else {
			var err error
			if elems, err = canonElements(s); err != nil {
				return nil, fmt.Errorf("set %s: %w", s.Name, err)
			}
		}
		if err := b.addSet(s, elems, live); err != nil {
			return nil, err
		}
	}
	for _, c := range r.Chains {
		ch := &nftables.Chain{Name: c.Name, Table: t}
		if c.Hook != "" {
			hook := nftables.ChainHook(hookNums[c.Hook])
			prio := nftables.ChainPriority(c.Priority)
			pol := nftables.ChainPolicyAccept
			if c.Policy == ruleset.Drop {
				pol = nftables.ChainPolicyDrop
			}
			ch.Hooknum, ch.Priority, ch.Policy, ch.Type = &hook, &prio, &pol, nftables.ChainType(chainType(c))
		}
		if err := b.libAdd("chain "+c.Name, func(lc *nftables.Conn) error { lc.AddChain(ch); return nil }); err != nil {
			return nil, err
		}
	}
	for _, c := range r.Chains {
		for _, rule := range c.Rules {
			label := fmt.Sprintf("rule %q (chain %s)", rule.ID, c.Name)
			lr, ok := p.lowered(rule)
			if !ok {
				var err error
				if lr, err = lowerRule(rule, sets, r.Flowtable); err != nil {
					return nil, fmt.Errorf("%s: %w", label, err)
				}
			}
			if err := b.addRule(c.Name, lr, label); err != nil {
				return nil, fmt.Errorf("%s: %w", label, err)
			}
		}
	}
	return b, nil
}

func keyType(t ruleset.SetType) nftables.SetDatatype {
	return libDatatypes[setDatatype(t)]
}

func (b *builder) addSet(s *ruleset.Set, elems []ruleset.Element, live []SetElement) error {
	id := b.id()
	b.setIDs[s.Name] = id
	ns := &nftables.Set{
		Table: b.t, Name: s.Name, ID: id,
		KeyType: keyType(s.Type), KeyByteOrder: binaryutil.BigEndian,
		Interval: s.Interval, HasTimeout: s.Timeout, Timeout: s.DefaultTimeout, Dynamic: s.Dynamic,
		Size: uint32(s.Size), Comment: s.Comment,
	}
	if err := b.libAdd("set "+s.Name, func(c *nftables.Conn) error { return c.AddSet(ns, nil) }); err != nil {
		return err
	}
	if carried := carriedElements(s, elems, live); len(carried) > 0 {
		elems = append(slices.Clip(elems), carried...)
	}
	// Encode chunk by chunk, reusing one buffer of kernel elements: a
	// 100k-prefix blocklist is 200k of them.
	var sc setCount
	chunk := make([]kelem, 0, maxChunk+1)
	arena := make([]byte, 0, (maxChunk+1)*16)
	size := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		label := fmt.Sprintf("set %s: elements %s to %s", s.Name,
			elementKey(s, elems[chunk[0].src]), elementKey(s, elems[chunk[len(chunk)-1].src]))
		data, err := setElemMsg(familyNum, b.t.Name, s.Name, id, chunk)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		b.msgs = append(b.msgs, message{typ: unix.NFT_MSG_NEWSETELEM, flags: unix.NLM_F_CREATE, data: data, label: label})
		// The keys were copied into data; the element being split across
		// two chunks may still hold keys in the old arena, so start a
		// new one rather than overwrite it.
		chunk, arena, size = chunk[:0], make([]byte, 0, cap(arena)), 0
		return nil
	}
	for i, e := range elems {
		var ks [2]kelem
		for _, k := range appendKernel(ks[:0], s, e, i, &arena) {
			if len(chunk) == maxChunk || size+elemSize(k) > maxChunkBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			chunk = append(chunk, k)
			size += elemSize(k)
			sc.n++
			if !s.Interval || k.end {
				sc.quick++
			}
			if k.timeout > 0 && k.timeout < expiryMargin {
				sc.mayExpire++
				if s.Interval {
					sc.mayExpire++ // and its end element
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if !s.Dynamic {
		b.counts[s.Name] = sc
	}
	return nil
}

// exprs collects a rule's marshalled expressions.
type exprs struct {
	list [][]byte
	err  error
}

func (l *exprs) add(es ...expr.Any) {
	for _, e := range es {
		data, err := expr.Marshal(familyNum, e)
		if err != nil && l.err == nil {
			l.err = err
		}
		l.list = append(l.list, data)
	}
}

func (l *exprs) load(base expr.PayloadBase, off, n uint32) {
	l.add(&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n})
}

// The emitter's loads, comparisons and key types as google/nftables
// names them.
var (
	metaKeys     = map[metaKey]expr.MetaKey{metaIIFName: expr.MetaKeyIIFNAME, metaOIFName: expr.MetaKeyOIFNAME, metaNFProto: expr.MetaKeyNFPROTO, metaL4Proto: expr.MetaKeyL4PROTO}
	payloadBases = map[payloadBase]expr.PayloadBase{networkHeader: expr.PayloadBaseNetworkHeader, transportHeader: expr.PayloadBaseTransportHeader}
	ctKeys       = map[ctKey]expr.CtKey{ctState: expr.CtKeySTATE, ctStatus: expr.CtKeySTATUS}
	cmpOps       = map[cmpOp]expr.CmpOp{cmpEq: expr.CmpOpEq, cmpNeq: expr.CmpOpNeq, cmpGte: expr.CmpOpGte, cmpLte: expr.CmpOpLte}
	libDatatypes = map[datatype]nftables.SetDatatype{
		dtIfname: nftables.TypeIFName, dtIPv4Addr: nftables.TypeIPAddr, dtIPv6Addr: nftables.TypeIP6Addr,
		dtInetService: nftables.TypeInetService, dtInetProto: nftables.TypeInetProto, dtNFProto: nftables.TypeNFProto,
		dtICMPType: nftables.TypeICMPType, dtICMPv6Type: nftables.TypeICMP6Type,
	}
)

// matchExprs is the emitter of one match: its expressions go to l, the
// anonymous sets it looks values up in into b's batch under label.
type matchExprs struct {
	b     *builder
	l     *exprs
	label string
}

var _ emitter = (*matchExprs)(nil)

func (e *matchExprs) meta(key metaKey) { e.l.add(&expr.Meta{Key: metaKeys[key], Register: 1}) }

func (e *matchExprs) payload(base payloadBase, off, n uint32) {
	e.l.load(payloadBases[base], off, n)
}

func (e *matchExprs) ct(key ctKey) {
	if key != ctOrigProtoDst {
		e.l.add(&expr.Ct{Register: 1, Key: ctKeys[key]})
		return
	}
	// google/nftables sends NFTA_CT_DIRECTION as a u32; the kernel reads
	// a u8 (and warns of the length): encode it by hand.
	var inner attrs
	inner.u32(unix.NFTA_CT_DREG, 1)
	inner.u32(unix.NFTA_CT_KEY, unix.NFT_CT_PROTO_DST)
	inner.add(unix.NFTA_CT_DIRECTION, []byte{0}) // IP_CT_DIR_ORIGINAL
	var a attrs
	a.str(unix.NFTA_EXPR_NAME, "ct")
	a.nest(unix.NFTA_EXPR_DATA, &inner)
	e.l.list = append(e.l.list, a.b)
}

func (e *matchExprs) fibDAddrType() {
	e.l.add(&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true})
}

func (e *matchExprs) cmp(op cmpOp, data []byte) {
	e.l.add(&expr.Cmp{Op: cmpOps[op], Register: 1, Data: data})
}

func (e *matchExprs) notInRange(from, to []byte) {
	e.l.add(&expr.Range{Op: expr.CmpOpNeq, Register: 1, FromData: from, ToData: to})
}

func (e *matchExprs) mask(mask []byte) {
	e.l.add(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))})
}

func (e *matchExprs) lookup(set string, neg bool) {
	e.l.add(&expr.Lookup{SourceRegister: 1, SetName: set, SetID: e.b.setIDs[set], Invert: neg})
}

func (e *matchExprs) anonLookup(dt datatype, interval bool, keys []kelem, neg bool) error {
	lookup, err := e.b.anonSet(e.label, libDatatypes[dt], interval, keys, neg)
	if err != nil {
		return err
	}
	e.l.add(lookup)
	return nil
}

// anonSet queues an anonymous constant set holding keys and returns the
// lookup of register 1 in it.
func (b *builder) anonSet(label string, kt nftables.SetDatatype, interval bool, keys []kelem, neg bool) (expr.Any, error) {
	id := b.id()
	label += ": anonymous set"
	hostOrder := kt.Name == nftables.TypeIFName.Name
	b.msgs = append(b.msgs, message{typ: unix.NFT_MSG_NEWSET, flags: unix.NLM_F_CREATE,
		data: anonSetMsg(familyNum, b.t.Name, id, kt.GetNFTMagic(), kt.Bytes, interval, hostOrder, len(keys)), label: label})
	data, err := setElemMsg(familyNum, b.t.Name, "__set%d", id, keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	b.msgs = append(b.msgs, message{typ: unix.NFT_MSG_NEWSETELEM, flags: unix.NLM_F_CREATE, data: data, label: label})
	return &expr.Lookup{SourceRegister: 1, SetName: "__set%d", SetID: id, Invert: neg}, nil
}

func (b *builder) addRule(chain string, lr lowered, label string) error {
	r := lr.rule
	var l exprs
	me := &matchExprs{b: b, l: &l}
	for i, s := range lr.stmts {
		if s.omit {
			continue
		}
		if s.depNF != "" {
			l.add(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfprotos[s.depNF]}})
		}
		if s.depL4 != "" {
			l.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4protos[s.depL4]}})
		}
		var err error
		switch s.kind {
		case stMatch:
			me.label = fmt.Sprintf("%s: match %d", label, i+1)
			err = matchKinds[s.m.Kind].build(me, s)
		case stMeter:
			m := r.Meter
			off, n := addrOffset(ruleset.SAddr, s.family)
			l.load(expr.PayloadBaseNetworkHeader, off, n)
			op := uint32(unix.NFT_DYNSET_OP_ADD)
			if lr.meterUpdate {
				op = unix.NFT_DYNSET_OP_UPDATE
			}
			l.add(&expr.Dynset{SrcRegKey: 1, SetName: m.Set, SetID: b.setIDs[m.Set], Operation: op, Exprs: []expr.Any{limitExpr(m.Limit)}})
		case stLimit:
			l.add(limitExpr(*r.Limit))
		case stCounter:
			c := b.counters[r.ID]
			l.add(&expr.Counter{Packets: c.Packets, Bytes: c.Bytes})
		case stLog:
			e := &expr.Log{}
			if r.Log.Prefix != "" {
				e.Key |= 1 << unix.NFTA_LOG_PREFIX
				e.Data = []byte(r.Log.Prefix)
			}
			if r.Log.ToGroup {
				e.Key |= 1 << unix.NFTA_LOG_GROUP
				e.Group = r.Log.Group
			} else if lvl, ok := logLevels[r.Log.Level]; ok {
				e.Key |= 1 << unix.NFTA_LOG_LEVEL
				e.Level = expr.LogLevel(lvl)
			}
			l.add(e)
		case stNAT:
			err = addNAT(&l, r.NAT)
		case stOffload:
			l.add(&expr.FlowOffload{Name: lr.flowtable})
		case stVerdict:
			l.add(verdictExpr(r, s.family))
		}
		if err != nil {
			return err
		}
	}
	if l.err != nil {
		return l.err
	}
	data, err := ruleMsg(familyNum, b.t.Name, chain, l.list, userdata.AppendString(nil, userdata.TypeComment, r.ID))
	if err != nil {
		return err
	}
	b.msgs = append(b.msgs, message{typ: unix.NFT_MSG_NEWRULE, flags: unix.NLM_F_CREATE | unix.NLM_F_APPEND, data: data, label: label})
	return nil
}

func limitExpr(l ruleset.Limit) *expr.Limit {
	return &expr.Limit{Type: expr.LimitTypePkts, Rate: l.Rate, Over: l.Over, Unit: expr.LimitTime(limitUnits[l.Unit]), Burst: limitBurst(l)}
}

func addNAT(l *exprs, n *ruleset.NAT) error {
	var protoMin, protoMax uint32
	reg := uint32(1)
	if n.Kind == ruleset.SNAT || n.Kind == ruleset.DNAT {
		l.add(&expr.Immediate{Register: 1, Data: n.Addr.AsSlice()})
		reg = 2
	}
	if n.Port != 0 {
		l.add(&expr.Immediate{Register: reg, Data: be16(n.Port)})
		protoMin = reg
		if n.PortEnd != 0 && n.PortEnd != n.Port {
			l.add(&expr.Immediate{Register: reg + 1, Data: be16(n.PortEnd)})
			protoMax = reg + 1
		}
	}
	switch n.Kind {
	case ruleset.Masquerade:
		if protoMin == 0 {
			l.add(&expr.Masq{})
			return nil
		}
		// google/nftables cannot send masq ports together with flags,
		// and without NF_NAT_RANGE_PROTO_SPECIFIED the kernel ignores
		// the ports: encode this one by hand.
		data, err := expr.MarshalExprData(familyNum, &expr.Masq{ToPorts: true, RegProtoMin: protoMin, RegProtoMax: protoMax})
		if err != nil {
			return err
		}
		inner := attrs{b: data}
		inner.u32(unix.NFTA_MASQ_FLAGS, unix.NF_NAT_RANGE_PROTO_SPECIFIED)
		var a attrs
		a.str(unix.NFTA_EXPR_NAME, "masq")
		a.nest(unix.NFTA_EXPR_DATA, &inner)
		l.list = append(l.list, a.b)
	case ruleset.Redirect:
		e := &expr.Redir{RegisterProtoMin: protoMin, RegisterProtoMax: protoMax}
		if protoMin != 0 {
			e.Flags = unix.NF_NAT_RANGE_PROTO_SPECIFIED
		}
		l.add(e)
	case ruleset.SNAT, ruleset.DNAT:
		typ := expr.NATTypeSourceNAT
		if n.Kind == ruleset.DNAT {
			typ = expr.NATTypeDestNAT
		}
		fam := uint32(unix.NFPROTO_IPV4)
		if n.Addr.Is6() {
			fam = unix.NFPROTO_IPV6
		}
		l.add(&expr.NAT{Type: typ, Family: fam, RegAddrMin: 1, RegProtoMin: protoMin, RegProtoMax: protoMax, Specified: protoMin != 0})
	default:
		return fmt.Errorf("nat kind %q", n.Kind)
	}
	return nil
}

func verdictExpr(r *ruleset.Rule, family string) expr.Any {
	switch r.Verdict {
	case ruleset.Accept:
		return &expr.Verdict{Kind: expr.VerdictAccept}
	case ruleset.Drop:
		return &expr.Verdict{Kind: expr.VerdictDrop}
	case ruleset.Return:
		return &expr.Verdict{Kind: expr.VerdictReturn}
	case ruleset.Jump:
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Target}
	case ruleset.Goto:
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: r.Target}
	}
	if r.RejectWith == ruleset.RejectTCPReset {
		return &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}
	}
	// reject: ICMP port unreachable of the rule's family, as nft picks it.
	switch family {
	case "ipv4":
		return &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}
	case "ipv6":
		return &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 4}
	}
	return &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}
}
