package forward

import (
	"github.com/homeedge/edge/internal/ctlapi"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// staleRecheck is RFC 8767's "failure recheck timer": once a refresh of a
// stale entry failed, that entry is answered at once, without asking the
// upstreams again, for this long. It keeps clients from waiting for
// client_timeout on every query while the upstreams are down.
const staleRecheck = 30 * time.Second

// key identifies a cached answer. DO and CD are part of it because they
// change the answer: DNSSEC records with DO, unvalidated data with CD.
type key struct {
	name   string // lower-cased
	qtype  uint16
	qclass uint16
	flags  uint8
}

const (
	flagDO uint8 = 1 << iota
	flagCD
	// flagNoRD marks a non-recursive query. Such answers are never cached
	// (an upstream answers RD=0 from its own cache only), so it appears
	// only in the keys that coalesce in-flight queries.
	flagNoRD
)

// CacheOptions are the run-time dependencies of a Cache.
type CacheOptions struct {
	// Metrics registers the cache's metrics; nil keeps them private.
	Metrics prometheus.Registerer
	// Namespace prefixes metric names; default "edge_dns".
	Namespace string
	// Now is the clock; default time.Now. Tests move it by hand.
	Now func() time.Time
}

// Cache holds answers from the upstreams. It is safe for concurrent use,
// and meant to outlive Forwarders: edge-dns builds a new Forwarder over the
// same Cache on every reload, so a reload loses no answers.
//
// Entries live in shards, each an LRU list under its own lock; one atomic
// count bounds the total. When the count passes the size, the inserting
// shard gives up its least recently used entry (another shard's when it has
// no other), so the bound is exact while each shard stays LRU.
type Cache struct {
	now    func() time.Time
	base   time.Time
	seed   maphash.Seed
	shards []shard
	mask   uint64
	// count is the number of entries in all shards; it may pass the size
	// for a moment while concurrent inserts evict.
	count atomic.Int64
	cfg   atomic.Pointer[settings]
	m     *metrics

	hits, misses, stale, prefetches, evictions, coalesced atomic.Uint64
}

type shard struct {
	mu sync.Mutex
	// m and the list through head are guarded by mu. head.next is the most
	// recently used entry, head.prev the least.
	m    map[key]*entry
	head entry
}

// entry is one cached answer. ans, stored and expires never change once
// the entry is in a shard; the rest is guarded by the shard's mu.
type entry struct {
	key     key
	ans     *answer
	stored  int64 // clock when the answer arrived
	expires int64 // stored + ttl

	hits       uint32
	prefetched bool  // a prefetch was started for this entry
	failedAt   int64 // clock of the last failed refresh while stale; 0 if none
	prev, next *entry
}

// NewCache returns an empty cache configured by cfg. It panics if the
// metrics cannot be registered (a name clash is a programming error).
func NewCache(cfg CacheConfig, opts CacheOptions) *Cache {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m, err := metricsFor(opts.Metrics, opts.Namespace)
	if err != nil {
		panic(err)
	}
	// About one shard per 1024 entries (a power of two, at most 16):
	// caches under 2048 entries stay one exact LRU, large ones spread
	// their lock. The count is fixed here; SetConfig changes the size
	// only.
	n := 1
	if cfg.Size >= 2048 {
		n = 1 << min(bits.Len(uint(cfg.Size/1024))-1, 4)
	}
	c := &Cache{
		now:    opts.Now,
		base:   opts.Now(),
		seed:   maphash.MakeSeed(),
		shards: make([]shard, n),
		mask:   uint64(n - 1),
		m:      m,
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[key]*entry)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	c.cfg.Store(newSettings(cfg))
	return c
}

// SetConfig applies a reloaded cache section. A smaller size evicts at
// once; new TTL rules apply to answers stored from now on.
func (c *Cache) SetConfig(cfg CacheConfig) {
	c.cfg.Store(newSettings(cfg))
	c.evict(0)
}

// Len is the number of entries, fresh and stale.
func (c *Cache) Len() int { return int(c.count.Load()) }

// Flush removes every entry.
func (c *Cache) Flush() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n := len(s.m)
		clear(s.m)
		s.head.next, s.head.prev = &s.head, &s.head
		s.mu.Unlock()
		c.count.Add(-int64(n))
		c.m.entries.Sub(float64(n))
	}
}

// Stats returns the cache's counters since it was made.
func (c *Cache) Stats() ctlapi.DNSCacheStats {
	return ctlapi.DNSCacheStats{
		Entries:    c.Len(),
		Size:       c.settings().size,
		Hits:       c.hits.Load(),
		Misses:     c.misses.Load(),
		Stale:      c.stale.Load(),
		Prefetches: c.prefetches.Load(),
		Evictions:  c.evictions.Load(),
		Coalesced:  c.coalesced.Load(),
	}
}

func (c *Cache) settings() *settings { return c.cfg.Load() }

// clock is the time since the cache was made, monotonic: a router that
// boots with a wrong wall clock and then jumps years must not expire (or
// keep) everything at once.
func (c *Cache) clock() int64 { return int64(c.now().Sub(c.base)) }

func (c *Cache) shardOf(k key) (*shard, int) {
	i := int(maphash.Comparable(c.seed, k) & c.mask)
	return &c.shards[i], i
}

// lookup is what get found.
type lookup struct {
	ans    *answer
	stored int64
	// fresh: within its TTL; stale: expired, but serve-stale may answer it.
	fresh, stale bool
	// prefetch asks the caller to refresh the entry in the background;
	// it is set for one hit per entry.
	prefetch bool
	// recentFail: a refresh of this stale entry failed less than
	// staleRecheck ago.
	recentFail bool
}

// get looks k up at now and counts the hit for prefetch.
func (c *Cache) get(k key, now int64, st *settings) (lookup, bool) {
	s, _ := c.shardOf(k)
	s.mu.Lock()
	e := s.m[k]
	if e == nil {
		s.mu.Unlock()
		return lookup{}, false
	}
	if now < e.expires {
		s.touch(e)
		e.hits++
		l := lookup{ans: e.ans, stored: e.stored, fresh: true}
		if st.prefetchHits > 0 && !e.prefetched && e.hits >= st.prefetchHits && e.ans.kind != kindFailure &&
			float64(e.expires-now) <= st.prefetchBefore*float64(e.expires-e.stored) {
			e.prefetched = true
			l.prefetch = true
		}
		s.mu.Unlock()
		return l, true
	}
	if st.stale && e.ans.kind != kindFailure && now-e.expires <= int64(st.maxStale) {
		s.touch(e)
		l := lookup{ans: e.ans, stored: e.stored, stale: true, recentFail: e.failedAt != 0 && now-e.failedAt < int64(staleRecheck)}
		s.mu.Unlock()
		return l, true
	}
	// Too old to use: drop it now rather than wait for the LRU.
	s.unlink(e)
	s.mu.Unlock()
	c.count.Add(-1)
	c.m.entries.Dec()
	return lookup{}, false
}

// put stores ans under k, replacing what was there, unless the cache is
// off or ans may not be cached.
func (c *Cache) put(k key, ans *answer, now int64) {
	st := c.settings()
	if st.size == 0 || k.flags&flagNoRD != 0 {
		return
	}
	if ans.ttl == 0 {
		// An answer the upstream says not to keep (TTL 0, no SOA)
		// replaces an older one, which must then not be served stale.
		if ans.kind == kindPositive || ans.kind == kindNegative {
			c.remove(k)
		}
		return
	}
	e := &entry{key: k, ans: ans, stored: now, expires: now + int64(ans.ttl)*int64(time.Second)}
	s, i := c.shardOf(k)
	s.mu.Lock()
	old := s.m[k]
	if old != nil {
		s.unlink(old)
	}
	s.m[k] = e
	s.pushFront(e)
	s.mu.Unlock()
	if old == nil {
		c.count.Add(1)
		c.m.entries.Inc()
		c.evict(i)
	}
}

// failed records that resolving k failed at now: a stale entry remembers
// when (so it is served at once for a while), and where nothing usable is
// cached, the failure itself is (RFC 9520).
func (c *Cache) failed(k key, fail *answer, now int64) {
	st := c.settings()
	if k.flags&flagNoRD != 0 || st.size == 0 {
		return
	}
	s, _ := c.shardOf(k)
	s.mu.Lock()
	if e := s.m[k]; e != nil && e.ans.kind != kindFailure {
		if now < e.expires {
			// A prefetch failed; the entry is still good.
			s.mu.Unlock()
			return
		}
		if st.stale && now-e.expires <= int64(st.maxStale) {
			e.failedAt = now
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	if fail != nil && fail.ttl > 0 {
		c.put(k, fail, now)
	}
}

func (c *Cache) remove(k key) {
	s, _ := c.shardOf(k)
	s.mu.Lock()
	e := s.m[k]
	if e != nil {
		s.unlink(e)
	}
	s.mu.Unlock()
	if e != nil {
		c.count.Add(-1)
		c.m.entries.Dec()
	}
}

// evict removes least recently used entries until the count fits the
// size, starting with shard first.
func (c *Cache) evict(first int) {
	size := int64(c.settings().size)
	for i := 0; c.count.Load() > size && i < 2*len(c.shards); {
		s := &c.shards[(first+i)%len(c.shards)]
		s.mu.Lock()
		// The inserting shard keeps its newest entry: evicting what was
		// just stored would make a full cache useless for that shard.
		if len(s.m) > 1 || (len(s.m) == 1 && (i > 0 || size == 0)) {
			e := s.head.prev
			s.unlink(e)
			s.mu.Unlock()
			c.count.Add(-1)
			c.m.entries.Dec()
			c.m.evictions.Inc()
			c.evictions.Add(1)
			continue
		}
		s.mu.Unlock()
		i++
	}
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *shard) touch(e *entry) {
	if s.head.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	s.pushFront(e)
}

func (s *shard) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(s.m, e.key)
}
