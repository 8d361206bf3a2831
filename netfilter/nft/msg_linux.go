//go:build linux

package nft

import (
	"encoding/binary"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// attrs builds netlink attributes. The first attribute too long for its
// 16-bit length is remembered in err: the library this package started
// from wrapped such lengths silently, which is how a 10,000-element set
// ended up with 1,808 elements in the kernel.
type attrs struct {
	b   []byte
	err error
}

func (a *attrs) add(typ uint16, data []byte) {
	n := 4 + len(data)
	if n > 0xffff {
		if a.err == nil {
			a.err = fmt.Errorf("netlink attribute %d of %d bytes exceeds 65535", typ, n)
		}
		return
	}
	a.b = binary.NativeEndian.AppendUint16(a.b, uint16(n))
	a.b = binary.NativeEndian.AppendUint16(a.b, typ)
	a.b = append(a.b, data...)
	for len(a.b)%4 != 0 {
		a.b = append(a.b, 0)
	}
}

func (a *attrs) str(typ uint16, s string) { a.add(typ, append([]byte(s), 0)) }
func (a *attrs) u32(typ uint16, v uint32) { a.add(typ, binary.BigEndian.AppendUint32(nil, v)) }

func (a *attrs) nest(typ uint16, inner *attrs) {
	if inner.err != nil && a.err == nil {
		a.err = inner.err
	}
	a.add(typ|unix.NLA_F_NESTED, inner.b)
}

// setElemMsg encodes a NEWSETELEM (or DELSETELEM) request, attribute for attribute what
// google/nftables' SetAddElements sends (a test compares them), but
// straight into one buffer: a 100k-prefix blocklist is 200k elements.
func setElemMsg(family uint8, table, set string, setID uint32, elems []kelem) ([]byte, error) {
	size := 0
	for _, e := range elems {
		size += elemSize(e)
	}
	if 4+size > 0xffff {
		return nil, fmt.Errorf("%d set elements need %d bytes, more than one netlink attribute holds", len(elems), size)
	}
	var a attrs
	a.str(unix.NFTA_SET_ELEM_LIST_SET, set)
	if setID != 0 {
		// Only a set created in the same batch has an ID.
		a.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, setID)
	}
	a.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	b := slices.Grow(append(nfgen(family, 0), a.b...), 4+size)
	b = putHdr(b, 4+size, unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED)
	for i, e := range elems {
		b = putHdr(b, elemSize(e), uint16(i+1)|unix.NLA_F_NESTED)
		if e.end {
			// The nested flag mirrors google/nftables; the kernel
			// ignores it on this attribute.
			b = putHdr(b, 8, unix.NFTA_SET_ELEM_FLAGS|unix.NLA_F_NESTED)
			b = binary.BigEndian.AppendUint32(b, unix.NFT_SET_ELEM_INTERVAL_END)
		}
		b = putHdr(b, 4+4+len(e.key), unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED)
		b = putHdr(b, 4+len(e.key), unix.NFTA_DATA_VALUE)
		b = pad(append(b, e.key...))
		if e.timeout > 0 {
			b = putHdr(b, 12, unix.NFTA_SET_ELEM_TIMEOUT)
			b = binary.BigEndian.AppendUint64(b, uint64(e.timeout.Milliseconds()))
		}
		if e.comment != "" {
			// NFTNL_UDATA_SET_ELEM_COMMENT, NUL-terminated.
			b = putHdr(b, 4+2+len(e.comment)+1, unix.NFTA_SET_ELEM_USERDATA)
			b = append(b, 0, byte(len(e.comment)+1))
			b = pad(append(append(b, e.comment...), 0))
		}
	}
	return b, nil
}

// elemSize is an element's encoded size, padding included.
func elemSize(e kelem) int {
	n := 4 + 4 + 4 + nlAlign(len(e.key))
	if e.end {
		n += 8
	}
	if e.timeout > 0 {
		n += 12
	}
	if e.comment != "" {
		n += nlAlign(4 + 2 + len(e.comment) + 1)
	}
	return n
}

func putHdr(b []byte, n int, typ uint16) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	return binary.NativeEndian.AppendUint16(b, typ)
}

func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// ruleMsg encodes a NEWRULE request from marshalled expressions.
func ruleMsg(family uint8, table, chain string, exprs [][]byte, userdata []byte) ([]byte, error) {
	var list attrs
	for _, e := range exprs {
		list.add(unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, e)
	}
	var a attrs
	a.str(unix.NFTA_RULE_TABLE, table)
	a.str(unix.NFTA_RULE_CHAIN, chain)
	a.nest(unix.NFTA_RULE_EXPRESSIONS, &list)
	if len(userdata) > 0 {
		a.add(unix.NFTA_RULE_USERDATA, userdata)
	}
	if a.err != nil {
		return nil, a.err
	}
	return append(nfgen(family, 0), a.b...), nil
}

// anonSetMsg encodes the NEWSET request of an anonymous constant set the
// way nft does, key byte order included: nft sorts an interface-name
// set's elements as host-endian strings, and lists them in that order
// only if the set says so (google/nftables always says big-endian).
func anonSetMsg(family uint8, table string, id uint32, keyType, keyLen uint32, interval, hostOrder bool, count int) []byte {
	flags := uint32(unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT)
	if interval {
		flags |= unix.NFT_SET_INTERVAL
	}
	var a attrs
	a.str(unix.NFTA_SET_TABLE, table)
	a.str(unix.NFTA_SET_NAME, "__set%d")
	a.u32(unix.NFTA_SET_FLAGS, flags)
	a.u32(unix.NFTA_SET_KEY_TYPE, keyType)
	a.u32(unix.NFTA_SET_KEY_LEN, keyLen)
	a.u32(unix.NFTA_SET_ID, id)
	var desc attrs
	desc.u32(unix.NFTA_SET_DESC_SIZE, uint32(count))
	a.nest(unix.NFTA_SET_DESC, &desc)
	order := uint32(2) // NFTNL_UDATA_SET_KEYBYTEORDER: big endian
	if hostOrder {
		order = 1
	}
	a.add(unix.NFTA_SET_USERDATA, binary.LittleEndian.AppendUint32([]byte{0, 4}, order))
	return append(nfgen(family, 0), a.b...)
}
