package forward

import (
	"context"
	"errors"
	"fmt"
	"github.com/homeedge/edge/internal/ctlapi"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/dns/zone"
)

// Health: an upstream is skipped after maxFails consecutive failures and
// probed in the background, first after probeMin, then at doubling
// intervals up to probeMax, until it answers.
const (
	maxFails        = 2
	defaultProbeMin = time.Second
	probeMax        = 30 * time.Second
)

// upstream is one configured resolver with its transport and health.
type upstream struct {
	ep      endpoint
	t       transport
	timeout time.Duration
	log     *slog.Logger

	latency prometheus.Observer
	upGauge prometheus.Gauge
	queries *prometheus.CounterVec // curried with the upstream label

	// down is read without the lock on every query; it changes under mu.
	down atomic.Bool

	mu        sync.Mutex
	fails     int           // consecutive failures; guarded by mu
	probing   bool          // a prober runs; guarded by mu
	lastErr   string        // guarded by mu
	lastErrAt time.Time     // guarded by mu
	ewma      time.Duration // smoothed reply time; guarded by mu

	nQueries, nFailures atomic.Uint64
}

// rcodeError is a reply that counts as the upstream failing: SERVFAIL,
// REFUSED or an extended rcode. The reply is kept for its EDEs.
type rcodeError struct {
	rcode int
	reply *dns.Msg
}

func (e *rcodeError) Error() string { return "answered " + dns.RcodeToString[e.rcode] }

// attemptError is one upstream's failure in a query.
type attemptError struct {
	upstream string
	err      error
}

func (e *attemptError) Error() string { return e.upstream + ": " + e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// UpstreamError is Result.Err when no upstream gave a usable answer; it
// lists what each upstream tried did.
type UpstreamError struct {
	Attempts []error
}

func (e *UpstreamError) Error() string {
	if len(e.Attempts) == 0 {
		return "no upstream was tried"
	}
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.Error()
	}
	return "no upstream answered: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.Is see each attempt's error.
func (e *UpstreamError) Unwrap() []error { return e.Attempts }

// query is one question to send upstream, packed once per flight.
type query struct {
	k      key
	plain  []byte // for dns upstreams
	padded []byte // for tls and https: padded to hide the name's length
}

// newQuery builds the upstream query for k. The client's options (ECS
// above all, but also cookies and padding) never go upstream: the query is
// made afresh from the question and the DO, CD and RD bits. AD is set to
// ask for the upstream's validation result (RFC 6840 §5.7).
func newQuery(k key, encrypted bool) (*query, error) {
	m := &dns.Msg{
		MsgHdr: dns.MsgHdr{
			RecursionDesired:  k.flags&flagNoRD == 0,
			CheckingDisabled:  k.flags&flagCD != 0,
			AuthenticatedData: true,
		},
		Question: []dns.Question{{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}},
	}
	m.SetEdns0(ednsSize, k.flags&flagDO != 0)
	plain, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack query: %w", err)
	}
	q := &query{k: k, plain: plain}
	if encrypted {
		// RFC 8467 §4.1: pad queries to a multiple of 128 bytes.
		o := m.IsEdns0()
		pad := (128 - (len(plain)+4)%128) % 128
		o.Option = append(o.Option, &dns.EDNS0_PADDING{Padding: make([]byte, pad)})
		if q.padded, err = m.Pack(); err != nil {
			return nil, fmt.Errorf("pack query: %w", err)
		}
	}
	return q, nil
}

func (q *query) wire(p Protocol) []byte {
	if p != ProtoDNS && q.padded != nil {
		return q.padded
	}
	return q.plain
}

// check reports whether r answers q: a reply to a query, for the same
// question. An upstream may leave the question out only of an error reply.
func (q *query) check(r *dns.Msg) error {
	if !r.Response || r.Opcode != dns.OpcodeQuery {
		return errors.New("reply is not a response to a query")
	}
	if len(r.Question) == 0 && r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil
	}
	if len(r.Question) != 1 {
		return fmt.Errorf("reply has %d questions", len(r.Question))
	}
	rq := r.Question[0]
	if rq.Qtype != q.k.qtype || rq.Qclass != q.k.qclass || zone.Lower(rq.Name) != q.k.name {
		return fmt.Errorf("reply is for another question (%s %s)", rq.Name, dns.TypeToString[rq.Qtype])
	}
	return nil
}

// ask sends q to u once, within u's timeout, and keeps u's health and
// metrics. A reply that counts as a failure comes back with an
// *rcodeError. When ctx ends first (the race was won elsewhere, the
// forwarder closes), nothing is counted against u.
func (u *upstream) ask(ctx context.Context, q *query) (*dns.Msg, error) {
	actx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	start := time.Now()
	r, err := u.t.exchange(actx, q.wire(u.ep.proto))
	took := time.Since(start)
	if err == nil {
		err = q.check(r)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		label := "error"
		if errors.Is(err, context.DeadlineExceeded) {
			label = "timeout"
			err = fmt.Errorf("no reply within %s", u.timeout)
		}
		u.queries.WithLabelValues(label).Inc()
		u.failed(err)
		return nil, err
	}
	rc, ok := dns.RcodeToString[r.Rcode]
	if !ok {
		rc = fmt.Sprint(r.Rcode)
	}
	u.queries.WithLabelValues(rc).Inc()
	u.latency.Observe(took.Seconds())
	// Extended rcodes (BADVERS, BADCOOKIE, ...) are about this hop, and
	// a client without EDNS could not even be sent one.
	if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused || r.Rcode > 0xF {
		err := &rcodeError{rcode: r.Rcode, reply: r}
		u.failed(err)
		return r, err
	}
	u.succeeded(took)
	return r, nil
}

func (u *upstream) succeeded(took time.Duration) {
	u.nQueries.Add(1)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fails = 0
	if u.ewma == 0 {
		u.ewma = took
	} else {
		u.ewma = (4*u.ewma + took) / 5
	}
	if u.down.Load() {
		u.down.Store(false)
		u.upGauge.Set(1)
		u.log.Info("upstream up", "upstream", u.ep.name)
	}
}

// failed counts a failure; the maxFails-th in a row marks u down (the
// caller then starts a prober, see Forwarder.watch).
func (u *upstream) failed(err error) {
	u.nQueries.Add(1)
	u.nFailures.Add(1)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fails++
	u.lastErr = err.Error()
	u.lastErrAt = time.Now()
	if u.fails >= maxFails && !u.down.Load() {
		u.down.Store(true)
		u.upGauge.Set(0)
		u.log.Warn("upstream down", "upstream", u.ep.name, "err", err)
	}
}

// needsProbe reports whether u is down without a prober, and if so marks
// that one is starting.
func (u *upstream) needsProbe() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.down.Load() || u.probing {
		return false
	}
	u.probing = true
	return true
}

// probe asks u for the root's NS records at doubling intervals until it
// answers, a real query finds it up again, or ctx ends.
func (u *upstream) probe(ctx context.Context, first time.Duration, q *query) {
	defer func() {
		u.mu.Lock()
		u.probing = false
		u.mu.Unlock()
	}()
	wait := first
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !u.down.Load() {
			return
		}
		if _, err := u.ask(ctx, q); err == nil {
			return
		}
		wait = min(2*wait, probeMax)
		t.Reset(wait)
	}
}

func (u *upstream) status() ctlapi.DNSUpstream {
	u.mu.Lock()
	defer u.mu.Unlock()
	return ctlapi.DNSUpstream{
		Name:                u.ep.name,
		Protocol:            string(u.ep.proto),
		Address:             u.ep.addr,
		ServerName:          u.ep.serverName,
		URL:                 u.ep.url,
		Up:                  !u.down.Load(),
		ConsecutiveFailures: u.fails,
		LastError:           u.lastErr,
		LastErrorTime:       u.lastErrAt,
		LatencyMS:           float64(u.ewma.Microseconds()) / 1000,
		Queries:             u.nQueries.Load(),
		Failures:            u.nFailures.Load(),
	}
}
