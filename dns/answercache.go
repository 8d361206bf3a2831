package dns

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// The answer cache keeps packed replies to plain UDP questions, keyed by
// everything an answer depends on, so the UDP loop answers a repeated
// question without parsing or building a message. It belongs to one
// version of the data and is replaced whole when the data changes.

const (
	// cacheShards and shardEntries bound the answer cache.
	cacheShards  = 16
	shardEntries = 4096
)

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

// store keeps packed, the reply to the query pkt from src to dst (name
// lower-cased and qtype are its question's), as c allows; rt is the
// runtime that answered.
func (c *answerCache) store(pkt []byte, src, dst netip.Addr, packed []byte, name string, qtype uint16, ca cacheability, rt *snapshot) {
	k, _, ok := parseKey(pkt, src, dst, containsAddr(rt.inside, src), rt)
	if !ok || !ca.ok || len(packed) < 12 || ca.counter == nil {
		return
	}
	reply := append([]byte(nil), packed...)
	reply[0], reply[1] = 0, 0
	var expires time.Time
	if ca.ttl > 0 {
		expires = time.Now().Add(ca.ttl)
	}
	sh := c.shard(&k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.m) >= shardEntries {
		clear(sh.m) // simple and bounded; hot names come back at once
	}
	e := sh.m[k]
	if ca.scope < 0 || k.ecs != "" {
		sh.m[k] = &cacheEntry{reply: reply, counter: ca.counter, name: name, qtype: qtype, zone: ca.zone, view: ca.view, expires: expires}
		return
	}
	if e == nil || !e.geo {
		e = &cacheEntry{geo: true, counter: ca.counter, name: name, qtype: qtype, zone: ca.zone, view: ca.view, byPrefix: map[netip.Prefix][]byte{}}
		sh.m[k] = e
	}
	p, err := src.Prefix(ca.scope)
	if err != nil {
		return
	}
	if len(e.byPrefix) >= shardEntries {
		clear(e.byPrefix)
		e.lens = e.lens[:0]
	}
	e.byPrefix[p] = reply
	if !containsInt(e.lens, ca.scope) {
		// Longest prefixes first: a more specific answer wins.
		e.lens = append(e.lens, ca.scope)
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
