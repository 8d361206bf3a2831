package dns

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// upstream is a resolver on loopback that answers *.other.org.
type upstream struct {
	srv     *mdns.Server
	addr    string
	queries atomic.Int64
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: pc.LocalAddr().String()}
	u.srv = &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		u.queries.Add(1)
		m := new(mdns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		switch {
		case strings.HasSuffix(q.Name, "other.org.") && q.Qtype == mdns.TypeA:
			m.Answer = []mdns.RR{rr(q.Name + " 1 IN A 203.0.113.7")}
		default:
			m.Rcode = mdns.RcodeNameError
			m.Ns = []mdns.RR{rr("org. 60 IN SOA a.org. b.org. 1 2 3 4 60")}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	u.srv.NotifyStartedFunc = func() { close(started) }
	go u.srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { u.srv.Shutdown() })
	return u
}

func TestResolver(t *testing.T) {
	up := startUpstream(t)
	section := fmt.Sprintf(`  inside: [loop]
  upstreams: {servers: [{address: "%s"}], timeout: 300ms}
  cache: {serve_stale: {enabled: true, client_timeout: 200ms}}
`, up.addr) + zones + `        - {name: ext, type: CNAME, value: www.other.org.}
`
	// ext lives in home.arpa (the last zone of zones).
	ts := startServer(t, section)
	r := ts.query("www.other.org.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = true })
	if answers(r) != "203.0.113.7" || !r.RecursionAvailable || r.Authoritative {
		t.Fatalf("resolved = %v", r)
	}
	// Cached: the upstream is not asked again.
	before := up.queries.Load()
	ts.query("www.other.org.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = true })
	if up.queries.Load() != before {
		t.Errorf("second question went upstream")
	}
	// Without RD, a foreign name is refused even inside.
	if r := ts.query("mail.other.org.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = false }); r.Rcode != mdns.RcodeRefused {
		t.Errorf("no RD = %s, want REFUSED", mdns.RcodeToString[r.Rcode])
	}
	// A CNAME leaving our zones is finished for inside clients.
	r = ts.query("ext.home.arpa.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = true })
	if got := answers(r); got != "www.other.org. 203.0.113.7" {
		t.Errorf("chain = %q, want the CNAME and the upstream's address", got)
	}
	// The upstream dies and the 1s TTL runs out: the name is answered
	// stale (RFC 8767), with the stale answer TTL.
	up.srv.Shutdown()
	time.Sleep(1500 * time.Millisecond)
	r = ts.query("www.other.org.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = true })
	if answers(r) != "203.0.113.7" || r.Answer[0].Header().Ttl != 30 {
		t.Errorf("expired with the upstream down = %v, want the stale answer with TTL 30", r)
	}
	// An unknown name with the upstream down: SERVFAIL, not a hang.
	start := time.Now()
	r = ts.query("never.other.org.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = true })
	if r.Rcode != mdns.RcodeServerFailure || time.Since(start) > 3*time.Second {
		t.Errorf("unknown name with the upstream down = %s after %v, want SERVFAIL quickly", mdns.RcodeToString[r.Rcode], time.Since(start))
	}
}

func TestResolverOutside(t *testing.T) {
	up := startUpstream(t)
	ts := startServer(t, fmt.Sprintf("  inside: [lan]\n  upstreams: {servers: [{address: %q}]}\n", up.addr)+zones)
	if r := ts.query("www.other.org.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = true }); r.Rcode != mdns.RcodeRefused || r.RecursionAvailable {
		t.Errorf("outside recursion = %s RA=%v, want REFUSED without RA", mdns.RcodeToString[r.Rcode], r.RecursionAvailable)
	}
	if up.queries.Load() != 0 {
		t.Errorf("an outside question reached the upstream")
	}
}

// TestResolverPackedCache checks that resolver answers are reused packed
// only briefly, and that a refusal without RD never answers a question
// with RD.
func TestResolverPackedCache(t *testing.T) {
	up := startUpstream(t)
	ts := startServer(t, fmt.Sprintf("  inside: [loop]\n  upstreams: {servers: [{address: %q}]}\n", up.addr)+zones)
	noRD := func(m *mdns.Msg) { m.RecursionDesired = false }
	withRD := func(m *mdns.Msg) { m.RecursionDesired = true }
	for range 2 {
		if r := ts.query("a.other.org.", mdns.TypeA, noRD); r.Rcode != mdns.RcodeRefused {
			t.Fatalf("without RD = %s, want REFUSED", mdns.RcodeToString[r.Rcode])
		}
	}
	if r := ts.query("a.other.org.", mdns.TypeA, withRD); answers(r) != "203.0.113.7" {
		t.Fatalf("with RD after refusals without = %v, want the resolved answer", r)
	}
	hits := func() float64 {
		mfs, _ := ts.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "edge_dns_answer_cache_hits_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	before := hits()
	ts.query("a.other.org.", mdns.TypeA, withRD)
	if hits() != before+1 {
		t.Errorf("a repeated resolver answer within its TTL was not served packed")
	}
	// The upstream's TTL is 1s: past it the packed answer is not used.
	time.Sleep(1100 * time.Millisecond)
	before = hits()
	n := up.queries.Load()
	if r := ts.query("a.other.org.", mdns.TypeA, withRD); answers(r) != "203.0.113.7" {
		t.Fatalf("after the TTL = %v", r)
	}
	if hits() != before || up.queries.Load() == n {
		t.Errorf("after the TTL the packed answer was served (hits %v->%v, upstream queries %d->%d)", before, hits(), n, up.queries.Load())
	}
}
