package forward

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

func benchEnv(b *testing.B) *testEnv {
	up := serveDNS(b, answerWith("$NAME 3600 IN A 192.0.2.1", "$NAME 3600 IN A 192.0.2.2"))
	env := newEnv(b, fastConfig(Server{Address: up.Addr}), DefaultCacheConfig(), Options{})
	if _, res := env.F.Resolve(context.Background(), newReq("www.example.", dns.TypeA, true, false)); res.Source != SourceUpstream {
		b.Fatalf("warm-up Resolve() = %v, want upstream", res.Source)
	}
	return env
}

// BenchmarkResolveCacheHit is the forwarder's share of answering a cached
// question: key, lookup, copy with decayed TTLs.
func BenchmarkResolveCacheHit(b *testing.B) {
	env := benchEnv(b)
	req := newReq("www.example.", dns.TypeA, true, false)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, res := env.F.Resolve(ctx, req); res.Source != SourceCache {
			b.Fatalf("Resolve() = %v, want cache", res.Source)
		}
	}
}

// BenchmarkResolveCacheHitPack adds packing the reply, which the server
// does before it writes: the whole cost of a hit but the socket.
func BenchmarkResolveCacheHitPack(b *testing.B) {
	env := benchEnv(b)
	req := newReq("www.example.", dns.TypeA, true, false)
	ctx := context.Background()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := env.F.Resolve(ctx, req)
		if _, err := r.PackBuffer(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolveCacheHitParallel(b *testing.B) {
	env := benchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := newReq("www.example.", dns.TypeA, true, false)
		for pb.Next() {
			env.F.Resolve(ctx, req)
		}
	})
}
