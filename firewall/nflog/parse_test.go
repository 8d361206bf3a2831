package nflog

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// attr is one netlink attribute of a hand-built message.
type attr struct {
	typ uint16
	val []byte
}

// buildMsg builds an NFULNL_MSG_PACKET payload: nfgenmsg, then attrs.
func buildMsg(family uint8, attrs ...attr) []byte {
	b := []byte{family, 0, 0, 7}
	for _, a := range attrs {
		b = binary.NativeEndian.AppendUint16(b, uint16(4+len(a.val)))
		b = binary.NativeEndian.AppendUint16(b, a.typ)
		b = append(b, a.val...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func prefixAttr(s string) attr  { return attr{nfulaPrefix, append([]byte(s), 0)} }
func payloadAttr(p []byte) attr { return attr{nfulaPayload, p} }
func hdrAttr(hwproto uint16) attr {
	return attr{nfulaPacketHdr, append(be16(hwproto), 1, 0)} // hook 1: NF_INET_LOCAL_IN
}

// ipv4 builds an IPv4 packet with a 20-byte header. totalLen 0 means the
// real length.
func ipv4(proto uint8, src, dst string, totalLen int, fragOff uint16, rest []byte) []byte {
	if totalLen == 0 {
		totalLen = 20 + len(rest)
	}
	h := make([]byte, 20, 20+len(rest))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(totalLen))
	binary.BigEndian.PutUint16(h[6:], fragOff)
	h[8] = 64
	h[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return append(h, rest...)
}

// ipv6 builds an IPv6 packet whose payload length covers rest.
func ipv6(next uint8, src, dst string, rest []byte) []byte {
	h := make([]byte, 40, 40+len(rest))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(rest)))
	h[6] = next
	h[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, rest...)
}

func tcp(sport, dport uint16, flags uint8) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = 5 << 4
	h[13] = flags
	return h
}

func udp(sport, dport uint16, data string) []byte {
	h := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(data)))
	return append(h, data...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("198.51.100.7")
	v6a = netip.MustParseAddr("2001:db8::1")
	v6b = netip.MustParseAddr("2001:db8::2")
)

var parseTests = []struct {
	name string
	data []byte
	want Entry
}{
	{
		name: "ipv4 tcp with prefix",
		data: buildMsg(nfprotoIPv4,
			hdrAttr(0x0800),
			prefixAttr("zone wan input: drop "),
			attr{nfulaIfindexIndev, be32(3)},
			attr{nfulaMark, be32(0x2a)},
			attr{nfulaSeq, be32(9)},
			payloadAttr(ipv4(protoTCP, "192.0.2.1", "198.51.100.7", 0, 0, tcp(51000, 22, 0x02)))),
		want: Entry{Prefix: "zone wan input: drop ", Family: nfprotoIPv4, InIface: 3, HWProto: 0x0800, Mark: 0x2a,
			Src: v4a, Dst: v4b, Proto: protoTCP, SrcPort: 51000, DstPort: 22, TCPFlags: 0x02, Length: 40},
	},
	{
		name: "ipv6 udp behind hop-by-hop",
		data: buildMsg(nfprotoIPv6,
			hdrAttr(0x86dd),
			prefixAttr("v6 out: "),
			attr{nfulaIfindexOutdev, be32(2)},
			payloadAttr(ipv6(protoHopByHop, "2001:db8::1", "2001:db8::2",
				cat([]byte{protoUDP, 0, 1, 4, 0, 0, 0, 0}, udp(5353, 53, "abcd"))))),
		want: Entry{Prefix: "v6 out: ", Family: nfprotoIPv6, OutIface: 2, HWProto: 0x86dd,
			Src: v6a, Dst: v6b, Proto: protoUDP, SrcPort: 5353, DstPort: 53, Length: 60},
	},
	{
		name: "ipv6 tcp behind routing, destination options and first fragment",
		data: buildMsg(nfprotoIPv6,
			payloadAttr(ipv6(protoRouting, "2001:db8::1", "2001:db8::2", cat(
				[]byte{protoDstOpts, 0, 0, 0, 0, 0, 0, 0},
				[]byte{protoFragment, 1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
				[]byte{protoTCP, 0, 0, 1, 0, 0, 0, 1}, // offset 0, more fragments
				tcp(443, 40000, 0x12))))),
		want: Entry{Family: nfprotoIPv6, Src: v6a, Dst: v6b, Proto: protoTCP,
			SrcPort: 443, DstPort: 40000, TCPFlags: 0x12, Length: 40 + 8 + 16 + 8 + 20},
	},
	{
		name: "ipv6 non-first fragment",
		data: buildMsg(nfprotoIPv6,
			payloadAttr(ipv6(protoFragment, "2001:db8::1", "2001:db8::2", cat(
				[]byte{protoUDP, 0, 0x05, 0xa8, 0, 0, 0, 1}, // offset 181*8
				[]byte("fragment data"))))),
		want: Entry{Family: nfprotoIPv6, Src: v6a, Dst: v6b, Proto: protoUDP, Length: 40 + 8 + 13},
	},
	{
		name: "ipv6 extension header cut off",
		data: buildMsg(nfprotoIPv6,
			payloadAttr(ipv6(protoHopByHop, "2001:db8::1", "2001:db8::2",
				[]byte{protoUDP, 2, 1, 4, 0, 0, 0, 0})[:48])), // says 24 bytes, has 8
		want: Entry{Family: nfprotoIPv6, Src: v6a, Dst: v6b, Proto: protoHopByHop, Length: 48},
	},
	{
		name: "icmp",
		data: buildMsg(nfprotoIPv4,
			prefixAttr("ping: "),
			payloadAttr(ipv4(protoICMP, "192.0.2.1", "198.51.100.7", 0, 0, []byte{8, 0, 0xf7, 0xff, 0, 1, 0, 1}))),
		want: Entry{Prefix: "ping: ", Family: nfprotoIPv4, Src: v4a, Dst: v4b, Proto: protoICMP,
			ICMPType: 8, ICMPCode: 0, Length: 28},
	},
	{
		name: "icmpv6",
		data: buildMsg(nfprotoIPv6,
			prefixAttr("nd: "),
			payloadAttr(ipv6(protoICMPv6, "2001:db8::1", "2001:db8::2", []byte{1, 4, 0, 0, 0, 0, 0, 0}))),
		want: Entry{Prefix: "nd: ", Family: nfprotoIPv6, Src: v6a, Dst: v6b, Proto: protoICMPv6,
			ICMPType: 1, ICMPCode: 4, Length: 48},
	},
	{
		name: "truncated payload",
		data: buildMsg(nfprotoIPv4,
			prefixAttr("short: "),
			payloadAttr(ipv4(protoUDP, "192.0.2.1", "198.51.100.7", 1400, 0, []byte{0x30, 0x39}))),
		want: Entry{Prefix: "short: ", Family: nfprotoIPv4, Src: v4a, Dst: v4b, Proto: protoUDP, Length: 1400},
	},
	{
		name: "payload shorter than the ip header",
		data: buildMsg(nfprotoIPv4,
			payloadAttr(ipv4(protoUDP, "192.0.2.1", "198.51.100.7", 0, 0, nil)[:19])),
		want: Entry{Family: nfprotoIPv4, Length: 19},
	},
	{
		name: "missing prefix",
		data: buildMsg(nfprotoIPv4,
			hdrAttr(0x0800),
			payloadAttr(ipv4(protoUDP, "192.0.2.1", "198.51.100.7", 0, 0, udp(1234, 9999, "x")))),
		want: Entry{Family: nfprotoIPv4, HWProto: 0x0800, Src: v4a, Dst: v4b, Proto: protoUDP,
			SrcPort: 1234, DstPort: 9999, Length: 29},
	},
	{
		name: "prefix without NUL, type flags masked",
		data: buildMsg(nfprotoIPv4,
			attr{nfulaPrefix | 0x8000 | 0x4000, []byte("raw")},
			attr{0x7fff, []byte("unknown attribute")}),
		want: Entry{Prefix: "raw", Family: nfprotoIPv4},
	},
	{
		name: "ipv4 non-first fragment",
		data: buildMsg(nfprotoIPv4,
			payloadAttr(ipv4(protoUDP, "192.0.2.1", "198.51.100.7", 0, 185, []byte("middle of a datagram")))),
		want: Entry{Family: nfprotoIPv4, Src: v4a, Dst: v4b, Proto: protoUDP, Length: 40},
	},
	{
		name: "ipv4 sctp with zero total length",
		data: buildMsg(nfprotoIPv4,
			payloadAttr(ipv4(protoSCTP, "192.0.2.1", "198.51.100.7", 0x10000 /* stored as 0 */, 0, []byte{0, 7, 0, 9, 0, 0, 0, 0}))),
		want: Entry{Family: nfprotoIPv4, Src: v4a, Dst: v4b, Proto: protoSCTP, SrcPort: 7, DstPort: 9, Length: 28},
	},
	{
		name: "ipv6 packet in an ipv4 entry",
		data: buildMsg(nfprotoIPv4,
			payloadAttr(ipv6(protoUDP, "2001:db8::1", "2001:db8::2", udp(1, 2, "")))),
		want: Entry{Family: nfprotoIPv4, Length: 48},
	},
	{
		name: "bridge family carries metadata only",
		data: buildMsg(7, // NFPROTO_BRIDGE
			hdrAttr(0x0800),
			prefixAttr("br: "),
			attr{nfulaIfindexIndev, be32(5)},
			payloadAttr(ipv4(protoUDP, "192.0.2.1", "198.51.100.7", 0, 0, udp(1, 2, "")))),
		want: Entry{Prefix: "br: ", Family: 7, HWProto: 0x0800, InIface: 5, Length: 28},
	},
	{
		name: "no payload",
		data: buildMsg(nfprotoIPv6, prefixAttr("meta: "), attr{nfulaMark, be32(0xdeadbeef)}),
		want: Entry{Prefix: "meta: ", Family: nfprotoIPv6, Mark: 0xdeadbeef},
	},
	{
		name: "last attribute without padding",
		data: buildMsg(nfprotoIPv4, prefixAttr("ab"))[:4+4+3],
		want: Entry{Prefix: "ab", Family: nfprotoIPv4},
	},
}

var parseErrorTests = []struct {
	name string
	data []byte
	want string
}{
	{"zero-length input", nil, "shorter than the 4-byte nfgenmsg header"},
	{"short nfgenmsg", []byte{2, 0, 0}, "shorter than the 4-byte nfgenmsg header"},
	{
		"attribute length past the end",
		append(buildMsg(nfprotoIPv4, prefixAttr("ok: ")), 40, 0, nfulaPayload, 0, 0x45, 0, 0, 0),
		"attribute type 9 at offset 16 has length 40, running past the end of the message (8 bytes left)",
	},
	{
		"attribute shorter than its header",
		append(buildMsg(nfprotoIPv4), 2, 0, nfulaPrefix, 0),
		"has length 2, shorter than its 4-byte header",
	},
	{"trailing bytes", append(buildMsg(nfprotoIPv4, prefixAttr("x")), 1, 2), "2 trailing bytes at offset 12"},
	{"short mark", buildMsg(nfprotoIPv4, attr{nfulaMark, be16(1)}), "NFULA_MARK has 2 bytes, want 4"},
	{"short packet header", buildMsg(nfprotoIPv4, attr{nfulaPacketHdr, be16(0x0800)}), "NFULA_PACKET_HDR has 2 bytes, want 4"},
	{"short ifindex", buildMsg(nfprotoIPv4, attr{nfulaIfindexOutdev, nil}), "NFULA_IFINDEX_OUTDEV has 0 bytes, want 4"},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want an error", got)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseSeq(t *testing.T) {
	_, seq, err := parse(parseTests[0].data)
	if err != nil || seq != (seqInfo{9, true}) {
		t.Errorf("parse: seq %+v, err %v; want {9 true}", seq, err)
	}
	_, seq, err = parse(buildMsg(nfprotoIPv4))
	if err != nil || seq.ok {
		t.Errorf("parse without NFULA_SEQ: seq %+v, err %v", seq, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.data)
	}
	for _, tt := range parseErrorTests {
		f.Add(tt.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %q does not wrap ErrMalformed", err)
			}
			return
		}
		if e.Src.IsValid() != e.Dst.IsValid() {
			t.Fatalf("Src %v and Dst %v disagree on validity", e.Src, e.Dst)
		}
		switch e.Family {
		case nfprotoIPv4:
			if e.Src.IsValid() && (!e.Src.Is4() || !e.Dst.Is4()) {
				t.Fatalf("IPv4 entry with addresses %v, %v", e.Src, e.Dst)
			}
		case nfprotoIPv6:
			if e.Src.IsValid() && (!e.Src.Is6() || !e.Dst.Is6()) {
				t.Fatalf("IPv6 entry with addresses %v, %v", e.Src, e.Dst)
			}
		default:
			if e.Src.IsValid() {
				t.Fatalf("family %d entry with addresses %v, %v", e.Family, e.Src, e.Dst)
			}
		}
		if e.Length < 0 || e.Length > len(data)+0xffff+40 {
			t.Fatalf("Length %d", e.Length)
		}
	})
}
