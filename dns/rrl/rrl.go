// Package rrl limits what edge-dns sends to outside clients over UDP:
// response rate limiting as BIND and Knot do it (per client network and
// answer, with "slip" replies that tell real clients to retry over TCP),
// and a per-client query limit. A spoofed flood then reflects a trickle,
// while a real client behind a limited network still gets through on TCP.
package rrl

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/homeedge/edge/internal/config"
)

// Config configures the limits. Zero rates turn a limit off.
type Config struct {
	// ResponsesPerSecond limits identical answers (same name and type) to
	// one client network.
	ResponsesPerSecond int `yaml:"responses_per_second"`
	// ErrorsPerSecond limits error answers (NXDOMAIN, REFUSED, SERVFAIL,
	// FORMERR) per client network and zone, whatever the name: random
	// subdomain floods share one budget.
	ErrorsPerSecond int `yaml:"errors_per_second"`
	// Slip sends every Nth limited answer as an empty truncated reply
	// (TC set), so real clients retry over TCP; 0 drops them all.
	Slip int `yaml:"slip"`
	// Window is the burst allowed: a rate's budget fills up to rate ×
	// window.
	Window config.Duration `yaml:"window"`
	// IPv4Prefix and IPv6Prefix group client addresses into networks.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// QueriesPerSecond limits all queries from one client address.
	QueriesPerSecond int `yaml:"queries_per_second"`
}

// SetDefaults implements config.Defaulter: on, with limits a resolver's
// normal traffic to one domain never reaches.
func (c *Config) SetDefaults() {
	*c = Config{ResponsesPerSecond: 20, ErrorsPerSecond: 10, Slip: 2, Window: config.Duration(5 * time.Second),
		IPv4Prefix: 24, IPv6Prefix: 56, QueriesPerSecond: 200}
}

// Validate implements the section's checks.
func (c *Config) Validate(v *config.Checker) {
	for _, f := range []struct {
		key string
		val int
	}{{"responses_per_second", c.ResponsesPerSecond}, {"errors_per_second", c.ErrorsPerSecond}, {"queries_per_second", c.QueriesPerSecond}, {"slip", c.Slip}} {
		if f.val < 0 || f.val > 1_000_000 {
			v.Key(f.key).Errorf("must be between 0 and 1000000")
		}
	}
	if c.Window.D() < time.Second || c.Window.D() > time.Hour {
		v.Key("window").Errorf("must be between 1s and 1h")
	}
	if c.IPv4Prefix < 8 || c.IPv4Prefix > 32 {
		v.Key("ipv4_prefix").Errorf("must be between 8 and 32")
	}
	if c.IPv6Prefix < 16 || c.IPv6Prefix > 128 {
		v.Key("ipv6_prefix").Errorf("must be between 16 and 128")
	}
}

// Action is what to do with an answer.
type Action int

// Actions.
const (
	Send Action = iota
	// Slip: send an empty truncated reply instead.
	Slip
	Drop
)

const (
	shards = 64
	// maxPerShard bounds memory; past it, idle buckets are swept.
	maxPerShard = 4096
)

// Limiter applies a Config. It is safe for concurrent use.
type Limiter struct {
	cfg    Config
	seed   maphash.Seed
	shards [shards]shard
}

type shard struct {
	mu sync.Mutex
	// buckets and slips are guarded by mu.
	buckets map[key]*bucket
}

type key struct {
	net  netip.Prefix
	hash uint64
	kind uint8
}

type bucket struct {
	tokens float64
	last   time.Time
	// limited counts answers limited since the bucket last had credit,
	// for slipping every Nth.
	limited int
}

const (
	kindAnswer = iota
	kindError
	kindQuery
)

// New returns a limiter for cfg.
func New(cfg Config) *Limiter {
	l := &Limiter{cfg: cfg, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = make(map[key]*bucket)
	}
	return l
}

// Config returns the limiter's configuration.
func (l *Limiter) Config() Config { return l.cfg }

// AllowQuery reports whether a client address may ask another question now.
func (l *Limiter) AllowQuery(src netip.Addr, now time.Time) bool {
	if l.cfg.QueriesPerSecond == 0 {
		return true
	}
	k := key{net: netip.PrefixFrom(src, src.BitLen()), kind: kindQuery}
	ok, _ := l.take(k, float64(l.cfg.QueriesPerSecond), now)
	return ok
}

// Check decides about one answer to src. name is the question name as
// the cache keys it (any stable form), zone the answering zone's name for
// errors, isError whether the rcode is an error.
func (l *Limiter) Check(src netip.Addr, name string, qtype uint16, zone string, isError bool, now time.Time) Action {
	rate := l.cfg.ResponsesPerSecond
	k := key{kind: kindAnswer}
	if isError {
		rate = l.cfg.ErrorsPerSecond
		k.kind = kindError
		k.hash = maphash.String(l.seed, zone)
	} else {
		k.hash = maphash.String(l.seed, name) ^ uint64(qtype)<<48
	}
	if rate == 0 {
		return Send
	}
	bits := l.cfg.IPv4Prefix
	if src.Is6() {
		bits = l.cfg.IPv6Prefix
	}
	k.net, _ = src.Prefix(bits)
	ok, limited := l.take(k, float64(rate), now)
	switch {
	case ok:
		return Send
	case l.cfg.Slip > 0 && limited%l.cfg.Slip == 0:
		return Slip
	}
	return Drop
}

// take spends one token of k's bucket, refilled at rate per second up to
// rate × window. It returns whether there was one, and how many takes
// have been refused in a row.
func (l *Limiter) take(k key, rate float64, now time.Time) (bool, int) {
	h := k.hash ^ uint64(k.kind)
	if a := k.net.Addr(); a.IsValid() {
		b := a.As16()
		for _, x := range b {
			h = h*1099511628211 ^ uint64(x)
		}
	}
	sh := &l.shards[h%shards]
	capacity := rate * l.cfg.Window.D().Seconds()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[k]
	if b == nil {
		if len(sh.buckets) >= maxPerShard {
			l.sweep(sh, now)
		}
		b = &bucket{tokens: capacity, last: now}
		sh.buckets[k] = b
	}
	b.tokens = min(capacity, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.limited = 0
		return true, 0
	}
	b.limited++
	return false, b.limited
}

// sweep drops buckets that have refilled (they hold no state worth
// keeping); if none have, it drops them all rather than grow.
func (l *Limiter) sweep(sh *shard, now time.Time) {
	for k, b := range sh.buckets {
		if now.Sub(b.last) > l.cfg.Window.D() {
			delete(sh.buckets, k)
		}
	}
	if len(sh.buckets) >= maxPerShard {
		clear(sh.buckets)
	}
}
