package forward

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func testKey(name string) key {
	return key{name: name, qtype: dns.TypeA, qclass: dns.ClassINET}
}

func positive(ttl uint32) *answer {
	return &answer{kind: kindPositive, answer: []dns.RR{mustRR(fmt.Sprintf("x. %d IN A 192.0.2.1", ttl))}, ttl: ttl}
}

func sized(n int) CacheConfig {
	c := DefaultCacheConfig()
	c.Size = n
	return c
}

// present returns which of names the cache holds.
func present(c *Cache, names ...string) []string {
	var out []string
	for _, n := range names {
		if _, ok := c.get(testKey(n), c.clock(), c.settings()); ok {
			out = append(out, n)
		}
	}
	return out
}

func TestEvictionLRU(t *testing.T) {
	c := NewCache(sized(3), CacheOptions{})
	for _, n := range []string{"a.", "b.", "c."} {
		c.put(testKey(n), positive(300), c.clock())
	}
	c.get(testKey("a."), c.clock(), c.settings()) // a is now the most recent
	c.put(testKey("d."), positive(300), c.clock())
	if got, want := present(c, "a.", "b.", "c.", "d."), []string{"a.", "c.", "d."}; !cmp.Equal(got, want) {
		t.Errorf("after a 4th insert into a cache of 3 the cache holds %v, want %v (b least recently used)", got, want)
	}
	if st := c.Stats(); st.Entries != 3 || st.Evictions != 1 {
		t.Errorf("Stats() = %+v, want 3 entries, 1 eviction", st)
	}
	// Replacing an entry does not count twice.
	c.put(testKey("a."), positive(60), c.clock())
	if c.Len() != 3 {
		t.Errorf("Len() after replacing = %d, want 3", c.Len())
	}
}

func TestEvictionBoundSharded(t *testing.T) {
	for _, size := range []int{1, 100, 2048, 8192} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := NewCache(sized(size), CacheOptions{})
			const n = 12000
			for i := range n {
				c.put(testKey(fmt.Sprintf("n%d.", i)), positive(300), c.clock())
			}
			held := 0
			for i := range c.shards {
				held += len(c.shards[i].m)
			}
			want := min(size, n)
			if c.Len() != want || held != want {
				t.Errorf("cache of %d after %d inserts: Len() = %d, held %d, want %d", size, n, c.Len(), held, want)
			}
			if got := c.Stats().Evictions; got != uint64(n-want) {
				t.Errorf("evictions = %d, want %d", got, n-want)
			}
			// The newest entry is never the one evicted.
			if got := present(c, fmt.Sprintf("n%d.", n-1)); len(got) != 1 {
				t.Errorf("the last entry stored is gone")
			}
		})
	}
}

func TestSetConfigResizes(t *testing.T) {
	c := NewCache(sized(100), CacheOptions{})
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("n%d.", i))
		c.put(testKey(names[i]), positive(300), c.clock())
	}
	c.SetConfig(sized(10))
	if got := present(c, names...); !cmp.Equal(got, names[90:]) {
		t.Errorf("after shrinking to 10 the cache holds %v, want the 10 newest %v", got, names[90:])
	}
	c.SetConfig(sized(0))
	if c.Len() != 0 {
		t.Errorf("Len() with size 0 = %d, want 0", c.Len())
	}
	c.put(testKey("x."), positive(300), c.clock())
	if c.Len() != 0 {
		t.Errorf("size 0 stored an entry")
	}
}

func TestFlush(t *testing.T) {
	c := NewCache(sized(100), CacheOptions{})
	for i := range 10 {
		c.put(testKey(fmt.Sprintf("n%d.", i)), positive(300), c.clock())
	}
	c.Flush()
	if c.Len() != 0 || len(present(c, "n1.")) != 0 {
		t.Errorf("Flush() left %d entries", c.Len())
	}
	c.put(testKey("n1."), positive(300), c.clock())
	if c.Len() != 1 {
		t.Errorf("Len() after Flush and put = %d, want 1", c.Len())
	}
}

func TestUncacheableReplacesStale(t *testing.T) {
	clock := newFakeClock()
	c := NewCache(DefaultCacheConfig(), CacheOptions{Now: clock.Now})
	k := testKey("s.")
	c.put(k, positive(10), c.clock())
	clock.Advance(time.Minute)
	// An answer the upstream says not to keep (TTL 0) also ends the
	// stale one.
	c.put(k, &answer{kind: kindPositive, ttl: 0}, c.clock())
	if _, ok := c.get(k, c.clock(), c.settings()); ok {
		t.Errorf("stale entry survived an uncacheable answer")
	}
}

func TestNewAnswer(t *testing.T) {
	st := newSettings(DefaultCacheConfig())
	st.minTTL, st.maxTTL, st.negTTL = 10, 1000, 600
	tests := []struct {
		name  string
		msg   func() *dns.Msg
		kind  kind
		ttl   uint32
		ttls  []uint32 // every record's TTL after, in section order
		extra int
		ede   []uint16
	}{
		{"positive clamps", func() *dns.Msg {
			m := reply(dns.RcodeSuccess, "a. 5 IN A 192.0.2.1", "a. 5000 IN A 192.0.2.2")
			return m
		}, kindPositive, 10, []uint32{10, 1000}, 0, nil},
		{"zero TTL raised by min_ttl", func() *dns.Msg { return reply(dns.RcodeSuccess, "a. 0 IN A 192.0.2.1") }, kindPositive, 10, []uint32{10}, 0, nil},
		{"nxdomain", func() *dns.Msg {
			m := reply(dns.RcodeNameError)
			m.Ns = []dns.RR{mustRR(fmt.Sprintf(soa, 900, 300))}
			return m
		}, kindNegative, 300, []uint32{300}, 0, nil},
		{"nodata capped", func() *dns.Msg {
			m := reply(dns.RcodeSuccess)
			m.Ns = []dns.RR{mustRR(fmt.Sprintf(soa, 7200, 7200))}
			return m
		}, kindNegative, 600, []uint32{600}, 0, nil},
		{"servfail", func() *dns.Msg { return reply(dns.RcodeServerFailure) }, kindOther, 0, nil, 0, nil},
		{"truncated", func() *dns.Msg {
			m := reply(dns.RcodeSuccess, "a. 300 IN A 192.0.2.1")
			m.Truncated = true
			return m
		}, kindOther, 0, []uint32{300}, 0, nil},
		{"OPT dropped, EDE kept", func() *dns.Msg {
			m := reply(dns.RcodeSuccess, "a. 300 IN A 192.0.2.1")
			m.Extra = append(m.Extra, mustRR("ns.a. 300 IN A 192.0.2.9"))
			m.SetEdns0(1232, true)
			m.IsEdns0().Option = []dns.EDNS0{
				&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24},
				&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeFiltered},
			}
			return m
		}, kindPositive, 300, []uint32{300, 300}, 1, []uint16{dns.ExtendedErrorCodeFiltered}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAnswer(tc.msg(), st)
			var got []uint32
			forEach(a, func(h *dns.RR_Header) { got = append(got, h.Ttl) })
			var ede []uint16
			for _, e := range a.ede {
				ede = append(ede, e.InfoCode)
			}
			if a.kind != tc.kind || a.ttl != tc.ttl || !cmp.Equal(got, tc.ttls) || len(a.extra) != tc.extra || !cmp.Equal(ede, tc.ede) {
				t.Errorf("newAnswer() = kind %d ttl %d TTLs %v extra %d EDE %v, want kind %d ttl %d TTLs %v extra %d EDE %v",
					a.kind, a.ttl, got, len(a.extra), ede, tc.kind, tc.ttl, tc.ttls, tc.extra, tc.ede)
			}
		})
	}
}

func reply(rcode int, rrs ...string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion("a.", dns.TypeA)
	m.Response = true
	m.Rcode = rcode
	for _, s := range rrs {
		m.Answer = append(m.Answer, mustRR(s))
	}
	return m
}

// TestCacheConcurrent is for the race detector: lookups, inserts,
// failures, resizes and flushes at once keep the count and the lists
// consistent.
func TestCacheConcurrent(t *testing.T) {
	clock := newFakeClock()
	c := NewCache(sized(4096), CacheOptions{Now: clock.Now})
	done := make(chan struct{})
	var workers sync.WaitGroup
	for w := range 4 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range 3000 {
				k := testKey(fmt.Sprintf("n%d.", (i*7+w)%5000))
				switch i % 4 {
				case 0:
					c.put(k, positive(uint32(1+i%5)), c.clock())
				case 1:
					c.failed(k, failure(nil, 5), c.clock())
				default:
					c.get(k, c.clock(), c.settings())
				}
			}
		}()
	}
	go func() {
		defer close(done)
		for i := range 20 {
			c.SetConfig(sized(1000 + 500*i))
			clock.Advance(time.Second)
			if i%7 == 0 {
				c.Flush()
			}
		}
	}()
	workers.Wait()
	<-done
	held := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		held += len(s.m)
		n := 0
		for e := s.head.next; e != &s.head; e = e.next {
			n++
		}
		if n != len(s.m) {
			t.Errorf("shard %d: list has %d entries, map %d", i, n, len(s.m))
		}
		s.mu.Unlock()
	}
	if c.Len() != held || held > c.settings().size {
		t.Errorf("Len() = %d, entries held %d, size %d: want Len() = held <= size", c.Len(), held, c.settings().size)
	}
}
