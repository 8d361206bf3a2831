package dns

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/homeedge/edge/dns/rrl"
	"github.com/homeedge/edge/dns/zone"
)

func zoneLower(name string) string { return zone.Lower(mdns.Fqdn(name)) }

// The UDP path. Each socket has a loop that reads packets in batches
// (recvmmsg), answers questions it has answered before from a cache of
// packed replies, and sends those in batches (sendmmsg). Everything else
// goes to the full handler in a goroutine of its own. Cached replies are
// keyed by everything an answer depends on, and the cache is dropped
// whenever the data changes (reload, record change, health change).

const (
	batchSize = 32
	// maxSlow bounds the queries handled off the loop at once.
	maxSlow = 4096
)

// batchConn is what ipv4.PacketConn and ipv6.PacketConn have in common.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type udpLoop struct {
	s    *Server
	pc   net.PacketConn
	conn batchConn
	v6   bool
	slow chan struct{}
}

func newUDPLoop(s *Server, pc net.PacketConn, v6 bool) (*udpLoop, error) {
	u := &udpLoop{s: s, pc: pc, v6: v6, slow: make(chan struct{}, maxSlow)}
	if v6 {
		p := ipv6.NewPacketConn(pc)
		if err := p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
			return nil, err
		}
		u.conn = p
	} else {
		p := ipv4.NewPacketConn(pc)
		if err := p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
			return nil, err
		}
		u.conn = p
	}
	return u, nil
}

// run serves until the socket is closed.
func (u *udpLoop) run() error {
	in := make([]ipv4.Message, batchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, mdns.MaxMsgSize)}
		in[i].OOB = make([]byte, 128)
	}
	// Replies reuse their buffers and message structs: the hot path
	// allocates nothing of its own.
	outs := make([]ipv4.Message, batchSize)
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, 0, ednsSize)
		outs[i].Buffers = make([][]byte, 1)
	}
	var oob oobCache
	for {
		n, err := u.conn.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		nout := 0
		cache := u.s.cache.Load()
		rt := u.s.rt.Load()
		now := time.Now()
		for i := range n {
			m := &in[i]
			pkt := m.Buffers[0][:m.N]
			src := addrOf(m.Addr)
			dst := u.dst(m.OOB[:m.NN])
			outside := !containsAddr(rt.inside, src)
			if outside && !rt.limiter.AllowQuery(src, now) {
				u.s.metrics.limited.WithLabelValues("query").Inc()
				continue
			}
			reply, e := cache.answer(pkt, src, dst, !outside, rt, now, bufs[nout][:0])
			if reply == nil {
				u.slowPath(append([]byte(nil), pkt...), m.Addr, src, dst, outside)
				continue
			}
			if outside {
				if reply = u.limit(rt, reply, src, e.name, e.qtype, e.zone, now); reply == nil {
					continue
				}
			}
			if ql := u.s.qlog.Load(); ql.sampled() {
				ql.write(queryEntry{Time: now.UTC(), Client: src.String(), Proto: "udp", Name: e.name, Type: mdns.TypeToString[e.qtype],
					Rcode: rcodeLabel(int(reply[3] & 0x0f)), View: e.view, Source: "cache"})
			}
			o := &outs[nout]
			o.Buffers[0], o.Addr, o.OOB = reply, m.Addr, oob.get(u, dst)
			nout++
		}
		for out := outs[:nout]; len(out) > 0; {
			k, err := u.conn.WriteBatch(out, 0)
			if err != nil {
				u.s.metrics.writeErrors.Add(float64(len(out)))
				break
			}
			out = out[k:]
		}
	}
}

// dst returns the address a packet was sent to, from its control message.
func (u *udpLoop) dst(oob []byte) netip.Addr {
	if u.v6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) == nil && cm.Dst != nil {
			a, _ := netip.AddrFromSlice(cm.Dst)
			return a.Unmap()
		}
	} else {
		var cm ipv4.ControlMessage
		if cm.Parse(oob) == nil && cm.Dst != nil {
			a, _ := netip.AddrFromSlice(cm.Dst.To4())
			return a
		}
	}
	return netip.Addr{}
}

// srcOOB makes the reply leave from the address the query came to, so a
// client of a multi-homed router sees the answer from where it asked.
func (u *udpLoop) srcOOB(dst netip.Addr) []byte {
	if !dst.IsValid() {
		return nil
	}
	if u.v6 {
		return (&ipv6.ControlMessage{Src: dst.AsSlice()}).Marshal()
	}
	return (&ipv4.ControlMessage{Src: dst.AsSlice()}).Marshal()
}

// limit applies response rate limiting to a reply for an outside client:
// the reply itself, its truncated slip, or nil to drop it.
func (u *udpLoop) limit(rt *snapshot, reply []byte, src netip.Addr, name string, qtype uint16, zone string, now time.Time) []byte {
	isError := reply[3]&0x0f != mdns.RcodeSuccess
	switch rt.limiter.Check(src, name, qtype, zone, isError, now) {
	case rrl.Slip:
		u.s.metrics.limited.WithLabelValues("slip").Inc()
		return slip(reply)
	case rrl.Drop:
		u.s.metrics.limited.WithLabelValues("drop").Inc()
		return nil
	}
	return reply
}

// slip turns a reply into an empty one with TC set: header and question.
func slip(reply []byte) []byte {
	end := questionEnd(reply)
	if end < 0 {
		return nil
	}
	out := append([]byte(nil), reply[:end]...)
	out[2] |= 0x02 // TC
	clear(out[6:12])
	return out
}

// questionEnd is the offset after the first question, or -1.
func questionEnd(b []byte) int {
	off := 12
	for off < len(b) {
		l := int(b[off])
		if l == 0 {
			off++
			if off+4 > len(b) {
				return -1
			}
			return off + 4
		}
		if l&0xc0 != 0 {
			return -1
		}
		off += 1 + l
	}
	return -1
}

// oobCache keeps the control message of the last destination address:
// replies mostly leave from the same address, and marshalling it for each
// one would allocate on the hot path.
type oobCache struct {
	dst netip.Addr
	oob []byte
}

func (c *oobCache) get(u *udpLoop, dst netip.Addr) []byte {
	if dst != c.dst || c.oob == nil && dst.IsValid() {
		c.dst, c.oob = dst, u.srcOOB(dst)
	}
	return c.oob
}

// slowPath hands a packet to the full handler in its own goroutine.
func (u *udpLoop) slowPath(pkt []byte, addr net.Addr, src, dst netip.Addr, outside bool) {
	select {
	case u.slow <- struct{}{}:
	default:
		u.s.metrics.dropped.Inc() // overloaded: let the client retry
		return
	}
	go func() {
		defer func() { <-u.slow }()
		req := new(mdns.Msg)
		if err := req.Unpack(pkt); err != nil {
			u.s.metrics.malformed.Inc()
			if len(pkt) >= 12 && pkt[2]&0x80 == 0 {
				// Answer FORMERR to what looks like a query header.
				hdr := make([]byte, 12)
				copy(hdr, pkt[:12])
				hdr[2] = 0x80 | hdr[2]&0x79
				hdr[3] = mdns.RcodeFormatError
				clear(hdr[4:])
				u.write(hdr, addr, dst)
			}
			return
		}
		if action := u.s.accept(headerOf(pkt)); action != mdns.MsgAccept {
			if action == mdns.MsgReject || action == mdns.MsgRejectNotImplemented {
				rc := mdns.RcodeFormatError
				if action == mdns.MsgRejectNotImplemented {
					rc = mdns.RcodeNotImplemented
				}
				resp := new(mdns.Msg).SetRcode(req, rc)
				resp.Question = nil
				if b, err := resp.Pack(); err == nil {
					u.write(b, addr, dst)
				}
			}
			return
		}
		w := &udpWriter{u: u, addr: addr, src: src, dst: dst}
		if len(req.Question) == 1 {
			w.qname, w.qtype = zoneLower(req.Question[0].Name), req.Question[0].Qtype
		}
		if t := req.IsTsig(); t != nil {
			w.tsigStatus = mdns.TsigVerifyWithProvider(pkt, keyring{u.s}, "", false)
			w.requestMAC = t.MAC
		}
		// The cache before the runtime: a commit swaps the runtime and
		// then the cache, so an answer from an old runtime can only land
		// in a cache already replaced.
		cache := u.s.cache.Load()
		rt := u.s.rt.Load()
		c := u.s.handle(w, req, "udp", rt)
		if w.packed == nil {
			return
		}
		if c.ok && w.qname != "" {
			cache.store(pkt, w.src, w.dst, w.packed, w.qname, w.qtype, c, rt)
		}
		reply := w.packed
		if outside && w.qname != "" {
			if reply = u.limit(rt, reply, src, w.qname, w.qtype, c.zone, time.Now()); reply == nil {
				return
			}
		}
		u.write(reply, addr, dst)
	}()
}

func (u *udpLoop) write(b []byte, addr net.Addr, dst netip.Addr) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return
	}
	oob := u.srcOOB(dst)
	if _, _, err := u.pc.(*net.UDPConn).WriteMsgUDP(b, oob, ua); err != nil {
		u.s.metrics.writeErrors.Inc()
	}
}

func headerOf(pkt []byte) mdns.Header {
	return mdns.Header{
		Id:      binary.BigEndian.Uint16(pkt[0:]),
		Bits:    binary.BigEndian.Uint16(pkt[2:]),
		Qdcount: binary.BigEndian.Uint16(pkt[4:]),
		Ancount: binary.BigEndian.Uint16(pkt[6:]),
		Nscount: binary.BigEndian.Uint16(pkt[8:]),
		Arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
}

// udpWriter is the handler's ResponseWriter for a UDP query off the loop.
type udpWriter struct {
	u          *udpLoop
	addr       net.Addr
	src, dst   netip.Addr
	tsigStatus error
	requestMAC string
	// qname (lower-cased) and qtype are the question's, for limiting.
	qname string
	qtype uint16
	// packed is the reply, sent once the handler returns (after rate
	// limiting).
	packed []byte
}

func (w *udpWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: w.dst.AsSlice(), Port: w.u.pc.LocalAddr().(*net.UDPAddr).Port}
}
func (w *udpWriter) RemoteAddr() net.Addr { return w.addr }
func (w *udpWriter) TsigStatus() error    { return w.tsigStatus }
func (w *udpWriter) TsigTimersOnly(bool)  {}
func (w *udpWriter) Hijack()              {}
func (w *udpWriter) Close() error         { return nil }

func (w *udpWriter) WriteMsg(m *mdns.Msg) error {
	var b []byte
	var err error
	if t := m.IsTsig(); t != nil {
		b, _, err = mdns.TsigGenerateWithProvider(m, keyring{w.u.s}, w.requestMAC, false)
	} else {
		b, err = m.Pack()
	}
	if err != nil {
		return err
	}
	return w.send(b)
}

func (w *udpWriter) Write(b []byte) (int, error) {
	return len(b), w.send(b)
}

func (w *udpWriter) send(b []byte) error {
	w.packed = b
	return nil
}
