package dns

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
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
	// cacheShards and shardEntries bound the answer cache.
	cacheShards  = 16
	shardEntries = 4096
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
		u.s.ServeDNS(w, req)
		if w.packed == nil {
			return
		}
		rt := u.s.rt.Load()
		if w.cacheable {
			u.s.cache.Load().store(pkt, w, rt)
		}
		reply := w.packed
		if outside && w.qname != "" {
			if reply = u.limit(rt, reply, src, w.qname, w.qtype, w.zone, time.Now()); reply == nil {
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
	// Set by the handler for answers that depend only on the cache key.
	cacheable bool
	geoScope  int
	zone      string
	view      string
	// expires bounds how long a resolver answer may be served packed.
	expires time.Time
	// qname (lower-cased) and qtype are the question's, for limiting.
	qname   string
	qtype   uint16
	counter prometheus.Counter
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

// markCacheable tells the UDP path that the answer just written depends
// only on the cache key (and, for geo answers, the client's prefix), and
// which zone gave it (rate limiting groups errors by zone).
func markCacheable(w mdns.ResponseWriter, counter prometheus.Counter, geoScope int, zone, view string) {
	if uw, ok := w.(*udpWriter); ok {
		uw.cacheable, uw.counter, uw.geoScope, uw.zone, uw.view = true, counter, geoScope, zone, view
	}
}

// markResolved lets the UDP path keep a resolver answer for a moment: at
// most microCache, and never past the shortest TTL in it, so the TTLs a
// client sees are at most that much too long.
func markResolved(w mdns.ResponseWriter, counter prometheus.Counter, resp *mdns.Msg, view string) {
	uw, ok := w.(*udpWriter)
	if !ok {
		return
	}
	life := microCache
	for _, sec := range [][]mdns.RR{resp.Answer, resp.Ns} {
		for _, rr := range sec {
			life = min(life, time.Duration(rr.Header().Ttl)*time.Second)
		}
	}
	if life <= 0 || resp.Truncated {
		return
	}
	uw.cacheable, uw.counter, uw.geoScope, uw.view = true, counter, -1, view
	uw.expires = time.Now().Add(life)
}

// microCache is the longest a resolver answer is served packed.
const microCache = time.Second

// answerCache holds packed replies. It belongs to one version of the data:
// a change replaces it whole.
type answerCache struct {
	shards [cacheShards]cacheShard
	hits   prometheus.Counter
}

type cacheShard struct {
	mu sync.RWMutex
	// m is guarded by mu.
	m map[cacheKey]*cacheEntry
}

// cacheKey is everything a cached answer depends on besides the geo
// prefix.
type cacheKey struct {
	// name is the question name in wire form, lower-cased.
	name   string
	qtype  uint16
	qclass uint16
	// edns is 0 without OPT, 1 with, 2 with the DO bit.
	edns uint8
	// rd and cd are the query's RD and CD bits: recursion for inside
	// clients depends on them.
	rd, cd bool
	// size is the UDP size limit the answer was truncated to.
	size   uint16
	view   int16
	inside bool
	// ecs is the client subnet option's data, or "".
	ecs string
}

type cacheEntry struct {
	// reply is the packed answer with ID 0; for geo answers nil, and
	// byPrefix holds one per client prefix.
	reply   []byte
	counter prometheus.Counter
	// expires, when set, ends a resolver answer's life in the cache: its
	// TTLs were counted down when it was stored.
	expires time.Time
	// name, qtype and zone are what rate limiting needs; view is for
	// the query log.
	name     string
	qtype    uint16
	zone     string
	view     string
	geo      bool
	lens     []int
	byPrefix map[netip.Prefix][]byte
}

func newAnswerCache(hits prometheus.Counter) *answerCache {
	c := &answerCache{hits: hits}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*cacheEntry)
	}
	return c
}

func (c *answerCache) shard(k *cacheKey) *cacheShard {
	h := uint32(2166136261)
	for i := 0; i < len(k.name); i++ {
		h = (h ^ uint32(k.name[i])) * 16777619
	}
	h ^= uint32(k.qtype)
	return &c.shards[h%cacheShards]
}

// answer returns the cached reply to pkt in buf, or nil.
func (c *answerCache) answer(pkt []byte, src, dst netip.Addr, inside bool, rt *snapshot, now time.Time, buf []byte) ([]byte, *cacheEntry) {
	k, qend, ok := parseKey(pkt, src, dst, inside, rt)
	if !ok {
		return nil, nil
	}
	sh := c.shard(&k)
	sh.mu.RLock()
	e := sh.m[k]
	sh.mu.RUnlock()
	if e == nil || !e.expires.IsZero() && now.After(e.expires) {
		return nil, nil
	}
	reply := e.reply
	if e.geo {
		sh.mu.RLock()
		for _, l := range e.lens {
			p, _ := src.Prefix(l)
			if r, ok := e.byPrefix[p]; ok {
				reply = r
				break
			}
		}
		sh.mu.RUnlock()
		if reply == nil {
			return nil, nil
		}
	}
	buf = append(buf, reply...)
	// The query's ID, RD and CD bits, and its question as written (0x20
	// case randomization survives).
	buf[0], buf[1] = pkt[0], pkt[1]
	buf[2] = buf[2]&^0x01 | pkt[2]&0x01
	buf[3] = buf[3]&^0x10 | pkt[3]&0x10
	copy(buf[12:qend], pkt[12:qend])
	e.counter.Inc()
	c.hits.Inc()
	return buf, e
}

// store keeps the packed reply to a query.
func (c *answerCache) store(pkt []byte, w *udpWriter, rt *snapshot) {
	k, _, ok := parseKey(pkt, w.src, w.dst, containsAddr(rt.inside, w.src), rt)
	if !ok || len(w.packed) < 12 || w.counter == nil {
		return
	}
	reply := append([]byte(nil), w.packed...)
	reply[0], reply[1] = 0, 0
	sh := c.shard(&k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.m) >= shardEntries {
		clear(sh.m) // simple and bounded; hot names come back at once
	}
	e := sh.m[k]
	if w.geoScope < 0 || k.ecs != "" {
		sh.m[k] = &cacheEntry{reply: reply, counter: w.counter, name: w.qname, qtype: w.qtype, zone: w.zone, view: w.view, expires: w.expires}
		return
	}
	if e == nil || !e.geo {
		e = &cacheEntry{geo: true, counter: w.counter, name: w.qname, qtype: w.qtype, zone: w.zone, view: w.view, byPrefix: map[netip.Prefix][]byte{}}
		sh.m[k] = e
	}
	p, err := w.src.Prefix(w.geoScope)
	if err != nil {
		return
	}
	if len(e.byPrefix) >= shardEntries {
		clear(e.byPrefix)
		e.lens = e.lens[:0]
	}
	e.byPrefix[p] = reply
	if !containsInt(e.lens, w.geoScope) {
		// Longest prefixes first: a more specific answer wins.
		e.lens = append(e.lens, w.geoScope)
		for i := len(e.lens) - 1; i > 0 && e.lens[i] > e.lens[i-1]; i-- {
			e.lens[i], e.lens[i-1] = e.lens[i-1], e.lens[i]
		}
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// parseKey reads the cache key of a plain query straight from its bytes
// (inside is the caller's verdict on src, made once per packet):
// one question, nothing but an OPT record beside it, no TSIG. It returns
// the end offset of the question name, and false for anything else (the
// full handler takes those).
func parseKey(pkt []byte, src, dst netip.Addr, inside bool, rt *snapshot) (cacheKey, int, bool) {
	var k cacheKey
	if len(pkt) < 17 {
		return k, 0, false
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&0xf800 != 0 || // QR set or opcode not QUERY
		binary.BigEndian.Uint16(pkt[4:]) != 1 || binary.BigEndian.Uint16(pkt[6:]) != 0 ||
		binary.BigEndian.Uint16(pkt[8:]) != 0 || binary.BigEndian.Uint16(pkt[10:]) > 1 {
		return k, 0, false
	}
	var name [255]byte
	n, off := 0, 12
	for {
		if off >= len(pkt) {
			return k, 0, false
		}
		l := int(pkt[off])
		if l&0xc0 != 0 || off+1+l > len(pkt) || n+1+l > len(name) {
			return k, 0, false // compression in a question, or too long
		}
		name[n] = byte(l)
		for i := 1; i <= l; i++ {
			ch := pkt[off+i]
			if ch >= 'A' && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			name[n+i] = ch
		}
		n += 1 + l
		off += 1 + l
		if l == 0 {
			break
		}
	}
	qend := off
	if off+4 > len(pkt) {
		return k, 0, false
	}
	k.rd, k.cd = flags&0x0100 != 0, flags&0x0010 != 0
	k.qtype = binary.BigEndian.Uint16(pkt[off:])
	k.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	off += 4
	if k.qtype == mdns.TypeAXFR || k.qtype == mdns.TypeIXFR {
		return k, 0, false
	}
	k.size = mdns.MinMsgSize
	if binary.BigEndian.Uint16(pkt[10:]) == 1 {
		// The OPT record: root name, type 41, class = size, TTL = rcode,
		// version and flags, then options.
		if off+11 > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != mdns.TypeOPT {
			return k, 0, false
		}
		size := binary.BigEndian.Uint16(pkt[off+3:])
		if pkt[off+5] != 0 || pkt[off+6] != 0 { // extended rcode, version
			return k, 0, false
		}
		k.edns = 1
		if pkt[off+7]&0x80 != 0 {
			k.edns = 2
		}
		rdlen := int(binary.BigEndian.Uint16(pkt[off+9:]))
		opts := pkt[off+11:]
		if len(opts) != rdlen {
			return k, 0, false
		}
		for len(opts) > 0 {
			if len(opts) < 4 {
				return k, 0, false
			}
			code := binary.BigEndian.Uint16(opts)
			olen := int(binary.BigEndian.Uint16(opts[2:]))
			if 4+olen > len(opts) {
				return k, 0, false
			}
			switch code {
			case mdns.EDNS0SUBNET:
				if k.ecs != "" || !validECS(opts[4:4+olen]) {
					return k, 0, false
				}
				k.ecs = string(opts[4 : 4+olen])
			case mdns.EDNS0PADDING:
			default:
				return k, 0, false // cookies and the rest: the full handler
			}
			opts = opts[4+olen:]
		}
		k.size = uint16(min(max(int(size), mdns.MinMsgSize), ednsSize))
	} else if off != len(pkt) {
		return k, 0, false
	}
	k.name = string(name[:n])
	k.inside = inside
	k.view = -1
	if v := rt.set.MatchView(src, dst); v != nil {
		k.view = int16(rt.viewIndex(v))
	}
	return k, qend, true
}

// validECS accepts a client subnet option whose address has no bits past
// its source prefix and whose scope is 0 (RFC 7871 §7.1.2).
func validECS(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	family, source, scope := binary.BigEndian.Uint16(b), int(b[2]), b[3]
	bits := addrBits(family)
	addr := b[4:]
	if bits == 0 || scope != 0 || source > bits || len(addr) != (source+7)/8 {
		return false
	}
	if source%8 != 0 && len(addr) > 0 && addr[len(addr)-1]&byte(0xff>>(source%8)) != 0 {
		return false
	}
	return true
}
