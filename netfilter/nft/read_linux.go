//go:build linux

package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/homeedge/edge/netfilter/ruleset"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TableExists reports whether table inet table exists.
func TableExists(c *Conn, table string) (bool, error) {
	tables, err := c.lib.ListTablesOfFamily(nftables.TableFamily(familyNum))
	if err != nil {
		return false, fmt.Errorf("list %s tables: %w", tableFamily, err)
	}
	for _, t := range tables {
		if t.Name == table {
			return true, nil
		}
	}
	return false, nil
}

// ReadCounters returns the counter of every rule of table inet table
// that has one, by rule ID (the rule's comment). An absent table has no
// counters.
func ReadCounters(c *Conn, table string) (map[string]Counter, error) {
	out := map[string]Counter{}
	if ok, err := TableExists(c, table); err != nil || !ok {
		return out, err
	}
	err := c.eachRule(table, func(id string, cnt *Counter) {
		if id != "" && cnt != nil {
			out[id] = *cnt
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read counters of %s: %w", tableRef(table), err)
	}
	return out, nil
}

// ReadRuleIDs counts the rules of table inet table by rule ID (the
// comment every rule of a ruleset carries), counted or not: what a drift
// check compares with the loaded ruleset. A missing table reads as none.
func ReadRuleIDs(c *Conn, table string) (map[string]int, error) {
	out := map[string]int{}
	if ok, err := TableExists(c, table); err != nil || !ok {
		return out, err
	}
	err := c.eachRule(table, func(id string, _ *Counter) { out[id]++ })
	if err != nil {
		return nil, fmt.Errorf("read rules of %s: %w", tableRef(table), err)
	}
	return out, nil
}

// eachRule dumps the rules of table inet table, every chain's in one
// request, and calls fn with each rule's comment ("" when it has none)
// and its first counter (nil when it has none). It decodes nothing else:
// google/nftables' rule parser fails on whole chains over one expression
// it reads wrong (the direction of ct original proto-dst, which it takes
// for a u32; the kernel sends a u8).
func (c *Conn) eachRule(table string, fn func(id string, counter *Counter)) error {
	var req attrs
	req.str(unix.NFTA_RULE_TABLE, table)
	return c.dump(unix.NFT_MSG_GETRULE, familyNum, req.b, func(data []byte) error {
		ad, err := netlink.NewAttributeDecoder(data)
		if err != nil {
			return err
		}
		ad.ByteOrder = binary.BigEndian
		var (
			inTable bool
			id      string
			cnt     *Counter
		)
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				inTable = ad.String() == table
			case unix.NFTA_RULE_USERDATA:
				id, _ = userdata.GetString(ad.Bytes(), userdata.TypeComment)
			case unix.NFTA_RULE_EXPRESSIONS:
				ad.Nested(func(list *netlink.AttributeDecoder) error {
					for list.Next() {
						if cnt == nil && list.Type() == unix.NFTA_LIST_ELEM {
							list.Nested(func(e *netlink.AttributeDecoder) error {
								cnt = decodeCounter(e)
								return nil
							})
						}
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return err
		}
		if inTable {
			fn(id, cnt)
		}
		return nil
	})
}

// decodeCounter returns the counter of an expression's attributes, or nil
// when the expression is not a counter (or cannot be read as one).
func decodeCounter(e *netlink.AttributeDecoder) *Counter {
	var (
		name string
		data []byte
	)
	for e.Next() {
		switch e.Type() {
		case unix.NFTA_EXPR_NAME:
			name = e.String()
		case unix.NFTA_EXPR_DATA:
			data = e.Bytes()
		}
	}
	if name != "counter" {
		return nil
	}
	d, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return nil
	}
	d.ByteOrder = binary.BigEndian
	var c Counter
	for d.Next() {
		switch d.Type() {
		case unix.NFTA_COUNTER_PACKETS:
			c.Packets = d.Uint64()
		case unix.NFTA_COUNTER_BYTES:
			c.Bytes = d.Uint64()
		}
	}
	if d.Err() != nil {
		return nil
	}
	return &c
}

// ReadSetElements returns the elements of set inet table set, with the
// time each has left. Intervals come back as the prefixes that make them
// up (one per prefix Apply added; a range added by other means is split
// into the prefixes that cover it exactly).
func ReadSetElements(c *Conn, table, set string) ([]SetElement, error) {
	t := libTable(table)
	s, err := c.lib.GetSetByName(t, set)
	if err != nil {
		return nil, fmt.Errorf("read set %s %s %s: %w", tableFamily, table, set, err)
	}
	raw, err := c.dumpElements(table, set)
	if err != nil {
		return nil, fmt.Errorf("read elements of set %s %s %s: %w", tableFamily, table, set, err)
	}
	out, err := decodeElements(s.KeyType.Bytes, s.Interval, raw)
	if err != nil {
		return nil, fmt.Errorf("read elements of set %s %s %s: %w", tableFamily, table, set, err)
	}
	return out, nil
}

// decodeElements turns kernel elements back into the model's.
func decodeElements(keyLen uint32, interval bool, raw []nftables.SetElement) ([]SetElement, error) {
	elem := func(e nftables.SetElement, p netip.Prefix, port, portEnd uint16) SetElement {
		return SetElement{Element: ruleset.Element{Prefix: p, Port: port, PortEnd: portEnd, Timeout: e.Timeout, Comment: e.Comment}, Expires: e.Expires}
	}
	var out []SetElement
	if !interval {
		for _, e := range raw {
			switch keyLen {
			case 2:
				if len(e.Key) != 2 {
					return nil, fmt.Errorf("key %x is not a port", e.Key)
				}
				out = append(out, elem(e, netip.Prefix{}, binary.BigEndian.Uint16(e.Key), 0))
			default:
				a, ok := netip.AddrFromSlice(e.Key)
				if !ok {
					return nil, fmt.Errorf("key %x is not an address", e.Key)
				}
				out = append(out, elem(e, netip.PrefixFrom(a, a.BitLen()), 0, 0))
			}
		}
		return out, nil
	}
	slices.SortStableFunc(raw, func(a, b nftables.SetElement) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		// At one key, an interval's end sorts before the next one's start.
		if a.IntervalEnd != b.IntervalEnd {
			if a.IntervalEnd {
				return -1
			}
			return 1
		}
		return 0
	})
	for i := 0; i < len(raw); i++ {
		start := raw[i]
		if start.IntervalEnd {
			continue // nft's leading end element at zero
		}
		var end []byte // exclusive; nil: to the end of the key space
		if i+1 < len(raw) && raw[i+1].IntervalEnd {
			end = raw[i+1].Key
			i++
		}
		if keyLen == 2 {
			last := uint16(0xffff)
			if end != nil {
				last = binary.BigEndian.Uint16(end) - 1
			}
			out = append(out, elem(start, netip.Prefix{}, binary.BigEndian.Uint16(start.Key), last))
			continue
		}
		first, ok := netip.AddrFromSlice(start.Key)
		if !ok {
			return nil, fmt.Errorf("key %x is not an address", start.Key)
		}
		var lastAddr netip.Addr
		if end == nil {
			lastAddr = allOnes(first)
		} else {
			a, ok := netip.AddrFromSlice(end)
			if !ok {
				return nil, fmt.Errorf("key %x is not an address", end)
			}
			lastAddr = a.Prev()
		}
		for _, p := range rangePrefixes(first, lastAddr) {
			out = append(out, elem(start, p, 0, 0))
		}
	}
	return out, nil
}

func allOnes(a netip.Addr) netip.Addr {
	b := a.AsSlice()
	for i := range b {
		b[i] = 0xff
	}
	r, _ := netip.AddrFromSlice(b)
	return r
}

// rangePrefixes returns the prefixes that cover first..last exactly.
func rangePrefixes(first, last netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for first.IsValid() && first.Compare(last) <= 0 {
		bits := first.BitLen()
		// Grow the prefix while it stays aligned and inside the range.
		for bits > 0 {
			p := netip.PrefixFrom(first, bits-1)
			if p.Masked().Addr() != first {
				break
			}
			l, _ := netip.AddrFromSlice(lastAddr(p))
			if l.Compare(last) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(first, bits)
		out = append(out, p)
		l, _ := netip.AddrFromSlice(lastAddr(p))
		if l == last {
			break
		}
		first = l.Next()
	}
	return out
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) []byte {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}

// ReadState reads what a replace of table inet table would lose: every
// rule counter, and the elements of every timeout set that is not
// dynamic (ban sets; meters are not carried, see the package
// documentation). An absent table has an empty state.
func ReadState(c *Conn, table string) (*State, error) {
	st := &State{Counters: map[string]Counter{}, Elements: map[string][]SetElement{}}
	if ok, err := TableExists(c, table); err != nil || !ok {
		return st, err
	}
	counters, err := ReadCounters(c, table)
	if err != nil {
		return nil, err
	}
	st.Counters = counters
	sets, err := c.lib.GetSets(libTable(table))
	if err != nil {
		return nil, fmt.Errorf("read sets of %s: %w", tableRef(table), err)
	}
	for _, s := range sets {
		if s.Anonymous || !s.HasTimeout || s.Dynamic {
			continue
		}
		elems, err := ReadSetElements(c, table, s.Name)
		if err != nil {
			return nil, err
		}
		st.Elements[s.Name] = elems
	}
	return st, nil
}

// dumpElements reads a set's kernel elements. It decodes only what the
// model needs, and much faster than google/nftables does, which matters
// for blocklists.
func (c *Conn) dumpElements(table, set string) ([]nftables.SetElement, error) {
	var out []nftables.SetElement
	err := c.eachElementList(table, set, func(list *netlink.AttributeDecoder) error {
		for list.Next() {
			e, err := decodeSetElement(list.Bytes())
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// decodeSetElement decodes one NFTA_LIST_ELEM of a set element dump.
func decodeSetElement(b []byte) (nftables.SetElement, error) {
	var e nftables.SetElement
	el, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return e, err
	}
	el.ByteOrder = binary.BigEndian
	for el.Next() {
		switch el.Type() {
		case unix.NFTA_SET_ELEM_KEY:
			el.Nested(func(k *netlink.AttributeDecoder) error {
				for k.Next() {
					if k.Type() == unix.NFTA_DATA_VALUE {
						e.Key = k.Bytes()
					}
				}
				return nil
			})
		case unix.NFTA_SET_ELEM_FLAGS:
			e.IntervalEnd = el.Uint32()&unix.NFT_SET_ELEM_INTERVAL_END != 0
		case unix.NFTA_SET_ELEM_TIMEOUT:
			e.Timeout = time.Duration(el.Uint64()) * time.Millisecond
		case unix.NFTA_SET_ELEM_EXPIRATION:
			e.Expires = time.Duration(el.Uint64()) * time.Millisecond
		case unix.NFTA_SET_ELEM_USERDATA:
			if cm, ok := userdata.GetString(el.Bytes(), userdata.NFTNL_UDATA_SET_ELEM_COMMENT); ok {
				e.Comment = cm
			}
		}
	}
	return e, el.Err()
}

// eachElementList dumps a set's elements and calls fn with each element
// list the kernel sends (one per message).
func (c *Conn) eachElementList(table, set string, fn func(list *netlink.AttributeDecoder) error) error {
	var a attrs
	a.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	a.str(unix.NFTA_SET_ELEM_LIST_SET, set)
	return c.dump(unix.NFT_MSG_GETSETELEM, familyNum, a.b, func(data []byte) error {
		ad, err := netlink.NewAttributeDecoder(data)
		if err != nil {
			return err
		}
		for ad.Next() {
			if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				continue
			}
			list, err := netlink.NewAttributeDecoder(ad.Bytes())
			if err != nil {
				return err
			}
			if err := fn(list); err != nil {
				return err
			}
			if err := list.Err(); err != nil {
				return err
			}
		}
		return ad.Err()
	})
}

// nftaSetCount is NFTA_SET_COUNT (Linux 6.x): the kernel's element count
// of a set, reported with the set.
const nftaSetCount = 20

// setCounts returns the NFTA_SET_COUNT of every set of a table that has
// one, in one request.
func (c *Conn) setCounts(table string) (map[string]int, error) {
	var a attrs
	a.str(unix.NFTA_SET_TABLE, table)
	out := map[string]int{}
	err := c.dump(unix.NFT_MSG_GETSET, familyNum, a.b, func(data []byte) error {
		ad, err := netlink.NewAttributeDecoder(data)
		if err != nil {
			return err
		}
		name, count := "", -1
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_NAME:
				name = ad.String()
			case nftaSetCount:
				if b := ad.Bytes(); len(b) == 4 {
					count = int(binary.BigEndian.Uint32(b))
				}
			}
		}
		if count >= 0 {
			out[name] = count
		}
		return ad.Err()
	})
	return out, err
}

// countElements counts the kernel elements of a set (an interval's start
// and end count as two) without decoding them.
func (c *Conn) countElements(table, set string) (int, error) {
	n := 0
	err := c.eachElementList(table, set, func(list *netlink.AttributeDecoder) error {
		for list.Next() {
			n++
		}
		return nil
	})
	return n, err
}
