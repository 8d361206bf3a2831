// Package nflog reads packets that nftables `log group N` rules send to
// an NFLOG group, over netlink (NETLINK_NETFILTER, NFNL_SUBSYS_ULOG).
//
// Each packet becomes an Entry carrying the rule's log prefix and the
// addresses, ports and flags from the packet's headers, so that a daemon
// can write one structured log line per packet. Unlike the kernel's own
// LOG output, NFLOG works inside network namespaces even when
// net.netfilter.nf_log_all_netns is 0.
package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Entry is one packet logged by a `log group N` rule.
type Entry struct {
	// Prefix is the rule's log prefix as the rule sent it, trailing space
	// kept and the terminating NUL removed; empty when the rule has none.
	Prefix string
	// Family is the nfgenmsg family: unix.AF_INET (2) or unix.AF_INET6
	// (10) for packets logged by ip, ip6 and inet tables. Entries of other
	// families (bridge, netdev, arp) carry only the metadata fields.
	Family uint8
	// InIface and OutIface are the input and output interface indexes,
	// 0 when absent (no input device on the output hook, for example).
	InIface, OutIface uint32
	// HWProto is the packet's link-layer protocol (an ETH_P_* value such
	// as 0x0800), in host byte order.
	HWProto uint16
	// Mark is the packet mark, 0 when unset.
	Mark uint32
	// Src and Dst are the addresses from the IP header. They are the zero
	// Addr (invalid) when the payload is too short for the header, is not
	// of Family's IP version, or Family is neither AF_INET nor AF_INET6.
	Src, Dst netip.Addr
	// Proto is the IPv4 protocol, or the IPv6 next header after skipping
	// the hop-by-hop, routing, fragment and destination options headers
	// that fit in the payload. When one of those headers is cut off,
	// Proto is that header's number.
	Proto uint8
	// SrcPort and DstPort are set for TCP, UDP, SCTP and UDP-Lite when the
	// first four bytes of the transport header are in the payload and the
	// packet is not a non-first fragment.
	SrcPort, DstPort uint16
	// ICMPType and ICMPCode are set for ICMP (IPv4) and ICMPv6 (IPv6).
	ICMPType, ICMPCode uint8
	// TCPFlags is the TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04,
	// PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80).
	TCPFlags uint8
	// Length is the IP packet's total length from its header. When the
	// header gives none (a payload too short, an IPv6 jumbogram, a GSO
	// packet with a zero IPv4 total length) it is the number of payload
	// bytes the kernel copied, which the copy range may have cut short.
	Length int
}

// ErrMalformed is wrapped by the errors Parse returns, and by the errors
// Read returns for a message it cannot decode.
var ErrMalformed = errors.New("nflog: malformed message")

// Parse decodes the payload of one NFULNL_MSG_PACKET netlink message (the
// nfgenmsg header followed by NFULA_* attributes) into an Entry.
//
// Parse never panics. Errors concern the netlink framing (a short
// header, an attribute running past the end, a fixed-size attribute of
// the wrong size) and wrap ErrMalformed. A packet payload that is
// truncated or is not the IP version Family names is not an error: the
// fields that cannot be read are left zero.
func Parse(data []byte) (Entry, error) {
	e, _, err := parse(data)
	return e, err
}

// seqInfo is the NFULA_SEQ attribute, when present.
type seqInfo struct {
	seq uint32
	ok  bool
}

func parse(data []byte) (Entry, seqInfo, error) {
	var (
		e       Entry
		seq     seqInfo
		payload []byte
	)
	if len(data) < nfgenmsgLen {
		return Entry{}, seq, fmt.Errorf("%w: %d bytes, shorter than the %d-byte nfgenmsg header",
			ErrMalformed, len(data), nfgenmsgLen)
	}
	e.Family = data[0]

	for off := nfgenmsgLen; off < len(data); {
		left := len(data) - off
		if left < nlaHdrLen {
			return Entry{}, seq, fmt.Errorf("%w: %d trailing bytes at offset %d, too short for an attribute header",
				ErrMalformed, left, off)
		}
		alen := int(binary.NativeEndian.Uint16(data[off:]))
		atype := binary.NativeEndian.Uint16(data[off+2:]) & nlaTypeMask
		if alen < nlaHdrLen {
			return Entry{}, seq, fmt.Errorf("%w: attribute type %d at offset %d has length %d, shorter than its %d-byte header",
				ErrMalformed, atype, off, alen, nlaHdrLen)
		}
		if alen > left {
			return Entry{}, seq, fmt.Errorf("%w: attribute type %d at offset %d has length %d, running past the end of the message (%d bytes left)",
				ErrMalformed, atype, off, alen, left)
		}
		val := data[off+nlaHdrLen : off+alen]
		// Attributes are padded to 4 bytes; a missing pad after the last
		// one is tolerated.
		off += min((alen+3)&^3, left)

		var err error
		switch atype {
		case nfulaPacketHdr:
			// struct nfulnl_msg_packet_hdr { __be16 hw_protocol; __u8 hook; __u8 _pad; }
			if err = wantLen("NFULA_PACKET_HDR", val, 4); err == nil {
				e.HWProto = binary.BigEndian.Uint16(val)
			}
		case nfulaMark:
			if err = wantLen("NFULA_MARK", val, 4); err == nil {
				e.Mark = binary.BigEndian.Uint32(val)
			}
		case nfulaIfindexIndev:
			if err = wantLen("NFULA_IFINDEX_INDEV", val, 4); err == nil {
				e.InIface = binary.BigEndian.Uint32(val)
			}
		case nfulaIfindexOutdev:
			if err = wantLen("NFULA_IFINDEX_OUTDEV", val, 4); err == nil {
				e.OutIface = binary.BigEndian.Uint32(val)
			}
		case nfulaSeq:
			if err = wantLen("NFULA_SEQ", val, 4); err == nil {
				seq = seqInfo{binary.BigEndian.Uint32(val), true}
			}
		case nfulaPrefix:
			e.Prefix = cString(val)
		case nfulaPayload:
			payload = val
		}
		if err != nil {
			return Entry{}, seqInfo{}, err
		}
	}

	e.Length = len(payload)
	switch e.Family {
	case nfprotoIPv4:
		decodeIPv4(&e, payload)
	case nfprotoIPv6:
		decodeIPv6(&e, payload)
	}
	return e, seq, nil
}

// wantLen checks that a fixed-size attribute is at least n bytes long.
func wantLen(name string, val []byte, n int) error {
	if len(val) < n {
		return fmt.Errorf("%w: %s has %d bytes, want %d", ErrMalformed, name, len(val), n)
	}
	return nil
}

// cString returns b up to its first NUL byte.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func decodeIPv4(e *Entry, p []byte) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return
	}
	e.Src = netip.AddrFrom4([4]byte(p[12:16]))
	e.Dst = netip.AddrFrom4([4]byte(p[16:20]))
	e.Proto = p[9]
	if total := binary.BigEndian.Uint16(p[2:]); total != 0 {
		e.Length = int(total)
	}
	hlen := int(p[0]&0x0f) * 4
	if hlen < 20 || hlen > len(p) {
		return
	}
	if binary.BigEndian.Uint16(p[6:])&0x1fff != 0 {
		// A non-first fragment has no transport header.
		return
	}
	decodeTransport(e, p[hlen:], false)
}

func decodeIPv6(e *Entry, p []byte) {
	if len(p) < 40 || p[0]>>4 != 6 {
		return
	}
	e.Src = netip.AddrFrom16([16]byte(p[8:24]))
	e.Dst = netip.AddrFrom16([16]byte(p[24:40]))
	if plen := binary.BigEndian.Uint16(p[4:]); plen != 0 {
		e.Length = 40 + int(plen)
	}
	next, off := p[6], 40
	// Each extension header is at least 8 bytes long, so the loop ends
	// by itself; the cap only bounds work on hostile input.
	for range 32 {
		switch next {
		case protoHopByHop, protoRouting, protoDstOpts:
			if off+2 > len(p) {
				e.Proto = next
				return
			}
			n := (int(p[off+1]) + 1) * 8
			if off+n > len(p) {
				e.Proto = next
				return
			}
			next, off = p[off], off+n
			continue
		case protoFragment:
			if off+8 > len(p) {
				e.Proto = next
				return
			}
			fragOff := binary.BigEndian.Uint16(p[off+2:]) &^ 7
			next, off = p[off], off+8
			if fragOff != 0 {
				// A non-first fragment has no transport header.
				e.Proto = next
				return
			}
			continue
		}
		break
	}
	e.Proto = next
	switch next {
	case protoHopByHop, protoRouting, protoDstOpts, protoFragment:
		// Too many extension headers to follow.
		return
	}
	decodeTransport(e, p[off:], true)
}

func decodeTransport(e *Entry, t []byte, v6 bool) {
	switch e.Proto {
	case protoTCP:
		if len(t) >= 14 {
			e.TCPFlags = t[13]
		}
		fallthrough
	case protoUDP, protoSCTP, protoUDPLite:
		if len(t) >= 4 {
			e.SrcPort = binary.BigEndian.Uint16(t[0:])
			e.DstPort = binary.BigEndian.Uint16(t[2:])
		}
	case protoICMP, protoICMPv6:
		if (e.Proto == protoICMPv6) == v6 && len(t) >= 2 {
			e.ICMPType, e.ICMPCode = t[0], t[1]
		}
	}
}
