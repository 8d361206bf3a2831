package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/homeedge/edge/internal/ctlapi"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/dns/zone"
)

// edeCachedError marks a SERVFAIL answered from the cache (RFC 8914
// §4.14). Replies share it; nothing changes it.
var edeCachedError = &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeCachedError}

// errRecentFailure is Result.Err for stale answers given without asking
// the upstreams, because they failed to refresh the entry just before.
var errRecentFailure = fmt.Errorf("upstreams failed to refresh this entry less than %s ago", staleRecheck)

// ErrClosed is Result.Err for queries that reach a closed Forwarder.
var ErrClosed = errors.New("forwarder closed")

// Options are a Forwarder's run-time dependencies.
type Options struct {
	// Log gets upstream state changes; default discards.
	Log *slog.Logger
	// Metrics registers the metrics; nil keeps them private. Giving each
	// reload's Forwarder the same registry is fine: they share the series.
	Metrics prometheus.Registerer
	// Namespace prefixes metric names; default "edge_dns".
	Namespace string
	// RootCAs, when set, replaces the system's CAs for tls and https
	// upstreams (ca_file still adds to it). For tests.
	RootCAs *x509.CertPool
	// ProbeInterval is the wait before a down upstream is first probed;
	// default 1s. For tests.
	ProbeInterval time.Duration
}

// Source says where an answer came from.
type Source uint8

// The sources of an answer.
const (
	// SourceCache: a fresh cache entry (which may be a remembered
	// failure, answered SERVFAIL with EDE 13, Cached Error).
	SourceCache Source = iota
	// SourceUpstream: an upstream's answer to this query (or to an
	// identical one in flight, see Result.Coalesced).
	SourceUpstream
	// SourceStale: an expired entry, because the upstreams failed or were
	// slower than client_timeout (RFC 8767).
	SourceStale
	// SourceError: a SERVFAIL made here; Result.Err says why.
	SourceError
	// SourceRejected: a query this package does not forward (FORMERR,
	// NOTIMP, BADVERS made here).
	SourceRejected
)

var sourceNames = [...]string{"cache", "upstream", "stale", "error", "rejected"}

// String returns the source's name, as used in metric labels and logs.
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return fmt.Sprintf("source(%d)", s)
}

// Result says how Resolve answered, for metrics and the query log.
type Result struct {
	Source Source
	// Upstream names the upstream that answered, for SourceUpstream.
	Upstream string
	// Coalesced: the answer came from a query another client had already
	// sent upstream.
	Coalesced bool
	// Err is why the upstreams failed, for SourceStale and SourceError.
	Err error
}

// Forwarder resolves inside clients' questions through the cache and the
// upstreams. It is safe for concurrent use.
type Forwarder struct {
	cache    *Cache
	m        *metrics
	log      *slog.Logger
	ups      []*upstream
	policy   Policy
	race     int
	probeMin time.Duration
	// encrypted: some upstream uses tls or https, so queries are padded.
	encrypted bool
	rr        atomic.Uint32 // round_robin's next start

	ctx    context.Context // ends at Close; flights and probes run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup // flights, prefetches and probers

	mu      sync.Mutex
	flights map[key]*flight // guarded by mu
	closed  bool            // guarded by mu
}

// New builds a Forwarder for cfg over cache. It does not contact the
// upstreams; connections are made on first use.
func New(cfg Config, cache *Cache, opts Options) (*Forwarder, error) {
	if cache == nil {
		return nil, errors.New("forward: nil cache")
	}
	if len(cfg.Servers) == 0 {
		return nil, errors.New("upstreams.servers: no upstream servers")
	}
	m, err := metricsFor(opts.Metrics, opts.Namespace)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout.D()
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	f := &Forwarder{
		cache:    cache,
		m:        m,
		log:      log,
		policy:   cfg.Policy,
		race:     max(cfg.Race, 1),
		probeMin: opts.ProbeInterval,
		flights:  make(map[key]*flight),
	}
	if f.policy == "" {
		f.policy = PolicyFailover
	}
	if f.probeMin <= 0 {
		f.probeMin = defaultProbeMin
	}
	var roots *x509.CertPool
	fail := func(err error) (*Forwarder, error) {
		for _, u := range f.ups {
			u.t.close()
		}
		return nil, err
	}
	for i, s := range cfg.Servers {
		ep, kerr := s.endpoint()
		if kerr != nil {
			return fail(fmt.Errorf("upstreams.servers[%d].%s: %s", i, kerr.key, kerr.msg))
		}
		u := &upstream{ep: ep, timeout: timeout, log: log}
		switch ep.proto {
		case ProtoDNS:
			u.t = &plainTransport{addr: ep.addr}
		case ProtoTLS, ProtoHTTPS:
			if roots == nil {
				if roots, err = rootCAs(cfg.CAFile, opts.RootCAs); err != nil {
					return fail(err)
				}
			}
			conf := &tls.Config{
				ServerName:         ep.serverName,
				RootCAs:            roots,
				MinVersion:         tls.VersionTLS12,
				ClientSessionCache: tls.NewLRUClientSessionCache(4),
			}
			if ep.proto == ProtoTLS {
				// "dot" is DNS over TLS in the IANA ALPN registry (RFC 7858).
				conf.NextProtos = []string{"dot"}
				u.t = newTLSTransport(ep.addr, conf, max(30*time.Second, 2*timeout))
			} else {
				u.t = newHTTPSTransport(ep, conf, timeout)
			}
			f.encrypted = true
		}
		f.ups = append(f.ups, u)
	}
	for _, u := range f.ups {
		name := u.ep.name
		first := m.acquire(name)
		u.upGauge = m.upUp.WithLabelValues(name)
		if first {
			u.upGauge.Set(1)
		}
		u.latency = m.upLatency.WithLabelValues(name)
		u.queries = m.upQueries.MustCurryWith(prometheus.Labels{"upstream": name})
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

func rootCAs(file string, base *x509.CertPool) (*x509.CertPool, error) {
	var pool *x509.CertPool
	switch {
	case base != nil:
		pool = base.Clone()
	default:
		sys, err := x509.SystemCertPool()
		if err != nil {
			sys = x509.NewCertPool()
		}
		pool = sys
	}
	if file == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("upstreams.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("upstreams.ca_file: no PEM certificate in %s", file)
	}
	return pool, nil
}

// Publish sets the up gauges of upstreams that an older Forwarder shares
// to what f knows of them. New leaves those gauges to the Forwarder
// answering, so that one prepared for a reload that then fails changes
// nothing; the caller publishes f once f answers.
func (f *Forwarder) Publish() {
	for _, u := range f.ups {
		u.mu.Lock()
		if u.down.Load() {
			u.upGauge.Set(0)
		} else {
			u.upGauge.Set(1)
		}
		u.mu.Unlock()
	}
}

// Close stops the background work (refreshes, prefetches, probes), waits
// for it, and closes the upstream connections. The Cache stays usable.
// Resolve after Close still answers from the cache (a handler may hold the
// old Forwarder for a moment after a reload) and SERVFAIL otherwise.
func (f *Forwarder) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	for _, u := range f.ups {
		u.t.close()
		f.m.release(u.ep.name)
	}
}

// Resolve answers req, an inside client's query that may recurse. It
// always returns a reply to send, with req's ID and question: the answer,
// or SERVFAIL with an Extended DNS Error (RFC 8914) saying why when the
// client speaks EDNS. The caller truncates it to the client's UDP size
// (dns.Msg.Truncate) when it answers over UDP.
func (f *Forwarder) Resolve(ctx context.Context, req *dns.Msg) (*dns.Msg, Result) {
	if req == nil {
		return &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Rcode: dns.RcodeFormatError}}, Result{Source: SourceRejected}
	}
	cl := clientOf(req)
	if reply := reject(req, cl); reply != nil {
		return reply, Result{Source: SourceRejected}
	}
	q := req.Question[0]
	k := key{name: zone.Lower(q.Name), qtype: q.Qtype, qclass: q.Qclass}
	if cl.do {
		k.flags |= flagDO
	}
	if req.CheckingDisabled {
		k.flags |= flagCD
	}
	c := f.cache
	st := c.settings()
	now := c.clock()
	var l lookup
	if st.size > 0 {
		l, _ = c.get(k, now, st)
	}
	if l.fresh {
		f.m.hits.Inc()
		c.hits.Add(1)
		if l.prefetch {
			f.prefetch(k)
		}
		age := uint32((now - l.stored) / int64(time.Second))
		if l.ans.kind == kindFailure {
			return l.ans.reply(req, cl, age, false, 0, edeCachedError), Result{Source: SourceCache}
		}
		return l.ans.reply(req, cl, age, false, 0), Result{Source: SourceCache}
	}
	if !req.RecursionDesired {
		// The client asked for what is cached only; an upstream asked
		// without RD answers from its own cache. Neither is stale data
		// nor cached here.
		k.flags |= flagNoRD
		l = lookup{}
	}
	if l.stale && l.recentFail {
		return f.staleReply(req, cl, l, errRecentFailure)
	}
	start := time.Now()
	f.m.misses.Inc()
	c.misses.Add(1)

	fl, joined := f.join(k)
	if fl == nil {
		return errorReply(req, cl, dns.RcodeServerFailure, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNotReady, ExtraText: "resolver shutting down"}),
			Result{Source: SourceError, Err: ErrClosed}
	}
	if joined {
		f.m.coalesced.Inc()
		c.coalesced.Add(1)
	}
	var timeout <-chan time.Time
	if l.stale {
		t := time.NewTimer(st.clientTimeout - time.Since(start))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-fl.done:
	case <-timeout:
		return f.staleReply(req, cl, l, fmt.Errorf("no upstream answer within client_timeout %s", st.clientTimeout))
	case <-ctx.Done():
		if l.stale {
			return f.staleReply(req, cl, l, ctx.Err())
		}
		f.m.failures.Inc()
		return errorReply(req, cl, dns.RcodeServerFailure, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNoReachableAuthority, ExtraText: "gave up waiting for the upstreams"}),
			Result{Source: SourceError, Err: ctx.Err(), Coalesced: joined}
	}
	if fl.err != nil {
		if l.stale {
			return f.staleReply(req, cl, l, fl.err)
		}
		f.m.failures.Inc()
		return fl.ans.reply(req, cl, 0, false, 0), Result{Source: SourceError, Err: fl.err, Coalesced: joined}
	}
	age := uint32(max(c.clock()-fl.stored, 0) / int64(time.Second))
	return fl.ans.reply(req, cl, age, false, 0), Result{Source: SourceUpstream, Upstream: fl.upstream, Coalesced: joined}
}

func (f *Forwarder) staleReply(req *dns.Msg, cl client, l lookup, err error) (*dns.Msg, Result) {
	f.m.stale.Inc()
	f.cache.stale.Add(1)
	code := dns.ExtendedErrorCodeStaleAnswer
	if l.ans.rcode == dns.RcodeNameError {
		code = dns.ExtendedErrorCodeStaleNXDOMAINAnswer
	}
	st := f.cache.settings()
	return l.ans.reply(req, cl, 0, true, st.staleTTL, &dns.EDNS0_EDE{InfoCode: code}), Result{Source: SourceStale, Err: err}
}

// reject answers the queries that are not forwarded, or returns nil.
func reject(req *dns.Msg, cl client) *dns.Msg {
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		// RFC 6891 §6.1.3: answer BADVERS with the version we speak.
		return errorReply(req, cl, dns.RcodeBadVers, nil)
	}
	switch {
	case req.Response || len(req.Question) != 1:
		return errorReply(req, cl, dns.RcodeFormatError, nil)
	case req.Opcode != dns.OpcodeQuery:
		return errorReply(req, cl, dns.RcodeNotImplemented, nil)
	}
	switch req.Question[0].Qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB:
		// Zone transfers stream many messages; they are not forwarded.
		return errorReply(req, cl, dns.RcodeNotImplemented, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNotSupported, ExtraText: "zone transfers are not forwarded"})
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		return errorReply(req, cl, dns.RcodeFormatError, nil)
	}
	return nil
}

// flight is one upstream query that every client asking the same question
// meanwhile waits for. Its fields are written once, before done closes.
type flight struct {
	done     chan struct{}
	ans      *answer
	stored   int64
	upstream string
	err      error
}

// join returns the flight for k, starting it unless one is under way
// (joined). It returns nil after Close.
func (f *Forwarder) join(k key) (fl *flight, joined bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false
	}
	if fl := f.flights[k]; fl != nil {
		return fl, true
	}
	fl = &flight{done: make(chan struct{})}
	f.flights[k] = fl
	f.wg.Add(1)
	// The flight runs on its own, not under the first client's context:
	// the others wait for it, and a stale answer's refresh must go on
	// after that client got the stale answer.
	go func() {
		defer f.wg.Done()
		f.fetch(k, fl)
		f.mu.Lock()
		delete(f.flights, k)
		f.mu.Unlock()
		close(fl.done)
	}()
	return fl, false
}

// prefetch refreshes k in the background unless a query for it is in
// flight already.
func (f *Forwarder) prefetch(k key) {
	if fl, joined := f.join(k); fl != nil && !joined {
		f.m.prefetches.Inc()
		f.cache.prefetches.Add(1)
	}
}

// fetch asks the upstreams for k and stores the outcome in fl and the
// cache.
func (f *Forwarder) fetch(k key, fl *flight) {
	q, err := newQuery(k, f.encrypted)
	var r *dns.Msg
	var from *upstream
	if err == nil {
		r, from, err = f.exchange(f.ctx, q)
	}
	c := f.cache
	st := c.settings()
	fl.stored = c.clock()
	if err != nil {
		fl.err = err
		fl.ans = failure(failureEDE(err), st.failTTL)
		if f.ctx.Err() == nil {
			c.failed(k, fl.ans, fl.stored)
		}
		return
	}
	fl.upstream = from.ep.name
	fl.ans = newAnswer(r, st)
	c.put(k, fl.ans, fl.stored)
}

// failureEDE explains a failure to the client: the upstream's own EDEs
// when it gave any (DNSSEC bogus, ...), otherwise what went wrong here.
func failureEDE(err error) []*dns.EDNS0_EDE {
	var ue *UpstreamError
	if !errors.As(err, &ue) {
		return []*dns.EDNS0_EDE{{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: err.Error()}}
	}
	var ede []*dns.EDNS0_EDE
	answered := false
	for _, a := range ue.Attempts {
		var re *rcodeError
		if errors.As(a, &re) {
			answered = true
			if o := re.reply.IsEdns0(); o != nil {
				for _, opt := range o.Option {
					if e, ok := opt.(*dns.EDNS0_EDE); ok && len(ede) < 4 {
						ede = append(ede, e)
					}
				}
			}
		}
	}
	if len(ede) > 0 {
		return ede
	}
	if answered {
		return []*dns.EDNS0_EDE{{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: "upstreams answered SERVFAIL or REFUSED"}}
	}
	return []*dns.EDNS0_EDE{{InfoCode: dns.ExtendedErrorCodeNoReachableAuthority, ExtraText: "no upstream answered"}}
}

// order returns the upstreams to ask, best first: the healthy ones in
// the policy's order, or all of them when none is healthy (asking a down
// upstream beats answering nothing).
func (f *Forwarder) order() []*upstream {
	n := len(f.ups)
	start := 0
	if f.policy == PolicyRoundRobin {
		start = int(f.rr.Add(1)-1) % n
	}
	out := make([]*upstream, 0, n)
	for i := range n {
		if u := f.ups[(start+i)%n]; !u.down.Load() {
			out = append(out, u)
		}
	}
	if len(out) > 0 {
		return out
	}
	for i := range n {
		out = append(out, f.ups[(start+i)%n])
	}
	return out
}

// exchange gets an answer for q from the upstreams under the policy.
func (f *Forwarder) exchange(ctx context.Context, q *query) (*dns.Msg, *upstream, error) {
	ups := f.order()
	var fails []error
	if f.policy == PolicyRace && len(ups) > 1 {
		n := min(f.race, len(ups))
		r, u, errs := f.raceAll(ctx, q, ups[:n])
		if r != nil {
			return r, u, nil
		}
		fails = errs
		ups = ups[n:]
	}
	for _, u := range ups {
		if ctx.Err() != nil {
			break
		}
		r, err := u.ask(ctx, q)
		if err == nil {
			return r, u, nil
		}
		fails = append(fails, &attemptError{u.ep.name, err})
		f.watch(u)
	}
	if ctx.Err() != nil {
		fails = append(fails, ctx.Err())
	}
	return nil, nil, &UpstreamError{Attempts: fails}
}

// raceAll asks ups at once; the first good answer wins and cancels the
// rest.
func (f *Forwarder) raceAll(ctx context.Context, q *query, ups []*upstream) (*dns.Msg, *upstream, []error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		r   *dns.Msg
		u   *upstream
		err error
	}
	ch := make(chan res, len(ups))
	for _, u := range ups {
		go func() {
			r, err := u.ask(ctx, q)
			ch <- res{r, u, err}
		}()
	}
	var fails []error
	for range ups {
		x := <-ch
		if x.err == nil {
			return x.r, x.u, nil
		}
		if !errors.Is(x.err, context.Canceled) {
			fails = append(fails, &attemptError{x.u.ep.name, x.err})
			f.watch(x.u)
		}
	}
	return nil, nil, fails
}

// watch starts probing u if it just went down.
func (f *Forwarder) watch(u *upstream) {
	if !u.needsProbe() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		q, err := newQuery(key{name: ".", qtype: dns.TypeNS, qclass: dns.ClassINET}, f.encrypted)
		if err != nil {
			return
		}
		u.probe(f.ctx, f.probeMin, q)
	}()
}

// Status reports the upstreams' health and the cache's counters, as the
// admin API carries them.
func (f *Forwarder) Status() ctlapi.DNSResolver {
	s := ctlapi.DNSResolver{Policy: string(f.policy), Cache: f.cache.Stats()}
	for _, u := range f.ups {
		s.Upstreams = append(s.Upstreams, u.status())
	}
	return s
}
