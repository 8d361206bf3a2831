//go:build linux

package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/homeedge/edge/netfilter/ruleset"
	"golang.org/x/sys/unix"
)

// TestSetElemMsgMatchesLibrary: the hand-written element encoder sends
// byte for byte what google/nftables' SetAddElements sends.
func TestSetElemMsgMatchesLibrary(t *testing.T) {
	b, err := newBuilder("edge")
	if err != nil {
		t.Fatal(err)
	}
	set := &nftables.Set{Table: b.t, Name: "ban6", ID: 7, KeyType: nftables.TypeIP6Addr, Interval: true, HasTimeout: true}
	kel := []kelem{
		{key: netip.MustParseAddr("2001:db8::").AsSlice(), timeout: 90 * time.Minute, comment: "manual ban"},
		{key: netip.MustParseAddr("2001:db9::").AsSlice(), end: true},
		{key: netip.MustParseAddr("2001:db9::5").AsSlice()},
	}
	lib := make([]nftables.SetElement, len(kel))
	for i, k := range kel {
		lib[i] = nftables.SetElement{Key: k.key, IntervalEnd: k.end, Timeout: k.timeout, Comment: k.comment}
	}
	if err := b.libAdd("elements", func(c *nftables.Conn) error { return c.SetAddElements(set, lib) }); err != nil {
		t.Fatal(err)
	}
	if len(b.msgs) != 1 || b.msgs[0].typ != unix.NFT_MSG_NEWSETELEM {
		t.Fatalf("library queued %d messages, want one NEWSETELEM", len(b.msgs))
	}
	got, err := setElemMsg(familyNum, "edge", "ban6", 7, kel)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.msgs[0].data) {
		t.Errorf("setElemMsg =\n%x\nwant (google/nftables)\n%x", got, b.msgs[0].data)
	}
}

// TestBuildChunks: elements go out at most 1,000 per message and under
// the 64 KiB attribute limit, every message names its object, and the
// batch starts with the declare-delete-declare of the table.
func TestBuildChunks(t *testing.T) {
	var es []ruleset.Element
	for i := range 4321 {
		es = append(es, ruleset.Element{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)})
	}
	var bans []ruleset.Element
	for i := range 900 {
		bans = append(bans, ruleset.Element{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 32),
			Timeout: time.Hour, Comment: strings.Repeat("c", 100)})
	}
	r := &ruleset.Ruleset{Table: "edge",
		Sets: []*ruleset.Set{
			{Name: "block", Type: ruleset.IPv4Addr, Interval: true, Elements: es},
			{Name: "ban", Type: ruleset.IPv4Addr, Timeout: true, Elements: bans},
		},
		Chains: []*ruleset.Chain{{Name: "input", Hook: ruleset.Input, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
			{ID: "block it", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP, false, "block")}, Verdict: ruleset.Drop},
			{ID: "two ports", Matches: []ruleset.Match{ports(ruleset.DPort, "tcp", false, port(1), port(2))}, Verdict: ruleset.Drop},
		}}},
	}
	b, err := build(r, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	elements := map[string]int{}
	for _, m := range b.msgs {
		if m.label == "" {
			t.Errorf("message type %d has no label", m.typ)
		}
		if len(labels) == 0 || labels[len(labels)-1] != m.label {
			labels = append(labels, m.label)
		}
		if m.typ != unix.NFT_MSG_NEWSETELEM {
			continue
		}
		n := countListElems(t, m.data)
		if n > maxChunk {
			t.Errorf("%s: %d elements in one message, want at most %d", m.label, n, maxChunk)
		}
		if len(m.data) > 0xffff {
			t.Errorf("%s: %d bytes, more than a netlink attribute holds", m.label, len(m.data))
		}
		elements[strings.SplitN(m.label, ":", 2)[0]] += n
	}
	if want := []string{"table inet edge", "delete the previous table inet edge", "table inet edge", "set block"}; !cmp.Equal(labels[:4], want) {
		t.Errorf("first labels = %q, want %q", labels[:4], want)
	}
	if got, want := elements["set block"], 2*4321; got != want {
		t.Errorf("set block: %d kernel elements sent, want %d (start and end per prefix)", got, want)
	}
	if got := elements["set ban"]; got != 900 {
		t.Errorf("set ban: %d elements sent, want 900", got)
	}
	if got := elements[`rule "two ports" (chain input)`]; got != 2 {
		t.Errorf("anonymous set: %d elements, want 2", got)
	}
	if c := b.counts["block"]; c.n != 2*4321 {
		t.Errorf("expected count of block = %d, want %d", c.n, 2*4321)
	}
	last := b.msgs[len(b.msgs)-1]
	if last.typ != unix.NFT_MSG_NEWRULE || last.label != `rule "two ports" (chain input)` {
		t.Errorf("last message = type %d %q, want the last rule", last.typ, last.label)
	}
}

// TestBuildElementKeys: the chunked messages carry exactly the kernel
// elements of the set, in order, across chunk boundaries that split an
// interval's start from its end.
func TestBuildElementKeys(t *testing.T) {
	var es []ruleset.Element
	for i := range 1501 {
		e := ruleset.Element{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}
		if i%7 == 0 {
			e.Timeout, e.Comment = time.Hour, strings.Repeat("x", 90)
		}
		es = append(es, e)
	}
	set := &ruleset.Set{Name: "block", Type: ruleset.IPv4Addr, Interval: true, Timeout: true, Elements: es}
	r := &ruleset.Ruleset{Table: "edge", Sets: []*ruleset.Set{set}}
	b, err := build(r, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := kernelElements(set, es)
	var got []kelem
	for _, m := range b.msgs {
		if m.typ == unix.NFT_MSG_NEWSETELEM {
			got = append(got, decodeElemMsg(t, m.data)...)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("messages carry %d kernel elements, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].key, want[i].key) || got[i].end != want[i].end || got[i].timeout != want[i].timeout || got[i].comment != want[i].comment {
			t.Fatalf("kernel element %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// decodeElemMsg decodes the elements of a NEWSETELEM message.
func decodeElemMsg(t *testing.T, data []byte) []kelem {
	t.Helper()
	attrs := func(b []byte, fn func(typ uint16, v []byte)) {
		for len(b) >= 4 {
			n := int(binary.NativeEndian.Uint16(b))
			fn(binary.NativeEndian.Uint16(b[2:])&^unix.NLA_F_NESTED, b[4:n])
			b = b[nlAlign(n):]
		}
	}
	var out []kelem
	attrs(data[4:], func(typ uint16, v []byte) {
		if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			return
		}
		attrs(v, func(_ uint16, item []byte) {
			var k kelem
			attrs(item, func(typ uint16, v []byte) {
				switch typ {
				case unix.NFTA_SET_ELEM_KEY:
					attrs(v, func(_ uint16, key []byte) { k.key = append([]byte(nil), key...) })
				case unix.NFTA_SET_ELEM_FLAGS:
					k.end = binary.BigEndian.Uint32(v)&unix.NFT_SET_ELEM_INTERVAL_END != 0
				case unix.NFTA_SET_ELEM_TIMEOUT:
					k.timeout = time.Duration(binary.BigEndian.Uint64(v)) * time.Millisecond
				case unix.NFTA_SET_ELEM_USERDATA:
					k.comment = strings.TrimRight(string(v[2:]), "\x00")
				}
			})
			out = append(out, k)
		})
	})
	return out
}

// countListElems counts the elements of a NEWSETELEM message.
func countListElems(t *testing.T, data []byte) int {
	t.Helper()
	data = data[4:] // nfgenmsg
	for len(data) >= 4 {
		n := int(binary.NativeEndian.Uint16(data))
		typ := binary.NativeEndian.Uint16(data[2:]) &^ unix.NLA_F_NESTED
		if typ == unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			inner, count := data[4:n], 0
			for len(inner) >= 4 {
				l := int(binary.NativeEndian.Uint16(inner))
				inner = inner[nlAlign(l):]
				count++
			}
			return count
		}
		data = data[nlAlign(n):]
	}
	t.Fatal("no element list")
	return 0
}

func TestDecodeElements(t *testing.T) {
	key := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	raw := []nftables.SetElement{
		{Key: key("0.0.0.0"), IntervalEnd: true}, // nft's leading end
		{Key: key("10.0.1.0"), IntervalEnd: true},
		{Key: key("10.0.0.0"), Timeout: time.Hour, Expires: time.Minute, Comment: "c"},
		{Key: key("10.0.1.0")},
		{Key: key("10.0.1.1"), IntervalEnd: true},
		{Key: key("192.0.2.1")},
		{Key: key("192.0.2.6"), IntervalEnd: true},
		{Key: key("255.255.255.0")},
	}
	got, err := decodeElements(4, true, raw)
	if err != nil {
		t.Fatal(err)
	}
	var strs []string
	for _, e := range got {
		strs = append(strs, fmt.Sprintf("%v %v %v %q", e.Prefix, e.Timeout, e.Expires, e.Comment))
	}
	want := []string{
		`10.0.0.0/24 1h0m0s 1m0s "c"`,
		`10.0.1.0/32 0s 0s ""`,
		`192.0.2.1/32 0s 0s ""`, `192.0.2.2/31 0s 0s ""`, `192.0.2.4/31 0s 0s ""`,
		`255.255.255.0/24 0s 0s ""`,
	}
	if diff := cmp.Diff(want, strs); diff != "" {
		t.Errorf("decodeElements (-want +got):\n%s", diff)
	}

	ports, err := decodeElements(2, true, []nftables.SetElement{
		{Key: be16(22)}, {Key: be16(23), IntervalEnd: true},
		{Key: be16(8000)}, {Key: be16(8081), IntervalEnd: true},
		{Key: be16(60000)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ports[0].Port, ports[0].PortEnd, ports[1].Port, ports[1].PortEnd, ports[2].Port, ports[2].PortEnd); got != "22 22 8000 8080 60000 65535" {
		t.Errorf("decodeElements(ports) = %s", got)
	}
}
