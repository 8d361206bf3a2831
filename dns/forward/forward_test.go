package forward

import (
	"context"
	"crypto/x509"
	"errors"
	"github.com/homeedge/edge/internal/ctlapi"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/homeedge/edge/internal/config"
)

// noStale is the default cache without serve-stale or prefetch, so that
// expiry is plain.
func noStale() CacheConfig {
	c := DefaultCacheConfig()
	c.ServeStale.Enabled = false
	c.Prefetch.Hits = 0
	return c
}

func nameOf(t *testing.T, s Server) string {
	t.Helper()
	ep, err := s.endpoint()
	if err != nil {
		t.Fatalf("%+v.endpoint() error: %s", s, err.msg)
	}
	return ep.name
}

// resolve asks f and checks what every reply must be: not nil, a
// response with the request's ID and question.
func resolve(t *testing.T, f *Forwarder, req *dns.Msg) (*dns.Msg, Result) {
	t.Helper()
	r, res := f.Resolve(context.Background(), req)
	if r == nil {
		t.Fatalf("Resolve(%s) = nil reply", req.Question[0].Name)
	}
	if !r.Response || r.Id != req.Id {
		t.Errorf("Resolve(%s) reply response=%v id=%d, want response with id %d", req.Question[0].Name, r.Response, r.Id, req.Id)
	}
	if diff := cmp.Diff(req.Question, r.Question); diff != "" {
		t.Errorf("Resolve(%s) question mismatch (-req +reply):\n%s", req.Question[0].Name, diff)
	}
	return r, res
}

func aRecords(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

func TestForwardProtocols(t *testing.T) {
	ca := newTestCA(t)
	h := answerWith("$NAME 300 IN A 192.0.2.1")
	plain := serveDNS(t, h)
	dot := serveDoT(t, ca, h)
	doh := serveDoH(t, ca, h)
	_, dohPort, _ := net.SplitHostPort(doh.Addr)
	tests := []struct {
		name   string
		server Server
		up     *upstreamServer
	}{
		{"udp", Server{Address: plain.Addr}, plain},
		{"tls with server_name", Server{Address: dot.Addr, Protocol: ProtoTLS, ServerName: "dns.test"}, dot.upstreamServer},
		{"tls by IP", Server{Address: dot.Addr, Protocol: ProtoTLS}, dot.upstreamServer},
		{"https post", Server{URL: doh.URL}, doh.upstreamServer},
		{"https get", Server{URL: doh.URL, Method: "get"}, doh.upstreamServer},
		{"https bootstrap", Server{URL: "https://dns.test:" + dohPort + "/dns-query", Bootstrap: doh.Addr}, doh.upstreamServer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig(tc.server)
			cfg.CAFile = ca.File
			// An empty pool: only ca_file makes the test CA trusted.
			env := newEnv(t, cfg, noStale(), Options{RootCAs: x509.NewCertPool()})
			before := tc.up.Queries()
			req := newReq("WWW.Example.", dns.TypeA, true, false)
			r, res := resolve(t, env.F, req)
			if r.Rcode != dns.RcodeSuccess || !cmp.Equal(aRecords(r), []string{"192.0.2.1"}) {
				t.Fatalf("Resolve() = %s %v, want NOERROR [192.0.2.1]", dns.RcodeToString[r.Rcode], aRecords(r))
			}
			want := Result{Source: SourceUpstream, Upstream: nameOf(t, tc.server)}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("Resolve() result mismatch (-want +got):\n%s", diff)
			}
			if got := tc.up.Queries() - before; got != 1 {
				t.Errorf("upstream got %d queries, want 1", got)
			}
			if q := tc.up.Last(); q.Question[0].Name != "www.example." || !q.RecursionDesired {
				t.Errorf("upstream query = %s rd=%v, want www.example. with RD", q.Question[0].Name, q.RecursionDesired)
			}
			if _, res := resolve(t, env.F, newReq("www.example.", dns.TypeA, false, false)); res.Source != SourceCache {
				t.Errorf("second Resolve() source = %v, want cache", res.Source)
			}
		})
	}
	doh.mu.Lock()
	defer doh.mu.Unlock()
	for i, p := range doh.protos {
		if p != 2 || doh.ids[i] != 0 {
			t.Errorf("DoH request %d: HTTP/%d with DNS ID %d, want HTTP/2 with ID 0 (RFC 8484 §4.1)", i, p, doh.ids[i])
		}
	}
	if !cmp.Equal(doh.method, []string{"POST", "GET", "POST"}) {
		t.Errorf("DoH methods = %v, want [POST GET POST]", doh.method)
	}
}

func TestTLSUntrusted(t *testing.T) {
	ca := newTestCA(t)
	dot := serveDoT(t, ca, answerWith("$NAME 300 IN A 192.0.2.1"))
	env := newEnv(t, fastConfig(Server{Address: dot.Addr, Protocol: ProtoTLS, ServerName: "dns.test"}), noStale(), Options{RootCAs: x509.NewCertPool()})
	r, res := resolve(t, env.F, newReq("a.example.", dns.TypeA, true, false))
	if r.Rcode != dns.RcodeServerFailure || res.Source != SourceError {
		t.Fatalf("Resolve() via an untrusted server = %s %v, want SERVFAIL error", dns.RcodeToString[r.Rcode], res.Source)
	}
	if !strings.Contains(res.Err.Error(), "certificate") {
		t.Errorf("Resolve() error = %v, want a certificate error", res.Err)
	}
	if dot.Queries() != 0 {
		t.Errorf("untrusted server got %d queries, want 0", dot.Queries())
	}
}

func TestTruncatedRetriesOverTCP(t *testing.T) {
	up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg)
		r.SetReply(q)
		r.Truncated = true
		return r
	})
	up.handleTCP = answerWith("$NAME 300 IN TXT \"big\"", "$NAME 300 IN A 192.0.2.7")
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), noStale(), Options{})
	r, res := resolve(t, env.F, newReq("big.example.", dns.TypeA, true, false))
	if r.Truncated || len(r.Answer) != 2 || res.Source != SourceUpstream {
		t.Errorf("Resolve() = tc=%v %d answers from %v, want the TCP answer's 2 records", r.Truncated, len(r.Answer), res.Source)
	}
	if got := up.tcp.Load(); got != 1 {
		t.Errorf("TCP queries = %d, want 1", got)
	}
}

// countName counts the queries for name, leaving out health probes.
func (s *upstreamServer) countName(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queries {
		if q.Question[0].Name == name {
			n++
		}
	}
	return n
}

func (s *upstreamServer) countNotProbe() int {
	return s.Queries() - s.countName(".")
}

func TestFailover(t *testing.T) {
	blackhole := serveDNS(t, func(*dns.Msg) *dns.Msg { return nil })
	first := serveDNS(t, answerWith("$NAME 60 IN A 192.0.2.1"))
	second := serveDNS(t, answerWith("$NAME 60 IN A 192.0.2.2"))

	t.Run("in order", func(t *testing.T) {
		env := newEnv(t, fastConfig(Server{Address: first.Addr}, Server{Address: second.Addr}), noStale(), Options{})
		for _, name := range []string{"a.example.", "b.example.", "c.example."} {
			r, res := resolve(t, env.F, newReq(name, dns.TypeA, false, false))
			if res.Upstream != first.Addr || !cmp.Equal(aRecords(r), []string{"192.0.2.1"}) {
				t.Errorf("Resolve(%s) = %v from %q, want 192.0.2.1 from %s", name, aRecords(r), res.Upstream, first.Addr)
			}
		}
	})

	t.Run("skips a dead upstream", func(t *testing.T) {
		cfg := fastConfig(Server{Address: blackhole.Addr}, Server{Address: second.Addr})
		cfg.Timeout = config.Duration(100 * time.Millisecond)
		// A long probe interval keeps the blackhole down for the test.
		env := newEnv(t, cfg, noStale(), Options{ProbeInterval: time.Hour})
		for i, name := range []string{"d1.example.", "d2.example.", "d3.example.", "d4.example."} {
			r, res := resolve(t, env.F, newReq(name, dns.TypeA, false, false))
			if res.Upstream != second.Addr || r.Rcode != dns.RcodeSuccess {
				t.Errorf("Resolve(%s) = %s from %q, want NOERROR from %s", name, dns.RcodeToString[r.Rcode], res.Upstream, second.Addr)
			}
			// Two timeouts in a row mark it down; after that it is
			// not asked.
			if got, want := blackhole.countNotProbe(), min(i+1, maxFails); got != want {
				t.Errorf("after query %d the dead upstream got %d queries, want %d", i+1, got, want)
			}
		}
		st := env.F.Status()
		if st.Upstreams[0].Up || !st.Upstreams[1].Up {
			t.Errorf("Status() up = %v, %v, want false, true", st.Upstreams[0].Up, st.Upstreams[1].Up)
		}
		if !strings.Contains(st.Upstreams[0].LastError, "no reply within") {
			t.Errorf("Status() last error = %q, want a timeout", st.Upstreams[0].LastError)
		}
	})
}

func TestRaceReturnsFastest(t *testing.T) {
	slow := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		time.Sleep(600 * time.Millisecond)
		return answerWith("$NAME 60 IN A 192.0.2.1")(q)
	})
	fast := serveDNS(t, answerWith("$NAME 60 IN A 192.0.2.2"))
	cfg := fastConfig(Server{Address: slow.Addr}, Server{Address: fast.Addr})
	cfg.Policy = PolicyRace
	cfg.Timeout = config.Duration(time.Second)
	env := newEnv(t, cfg, noStale(), Options{})
	start := time.Now()
	r, res := resolve(t, env.F, newReq("race.example.", dns.TypeA, false, false))
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Errorf("Resolve() took %s, want the fast upstream's time", took)
	}
	if res.Upstream != fast.Addr || !cmp.Equal(aRecords(r), []string{"192.0.2.2"}) {
		t.Errorf("Resolve() = %v from %q, want 192.0.2.2 from %s", aRecords(r), res.Upstream, fast.Addr)
	}
	if slow.Queries() != 1 {
		t.Errorf("slow upstream got %d queries, want 1 (raced)", slow.Queries())
	}
	// Losing a race is not a failure.
	if st := env.F.Status(); st.Upstreams[0].ConsecutiveFailures != 0 || !st.Upstreams[0].Up {
		t.Errorf("Status() of the loser = %+v, want up without failures", st.Upstreams[0])
	}
}

func TestRoundRobin(t *testing.T) {
	a := serveDNS(t, answerWith("$NAME 60 IN A 192.0.2.1"))
	b := serveDNS(t, answerWith("$NAME 60 IN A 192.0.2.2"))
	cfg := fastConfig(Server{Address: a.Addr}, Server{Address: b.Addr})
	cfg.Policy = PolicyRoundRobin
	env := newEnv(t, cfg, noStale(), Options{})
	for _, n := range []string{"r1.", "r2.", "r3.", "r4."} {
		resolve(t, env.F, newReq(n, dns.TypeA, false, false))
	}
	if a.Queries() != 2 || b.Queries() != 2 {
		t.Errorf("round robin spread = %d, %d, want 2, 2", a.Queries(), b.Queries())
	}
}

func TestTTLDecay(t *testing.T) {
	up := serveDNS(t, answerWith("$NAME 300 IN A 192.0.2.1", "$NAME 200 IN A 192.0.2.2"))
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), noStale(), Options{})
	steps := []struct {
		advance time.Duration
		source  Source
		ttls    []uint32
	}{
		{0, SourceUpstream, []uint32{300, 200}},
		{100*time.Second + 500*time.Millisecond, SourceCache, []uint32{200, 100}},
		{99 * time.Second, SourceCache, []uint32{101, 1}},
		// The entry lives as long as its shortest record.
		{time.Second, SourceUpstream, []uint32{300, 200}},
	}
	for i, s := range steps {
		env.Clock.Advance(s.advance)
		r, res := resolve(t, env.F, newReq("decay.example.", dns.TypeA, false, false))
		if res.Source != s.source || !cmp.Equal(ttls(r.Answer), s.ttls) {
			t.Errorf("step %d: Resolve() = %v TTLs %v, want %v TTLs %v", i, res.Source, ttls(r.Answer), s.source, s.ttls)
		}
	}
}

const soa = "example. %d IN SOA ns.example. host.example. 1 7200 900 1209600 %d"

func TestNegativeCaching(t *testing.T) {
	up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg)
		r.SetReply(q)
		switch q.Question[0].Name {
		case "nx.example.":
			r.Rcode = dns.RcodeNameError
			r.Ns = []dns.RR{mustRR("example. 3600 IN SOA ns.example. host.example. 1 7200 900 1209600 60")}
		case "nodata.example.":
			r.Ns = []dns.RR{mustRR("example. 30 IN SOA ns.example. host.example. 1 7200 900 1209600 300")}
		case "capped.example.":
			r.Rcode = dns.RcodeNameError
			r.Ns = []dns.RR{mustRR("example. 86400 IN SOA ns.example. host.example. 1 7200 900 1209600 86400")}
		case "nosoa.example.":
			r.Rcode = dns.RcodeNameError
		}
		return r
	})
	ccfg := noStale()
	ccfg.NegativeTTL = config.Duration(20 * time.Minute)
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), ccfg, Options{})
	tests := []struct {
		name  string
		rcode int
		// ttl is the negative TTL: min(SOA TTL, SOA minimum, negative_ttl);
		// 0 means not cached.
		ttl uint32
	}{
		{"nx.example.", dns.RcodeNameError, 60},
		{"nodata.example.", dns.RcodeSuccess, 30},
		{"capped.example.", dns.RcodeNameError, 1200},
		{"nosoa.example.", dns.RcodeNameError, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, res := resolve(t, env.F, newReq(tc.name, dns.TypeA, false, false))
			if r.Rcode != tc.rcode || res.Source != SourceUpstream {
				t.Fatalf("Resolve() = %s from %v, want %s from upstream", dns.RcodeToString[r.Rcode], res.Source, dns.RcodeToString[tc.rcode])
			}
			if tc.ttl > 0 && !cmp.Equal(ttls(r.Ns), []uint32{tc.ttl}) {
				t.Errorf("Resolve() SOA TTL = %v, want [%d]", ttls(r.Ns), tc.ttl)
			}
			env.Clock.Advance(time.Second)
			r, res = resolve(t, env.F, newReq(tc.name, dns.TypeA, false, false))
			if tc.ttl == 0 {
				if res.Source != SourceUpstream {
					t.Errorf("Resolve() again = %v, want upstream (RFC 2308 §5: no SOA, no caching)", res.Source)
				}
				return
			}
			if res.Source != SourceCache || r.Rcode != tc.rcode || !cmp.Equal(ttls(r.Ns), []uint32{tc.ttl - 1}) {
				t.Errorf("Resolve() again = %s from %v SOA TTL %v, want %s from cache with [%d]", dns.RcodeToString[r.Rcode], res.Source, ttls(r.Ns), dns.RcodeToString[tc.rcode], tc.ttl-1)
			}
			// Another type of the same name is another question.
			if _, res := resolve(t, env.F, newReq(tc.name, dns.TypeAAAA, false, false)); res.Source != SourceUpstream {
				t.Errorf("Resolve(AAAA) = %v, want upstream", res.Source)
			}
			env.Clock.Advance(time.Duration(tc.ttl) * time.Second)
			if _, res := resolve(t, env.F, newReq(tc.name, dns.TypeA, false, false)); res.Source != SourceUpstream {
				t.Errorf("Resolve() after the negative TTL = %v, want upstream", res.Source)
			}
		})
	}
}

func TestTTLClamp(t *testing.T) {
	up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		switch q.Question[0].Name {
		case "short.example.":
			return answerWith("$NAME 5 IN A 192.0.2.1")(q)
		default:
			return answerWith("$NAME 100000 IN A 192.0.2.1")(q)
		}
	})
	ccfg := noStale()
	ccfg.MinTTL = config.Duration(time.Minute)
	ccfg.MaxTTL = config.Duration(2 * time.Minute)
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), ccfg, Options{})
	for _, tc := range []struct {
		name string
		want uint32
	}{{"short.example.", 60}, {"long.example.", 120}} {
		r, _ := resolve(t, env.F, newReq(tc.name, dns.TypeA, false, false))
		if got := ttls(r.Answer); !cmp.Equal(got, []uint32{tc.want}) {
			t.Errorf("Resolve(%s) TTLs = %v, want [%d]", tc.name, got, tc.want)
		}
	}
	env.Clock.Advance(59 * time.Second)
	if _, res := resolve(t, env.F, newReq("short.example.", dns.TypeA, false, false)); res.Source != SourceCache {
		t.Errorf("Resolve(short) at 59s = %v, want cache (min_ttl 60s)", res.Source)
	}
	env.Clock.Advance(62 * time.Second)
	if _, res := resolve(t, env.F, newReq("long.example.", dns.TypeA, false, false)); res.Source != SourceUpstream {
		t.Errorf("Resolve(long) at 121s = %v, want upstream (max_ttl 120s)", res.Source)
	}
}

func TestCacheKey(t *testing.T) {
	up := serveDNS(t, answerWith("$NAME 300 IN A 192.0.2.1"))
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), noStale(), Options{})
	cd := newReq("key.example.", dns.TypeA, true, false)
	cd.CheckingDisabled = true
	steps := []struct {
		name string
		req  *dns.Msg
		// queries is the upstream's count after the step.
		queries int
		do, cd  bool
	}{
		{"first", newReq("key.example.", dns.TypeA, false, false), 1, false, false},
		{"other case", newReq("KEY.Example.", dns.TypeA, false, false), 1, false, false},
		{"EDNS without DO", newReq("key.example.", dns.TypeA, true, false), 1, false, false},
		{"DO", newReq("key.example.", dns.TypeA, true, true), 2, true, false},
		{"DO again", newReq("Key.Example.", dns.TypeA, true, true), 2, true, false},
		{"CD", cd, 3, false, true},
		{"class CH", func() *dns.Msg {
			m := newReq("key.example.", dns.TypeA, false, false)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}(), 4, false, false},
	}
	for _, s := range steps {
		resolve(t, env.F, s.req)
		if got := up.Queries(); got != s.queries {
			t.Errorf("%s: upstream queries = %d, want %d", s.name, got, s.queries)
		}
		last := up.Last()
		if o := last.IsEdns0(); o == nil || o.Do() != s.do || last.CheckingDisabled != s.cd {
			t.Errorf("%s: upstream query OPT %v CD %v, want DO %v CD %v", s.name, o, last.CheckingDisabled, s.do, s.cd)
		}
	}
}

func TestECSStripped(t *testing.T) {
	up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		r := answerWith("$NAME 300 IN A 192.0.2.1")(q)
		o := new(dns.OPT)
		o.Hdr.Name, o.Hdr.Rrtype = ".", dns.TypeOPT
		o.SetUDPSize(4096)
		o.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, SourceScope: 24, Address: net.IPv4(198, 51, 100, 0)}}
		r.Extra = append(r.Extra, o)
		return r
	})
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), noStale(), Options{})
	for i := range 2 {
		req := newReq("ecs.example.", dns.TypeA, true, false)
		o := req.IsEdns0()
		o.Option = append(o.Option,
			&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 168, 1, 0)},
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		r, _ := resolve(t, env.F, req)
		ro := r.IsEdns0()
		if ro == nil || len(ro.Option) != 0 {
			t.Errorf("reply %d OPT = %v, want one without options", i, ro)
		}
		if ro != nil && ro.UDPSize() != ednsSize {
			t.Errorf("reply %d UDP size = %d, want %d", i, ro.UDPSize(), ednsSize)
		}
	}
	if up.Queries() != 1 {
		t.Fatalf("upstream queries = %d, want 1", up.Queries())
	}
	if o := up.Last().IsEdns0(); o == nil || len(o.Option) != 0 || o.UDPSize() != ednsSize {
		t.Errorf("upstream query OPT = %v, want UDP size %d and no options", o, ednsSize)
	}
}

func TestPaddingOnEncrypted(t *testing.T) {
	ca := newTestCA(t)
	dot := serveDoT(t, ca, answerWith("$NAME 300 IN A 192.0.2.1"))
	env := newEnv(t, fastConfig(Server{Address: dot.Addr, Protocol: ProtoTLS}), noStale(), Options{RootCAs: ca.Pool})
	resolve(t, env.F, newReq("pad.example.", dns.TypeA, true, false))
	q := dot.Last()
	packed, _ := q.Pack()
	if len(packed)%128 != 0 {
		t.Errorf("DoT query is %d bytes, want a multiple of 128 (RFC 8467)", len(packed))
	}
}

func TestReplyFlags(t *testing.T) {
	up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		r := answerWith("$NAME 300 IN A 192.0.2.1")(q)
		r.AuthenticatedData = true
		return r
	})
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), noStale(), Options{})
	tests := []struct {
		name                 string
		rd, cd, ad, edns, do bool
		wantAD               bool
	}{
		{"plain", true, false, false, false, false, false},
		{"AD asked", true, false, true, false, false, true},
		{"DO", true, false, false, true, true, true},
		{"EDNS without DO", true, false, false, true, false, false},
		{"CD", true, true, false, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newReq("flags.example.", dns.TypeA, tc.edns, tc.do)
			req.RecursionDesired, req.CheckingDisabled, req.AuthenticatedData = tc.rd, tc.cd, tc.ad
			for range 2 { // from the upstream, then from the cache
				r, _ := resolve(t, env.F, req)
				if r.RecursionDesired != tc.rd || r.CheckingDisabled != tc.cd || !r.RecursionAvailable || r.Authoritative || r.AuthenticatedData != tc.wantAD {
					t.Errorf("reply flags rd=%v cd=%v ra=%v aa=%v ad=%v, want rd=%v cd=%v ra=true aa=false ad=%v",
						r.RecursionDesired, r.CheckingDisabled, r.RecursionAvailable, r.Authoritative, r.AuthenticatedData, tc.rd, tc.cd, tc.wantAD)
				}
				o := r.IsEdns0()
				if (o != nil) != tc.edns || (o != nil && o.Do() != tc.do) {
					t.Errorf("reply OPT = %v, want present=%v do=%v", o, tc.edns, tc.do)
				}
			}
		})
	}
}

func TestNonRecursive(t *testing.T) {
	up := serveDNS(t, answerWith("$NAME 300 IN A 192.0.2.1"))
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), noStale(), Options{})
	req := newReq("nord.example.", dns.TypeA, false, false)
	req.RecursionDesired = false
	for i := range 2 {
		r, res := resolve(t, env.F, req)
		if res.Source != SourceUpstream || r.RecursionDesired {
			t.Errorf("RD=0 query %d = %v rd=%v, want upstream (not cached) rd=false", i, res.Source, r.RecursionDesired)
		}
		if up.Last().RecursionDesired {
			t.Errorf("RD=0 query %d went upstream with RD", i)
		}
	}
	// A cached answer serves non-recursive queries too.
	resolve(t, env.F, newReq("nord.example.", dns.TypeA, false, false))
	if _, res := resolve(t, env.F, req); res.Source != SourceCache {
		t.Errorf("RD=0 query after a recursive one = %v, want cache", res.Source)
	}
}

func TestRejects(t *testing.T) {
	up := serveDNS(t, answerWith("$NAME 300 IN A 192.0.2.1"))
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), noStale(), Options{})
	tests := []struct {
		name  string
		req   func() *dns.Msg
		rcode int
	}{
		{"two questions", func() *dns.Msg {
			m := newReq("a.example.", dns.TypeA, false, false)
			m.Question = append(m.Question, dns.Question{Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
			return m
		}, dns.RcodeFormatError},
		{"notify", func() *dns.Msg {
			m := newReq("a.example.", dns.TypeSOA, false, false)
			m.Opcode = dns.OpcodeNotify
			return m
		}, dns.RcodeNotImplemented},
		{"axfr", func() *dns.Msg { return newReq("example.", dns.TypeAXFR, true, false) }, dns.RcodeNotImplemented},
		{"edns version 1", func() *dns.Msg {
			m := newReq("a.example.", dns.TypeA, true, false)
			m.IsEdns0().SetVersion(1)
			return m
		}, dns.RcodeBadVers},
		{"a response", func() *dns.Msg {
			m := newReq("a.example.", dns.TypeA, false, false)
			m.Response = true
			return m
		}, dns.RcodeFormatError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req()
			r, res := env.F.Resolve(context.Background(), req)
			if r.Id != req.Id || r.Rcode != tc.rcode || res.Source != SourceRejected {
				t.Errorf("Resolve() = id %d %s %v, want id %d %s rejected", r.Id, dns.RcodeToString[r.Rcode], res.Source, req.Id, dns.RcodeToString[tc.rcode])
			}
			// The rcode must survive packing (BADVERS needs the OPT).
			b, err := r.Pack()
			if err != nil {
				t.Fatalf("Pack(reply) error: %v", err)
			}
			var back dns.Msg
			if err := back.Unpack(b); err != nil || back.Rcode != tc.rcode {
				t.Errorf("reply after packing = %s (%v), want %s", dns.RcodeToString[back.Rcode], err, dns.RcodeToString[tc.rcode])
			}
		})
	}
	if up.Queries() != 0 {
		t.Errorf("upstream got %d queries, want 0", up.Queries())
	}
	if r, res := env.F.Resolve(context.Background(), nil); r == nil || res.Source != SourceRejected {
		t.Errorf("Resolve(nil) = %v, %v, want a FORMERR reply", r, res)
	}
}

func TestCoalesce(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	// Even when the test fails early, the upstream must not block forever.
	defer open()
	up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		<-release
		return answerWith("$NAME 300 IN A 192.0.2.1")(q)
	})
	cfg := fastConfig(Server{Address: up.Addr})
	cfg.Timeout = config.Duration(5 * time.Second)
	env := newEnv(t, cfg, noStale(), Options{})
	const n = 20
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := newReq("popular.example.", dns.TypeA, i%2 == 0, false)
			r, res := env.F.Resolve(context.Background(), req)
			if r.Id != req.Id || len(r.Answer) != 1 {
				t.Errorf("client %d: reply id %d with %d answers, want id %d with 1", i, r.Id, len(r.Answer), req.Id)
			}
			results[i] = res
		}()
	}
	eventually(t, "every client to wait", func() bool { return env.Cache.Stats().Coalesced == n-1 })
	open()
	wg.Wait()
	if got := up.Queries(); got != 1 {
		t.Errorf("upstream queries = %d, want 1 for %d identical questions", got, n)
	}
	coalesced := 0
	for _, r := range results {
		if r.Coalesced {
			coalesced++
		}
		if r.Source != SourceUpstream {
			t.Errorf("result = %+v, want upstream", r)
		}
	}
	if coalesced != n-1 {
		t.Errorf("coalesced results = %d, want %d", coalesced, n-1)
	}
}

func TestPrefetch(t *testing.T) {
	var ip atomic.Value
	ip.Store("192.0.2.1")
	up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		return answerWith("$NAME 100 IN A " + ip.Load().(string))(q)
	})
	ccfg := noStale()
	ccfg.Prefetch = Prefetch{Hits: 2, Before: 0.1}
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), ccfg, Options{})
	ask := func() (*dns.Msg, Result) { return resolve(t, env.F, newReq("pre.example.", dns.TypeA, false, false)) }

	ask()
	env.Clock.Advance(50 * time.Second)
	ask()
	ask()
	if got := env.Cache.Stats().Prefetches; got != 0 {
		t.Fatalf("prefetches at 50%% of the TTL = %d, want 0", got)
	}
	ip.Store("192.0.2.2")
	env.Clock.Advance(45 * time.Second)
	r, res := ask()
	if res.Source != SourceCache || !cmp.Equal(aRecords(r), []string{"192.0.2.1"}) {
		t.Errorf("hit in the last 10%% = %v %v, want the cached 192.0.2.1", res.Source, aRecords(r))
	}
	if got := env.Cache.Stats().Prefetches; got != 1 {
		t.Errorf("prefetches = %d, want 1", got)
	}
	eventually(t, "the prefetch", func() bool { return up.Queries() == 2 })
	eventually(t, "the refreshed entry", func() bool {
		r, res := ask()
		return res.Source == SourceCache && cmp.Equal(aRecords(r), []string{"192.0.2.2"}) && cmp.Equal(ttls(r.Answer), []uint32{100})
	})
	ask()
	if got := env.Cache.Stats().Prefetches; got != 1 {
		t.Errorf("prefetches after more hits = %d, want 1 (once per entry)", got)
	}
	if got := up.Queries(); got != 2 {
		t.Errorf("upstream queries = %d, want 2", got)
	}
}

func TestServeStale(t *testing.T) {
	staleCfg := func() CacheConfig {
		c := DefaultCacheConfig()
		c.Prefetch.Hits = 0
		c.ServeStale = ServeStale{Enabled: true, MaxStale: config.Duration(time.Hour), AnswerTTL: config.Duration(30 * time.Second), ClientTimeout: config.Duration(50 * time.Millisecond)}
		return c
	}

	t.Run("upstreams down", func(t *testing.T) {
		var down atomic.Bool
		up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
			if down.Load() {
				r := new(dns.Msg)
				r.SetRcode(q, dns.RcodeServerFailure)
				return r
			}
			return answerWith("$NAME 10 IN A 192.0.2.1")(q)
		})
		env := newEnv(t, fastConfig(Server{Address: up.Addr}), staleCfg(), Options{ProbeInterval: time.Hour})
		resolve(t, env.F, newReq("stale.example.", dns.TypeA, true, false))
		down.Store(true)
		env.Clock.Advance(20 * time.Second)
		r, res := resolve(t, env.F, newReq("stale.example.", dns.TypeA, true, false))
		if res.Source != SourceStale || res.Err == nil || !cmp.Equal(aRecords(r), []string{"192.0.2.1"}) || !cmp.Equal(ttls(r.Answer), []uint32{30}) {
			t.Errorf("Resolve() with the upstream down = %v (err %v) %v TTLs %v, want stale 192.0.2.1 with TTL 30", res.Source, res.Err, aRecords(r), ttls(r.Answer))
		}
		if got := edeCodes(r); !cmp.Equal(got, []uint16{dns.ExtendedErrorCodeStaleAnswer}) {
			t.Errorf("stale reply EDE = %v, want [3] (Stale Answer)", got)
		}
		// Within the failure recheck time, stale answers come at once.
		asked := up.Queries()
		if _, res := resolve(t, env.F, newReq("stale.example.", dns.TypeA, true, false)); res.Source != SourceStale {
			t.Errorf("Resolve() again = %v, want stale", res.Source)
		}
		if up.Queries() != asked {
			t.Errorf("upstream asked again within %s of a failure", staleRecheck)
		}
		if got := env.Cache.Stats().Stale; got != 2 {
			t.Errorf("stale count = %d, want 2", got)
		}
		// Past max_stale the entry is gone.
		env.Clock.Advance(2 * time.Hour)
		r, res = resolve(t, env.F, newReq("stale.example.", dns.TypeA, true, false))
		if res.Source != SourceError || r.Rcode != dns.RcodeServerFailure {
			t.Errorf("Resolve() past max_stale = %v %s, want error SERVFAIL", res.Source, dns.RcodeToString[r.Rcode])
		}
	})

	t.Run("slow upstream", func(t *testing.T) {
		var slow atomic.Bool
		up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
			if slow.Load() {
				time.Sleep(600 * time.Millisecond)
				return answerWith("$NAME 10 IN A 192.0.2.2")(q)
			}
			return answerWith("$NAME 10 IN A 192.0.2.1")(q)
		})
		cfg := fastConfig(Server{Address: up.Addr})
		cfg.Timeout = config.Duration(2 * time.Second)
		env := newEnv(t, cfg, staleCfg(), Options{})
		resolve(t, env.F, newReq("slow.example.", dns.TypeA, false, false))
		slow.Store(true)
		env.Clock.Advance(20 * time.Second)
		start := time.Now()
		r, res := resolve(t, env.F, newReq("slow.example.", dns.TypeA, false, false))
		if took := time.Since(start); res.Source != SourceStale || took > 400*time.Millisecond || !cmp.Equal(aRecords(r), []string{"192.0.2.1"}) {
			t.Errorf("Resolve() = %v %v after %s, want stale 192.0.2.1 after client_timeout (50ms)", res.Source, aRecords(r), took)
		}
		// The refresh went on and lands in the cache.
		eventually(t, "the refresh", func() bool {
			r, res := resolve(t, env.F, newReq("slow.example.", dns.TypeA, false, false))
			return res.Source == SourceCache && cmp.Equal(aRecords(r), []string{"192.0.2.2"})
		})
		if up.Queries() != 2 {
			t.Errorf("upstream queries = %d, want 2", up.Queries())
		}
	})

	t.Run("disabled", func(t *testing.T) {
		up := serveDNS(t, answerWith("$NAME 10 IN A 192.0.2.1"))
		c := staleCfg()
		c.ServeStale.Enabled = false
		env := newEnv(t, fastConfig(Server{Address: up.Addr}, Server{Address: deadAddr(t)}), c, Options{})
		resolve(t, env.F, newReq("x.example.", dns.TypeA, false, false))
		env.Clock.Advance(11 * time.Second)
		if _, res := resolve(t, env.F, newReq("x.example.", dns.TypeA, false, false)); res.Source != SourceUpstream {
			t.Errorf("Resolve() of an expired entry = %v, want upstream", res.Source)
		}
	})
}

func TestServfail(t *testing.T) {
	t.Run("nothing reachable", func(t *testing.T) {
		env := newEnv(t, fastConfig(Server{Address: deadAddr(t)}, Server{Address: deadAddr(t)}), DefaultCacheConfig(), Options{})
		r, res := resolve(t, env.F, newReq("down.example.", dns.TypeA, true, false))
		if r.Rcode != dns.RcodeServerFailure || res.Source != SourceError || res.Err == nil {
			t.Fatalf("Resolve() = %s %v (%v), want SERVFAIL error", dns.RcodeToString[r.Rcode], res.Source, res.Err)
		}
		var ue *UpstreamError
		if !errors.As(res.Err, &ue) || len(ue.Attempts) != 2 {
			t.Errorf("Resolve() error = %#v, want an *UpstreamError with 2 attempts", res.Err)
		}
		if got := edeCodes(r); !cmp.Equal(got, []uint16{dns.ExtendedErrorCodeNoReachableAuthority}) {
			t.Errorf("EDE = %v, want [22] (No Reachable Authority)", got)
		}
		r, _ = resolve(t, env.F, newReq("down2.example.", dns.TypeA, false, false))
		if r.IsEdns0() != nil {
			t.Errorf("reply to a client without EDNS has an OPT: %v", r.IsEdns0())
		}
	})

	t.Run("upstream SERVFAIL with EDE, cached", func(t *testing.T) {
		up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
			r := new(dns.Msg)
			r.SetRcode(q, dns.RcodeServerFailure)
			r.SetEdns0(1232, false)
			r.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "signature expired"}}
			return r
		})
		env := newEnv(t, fastConfig(Server{Address: up.Addr}), DefaultCacheConfig(), Options{})
		r, res := resolve(t, env.F, newReq("bogus.example.", dns.TypeA, true, false))
		if r.Rcode != dns.RcodeServerFailure || res.Source != SourceError || !cmp.Equal(edeCodes(r), []uint16{dns.ExtendedErrorCodeDNSBogus}) {
			t.Errorf("Resolve() = %s %v EDE %v, want SERVFAIL error with EDE [6]", dns.RcodeToString[r.Rcode], res.Source, edeCodes(r))
		}
		r, res = resolve(t, env.F, newReq("bogus.example.", dns.TypeA, true, false))
		if r.Rcode != dns.RcodeServerFailure || res.Source != SourceCache || !cmp.Equal(edeCodes(r), []uint16{dns.ExtendedErrorCodeCachedError, dns.ExtendedErrorCodeDNSBogus}) {
			t.Errorf("Resolve() again = %s %v EDE %v, want SERVFAIL from cache with EDE [13 6]", dns.RcodeToString[r.Rcode], res.Source, edeCodes(r))
		}
		if up.countNotProbe() != 1 {
			t.Errorf("upstream queries = %d, want 1", up.countNotProbe())
		}
		env.Clock.Advance(6 * time.Second) // failure_ttl is 5s
		if _, res := resolve(t, env.F, newReq("bogus.example.", dns.TypeA, true, false)); res.Source != SourceError {
			t.Errorf("Resolve() after failure_ttl = %v, want error (asked again)", res.Source)
		}
	})

	t.Run("client gives up", func(t *testing.T) {
		up := serveDNS(t, func(*dns.Msg) *dns.Msg { return nil })
		env := newEnv(t, fastConfig(Server{Address: up.Addr}), DefaultCacheConfig(), Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req := newReq("gone.example.", dns.TypeA, true, false)
		r, res := env.F.Resolve(ctx, req)
		if r.Id != req.Id || r.Rcode != dns.RcodeServerFailure || !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Errorf("Resolve(expired ctx) = %s, %v, want SERVFAIL with the context's error", dns.RcodeToString[r.Rcode], res.Err)
		}
	})
}

func TestUpstreamRecovers(t *testing.T) {
	var down atomic.Bool
	up := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg)
		if down.Load() {
			r.SetRcode(q, dns.RcodeRefused)
			return r
		}
		return answerWith("$NAME 60 IN A 192.0.2.1")(q)
	})
	reg := prometheus.NewRegistry()
	env := newEnv(t, fastConfig(Server{Address: up.Addr}), DefaultCacheConfig(), Options{Metrics: reg, ProbeInterval: 20 * time.Millisecond})
	upGauge := func() float64 {
		return metricValue(t, env.F.m.upUp.WithLabelValues(up.Addr))
	}
	down.Store(true)
	for i, name := range []string{"f1.example.", "f2.example.", "f3.example."} {
		r, _ := resolve(t, env.F, newReq(name, dns.TypeA, false, false))
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("query %d = %s, want SERVFAIL", i, dns.RcodeToString[r.Rcode])
		}
	}
	// Down, but the only upstream: still asked.
	if got := up.countNotProbe(); got != 3 {
		t.Errorf("queries to the only (down) upstream = %d, want 3", got)
	}
	if st := env.F.Status().Upstreams[0]; st.Up || upGauge() != 0 {
		t.Errorf("Status() = up %v, gauge %v, want down and 0", st.Up, upGauge())
	}
	// A Forwarder prepared for a reload leaves the gauge to the one
	// answering until it is published, and closing it unpublished
	// leaves the gauge alone too.
	f2, err := New(fastConfig(Server{Address: up.Addr}), env.Cache, Options{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	if upGauge() != 0 {
		t.Errorf("up gauge with a second Forwarder prepared = %v, want 0 (the first one's)", upGauge())
	}
	f2.Close()
	if upGauge() != 0 {
		t.Errorf("up gauge after the second Forwarder was abandoned = %v, want 0", upGauge())
	}
	f3, err := New(fastConfig(Server{Address: up.Addr}), env.Cache, Options{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	f3.Publish()
	if upGauge() != 1 {
		t.Errorf("up gauge once a new Forwarder is published = %v, want 1 (it starts up)", upGauge())
	}
	f3.Close()
	env.F.Publish()
	down.Store(false)
	eventually(t, "a probe to find the upstream up", func() bool { return env.F.Status().Upstreams[0].Up })
	if upGauge() != 1 {
		t.Errorf("up gauge = %v, want 1", upGauge())
	}
	if up.countName(".") == 0 {
		t.Errorf("no probe query (. NS) reached the upstream")
	}
}

func TestDoTConnections(t *testing.T) {
	ca := newTestCA(t)
	dot := serveDoT(t, ca, answerWith("$NAME 300 IN A 192.0.2.1"))
	env := newEnv(t, fastConfig(Server{Address: dot.Addr, Protocol: ProtoTLS, ServerName: "dns.test"}), noStale(), Options{RootCAs: ca.Pool})

	// Many questions at once share one pipelined connection.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := newReq(dns.Fqdn(strings.Repeat("p", i+1)+".example"), dns.TypeA, false, false)
			r, res := env.F.Resolve(context.Background(), req)
			if r.Rcode != dns.RcodeSuccess || res.Source != SourceUpstream {
				t.Errorf("query %d = %s %v (%v), want NOERROR from upstream", i, dns.RcodeToString[r.Rcode], res.Source, res.Err)
			}
		}()
	}
	wg.Wait()
	dot.mu.Lock()
	conns := len(dot.conns)
	dot.mu.Unlock()
	if conns != 1 {
		t.Errorf("DoT connections = %d, want 1", conns)
	}

	// The server drops the connection; the next query reconnects.
	dot.DropConns()
	r, res := resolve(t, env.F, newReq("after-drop.example.", dns.TypeA, false, false))
	if r.Rcode != dns.RcodeSuccess || res.Source != SourceUpstream {
		t.Errorf("query after the server closed the connection = %s %v (%v), want NOERROR", dns.RcodeToString[r.Rcode], res.Source, res.Err)
	}
	if st := env.F.Status().Upstreams[0]; st.ConsecutiveFailures != 0 {
		t.Errorf("Status() failures = %d, want 0 (a reconnect is not a failure)", st.ConsecutiveFailures)
	}
}

func TestCloseStopsBackgroundWork(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := serveDNS(t, func(q *dns.Msg) *dns.Msg {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return nil
	})
	cfg := fastConfig(Server{Address: slow.Addr}, Server{Address: deadAddr(t)})
	cfg.Timeout = config.Duration(5 * time.Second)
	clock := newFakeClock()
	cache := NewCache(DefaultCacheConfig(), CacheOptions{Now: clock.Now})
	f, err := New(cfg, cache, Options{ProbeInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// A query in flight to an upstream that takes its time.
	done := make(chan Result)
	go func() {
		_, res := f.Resolve(context.Background(), newReq("inflight.example.", dns.TypeA, true, false))
		done <- res
	}()
	eventually(t, "the query to reach the upstream", func() bool { return slow.Queries() == 1 })

	start := time.Now()
	f.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close() took %s with a query in flight, want it to cancel the query", took)
	}
	if res := <-done; res.Source != SourceError {
		t.Errorf("in-flight query after Close() = %v, want error", res.Source)
	}
	req := newReq("late.example.", dns.TypeA, true, false)
	r, res := f.Resolve(context.Background(), req)
	if r.Rcode != dns.RcodeServerFailure || !errors.Is(res.Err, ErrClosed) || !cmp.Equal(edeCodes(r), []uint16{dns.ExtendedErrorCodeNotReady}) {
		t.Errorf("Resolve() after Close() = %s %v EDE %v, want SERVFAIL ErrClosed EDE [14]", dns.RcodeToString[r.Rcode], res.Err, edeCodes(r))
	}
	eventually(t, "the forwarder's goroutines to end", func() bool { return forwarderGoroutines() == "" })
	f.Close() // twice is fine
}

// forwarderGoroutines returns the stacks of the goroutines that a
// Forwarder and its connections started.
func forwarderGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "created by github.com/homeedge/edge/dns/forward.(*Forwarder)") || strings.Contains(g, "created by github.com/homeedge/edge/dns/forward.newStreamConn") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func TestCloseStopsProbes(t *testing.T) {
	env := newEnv(t, fastConfig(Server{Address: deadAddr(t)}), DefaultCacheConfig(), Options{ProbeInterval: time.Hour})
	for _, n := range []string{"p1.example.", "p2.example."} {
		resolve(t, env.F, newReq(n, dns.TypeA, false, false))
	}
	eventually(t, "a prober for the down upstream", func() bool { return forwarderGoroutines() != "" })
	start := time.Now()
	env.F.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close() took %s, want the prober to stop at once", took)
	}
	if g := forwarderGoroutines(); g != "" {
		t.Errorf("goroutines left after Close():\n%s", g)
	}
}

func TestMetricsAndReload(t *testing.T) {
	up := serveDNS(t, answerWith("$NAME 300 IN A 192.0.2.1"))
	other := serveDNS(t, answerWith("$NAME 300 IN A 192.0.2.2"))
	reg := prometheus.NewRegistry()
	opts := Options{Metrics: reg, Namespace: "edge_dns"}
	cache := NewCache(DefaultCacheConfig(), CacheOptions{Metrics: reg, Namespace: "edge_dns"})
	f1, err := New(fastConfig(Server{Address: up.Addr}), cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	resolve(t, f1, newReq("m.example.", dns.TypeA, false, false))
	resolve(t, f1, newReq("m.example.", dns.TypeA, false, false))

	// A reload: a new Forwarder over the same cache and registry.
	f2, err := New(fastConfig(Server{Address: up.Addr}, Server{Address: other.Addr}), cache, opts)
	if err != nil {
		t.Fatalf("New() on a registry in use error: %v", err)
	}
	if _, res := resolve(t, f2, newReq("m.example.", dns.TypeA, false, false)); res.Source != SourceCache {
		t.Errorf("Resolve() after the reload = %v, want cache (the cache survives)", res.Source)
	}
	f1.Close()
	want := map[string]int{
		"edge_dns_cache_hits_total":                1,
		"edge_dns_cache_misses_total":              1,
		"edge_dns_cache_entries":                   1,
		"edge_dns_upstream_queries_total":          1,
		"edge_dns_upstream_up":                     2, // both upstreams of f2
		"edge_dns_upstream_query_duration_seconds": 2,
		"edge_dns_cache_stale_answers_total":       1,
		"edge_dns_forward_coalesced_queries_total": 1,
		"edge_dns_forward_failures_total":          1,
		"edge_dns_cache_prefetches_total":          1,
		"edge_dns_cache_evictions_total":           1,
	}
	mfs := gather(t, reg)
	for name, n := range want {
		if got := len(mfs[name].GetMetric()); got != n {
			t.Errorf("gathered %d series of %s, want %d", got, name, n)
		}
	}
	if got := metricValue(t, f2.m.hits); got != 2 {
		t.Errorf("cache hits = %v, want 2", got)
	}
	var list []*dto.MetricFamily
	for _, mf := range mfs {
		list = append(list, mf)
	}
	if problems, err := promlint.NewWithMetricFamilies(list).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("promlint = %v, %v, want no problems", problems, err)
	}
	f2.Close()
	if got := len(gather(t, reg)["edge_dns_upstream_up"].GetMetric()); got != 0 {
		t.Errorf("upstream_up series after every Forwarder closed = %d, want 0", got)
	}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	list, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error: %v", err)
	}
	out := make(map[string]*dto.MetricFamily)
	for _, mf := range list {
		out[mf.GetName()] = mf
	}
	return out
}

// metricValue reads a counter's or gauge's value.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func TestStatus(t *testing.T) {
	ca := newTestCA(t)
	up := serveDNS(t, answerWith("$NAME 300 IN A 192.0.2.1"))
	doh := serveDoH(t, ca, answerWith("$NAME 300 IN A 192.0.2.1"))
	cfg := fastConfig(Server{Address: up.Addr}, Server{URL: doh.URL})
	env := newEnv(t, cfg, DefaultCacheConfig(), Options{RootCAs: ca.Pool})
	resolve(t, env.F, newReq("s.example.", dns.TypeA, false, false))
	resolve(t, env.F, newReq("s.example.", dns.TypeA, false, false))
	st := env.F.Status()
	if st.Upstreams[0].LatencyMS <= 0 || st.Upstreams[0].Queries != 1 {
		t.Errorf("Status() upstream 0 = %+v, want a latency and 1 query", st.Upstreams[0])
	}
	st.Upstreams[0].LatencyMS = 0
	want := ctlapi.DNSResolver{
		Policy: string(PolicyFailover),
		Upstreams: []ctlapi.DNSUpstream{
			{Name: up.Addr, Protocol: string(ProtoDNS), Address: up.Addr, Up: true, Queries: 1},
			{Name: doh.URL, Protocol: string(ProtoHTTPS), Address: doh.Addr, ServerName: "127.0.0.1", URL: doh.URL, Up: true},
		},
		Cache: ctlapi.DNSCacheStats{Entries: 1, Size: 10000, Hits: 1, Misses: 1},
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("Status() mismatch (-want +got):\n%s", diff)
	}
}
