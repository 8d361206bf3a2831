package health

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"github.com/homeedge/edge/internal/ctlapi"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Target is one address to check.
type Target struct {
	// Key identifies the target across Set calls; the caller chooses it,
	// such as "www.example.net/A/192.0.2.10". Up, Change and Status
	// name targets by it, and it is the metrics' target label.
	Key string
	// Addr is the address checked, at Check.Port.
	Addr netip.Addr
	// Check says how.
	Check Check
}

// Options configure a Checker.
type Options struct {
	// Log receives one info line per transition; New adds
	// component=health. Nil discards.
	Log *slog.Logger
	// Metrics registers the Checker's series; nil keeps them private.
	Metrics prometheus.Registerer
	// Namespace prefixes the metric names: "edge_dns" gives
	// edge_dns_health_up and so on.
	Namespace string
	// Dial, when set, opens every check's connection (tcp checks and
	// http requests alike) instead of a net.Dialer; it must return once
	// ctx ends, or Set and Close wait for it. Tests use it to count or
	// script connections.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// RootCAs, when set, replaces the system roots for verifying https
	// targets, for sites whose backends carry a private CA's certificates.
	RootCAs *x509.CertPool
}

// Change is a change of Up's answer for a target.
type Change struct {
	Key  string
	Addr netip.Addr
	// Up is the new answer.
	Up bool
	// Reason says why: the failing check's error ("connect: connection
	// refused", "http status 503", "timeout after 2s"), how many checks
	// passed, or what Set did ("check changed", "removed").
	Reason string
}

// Checker runs the health checks of a set of targets and answers, without
// a lock, whether each is up. Its methods are safe for concurrent use.
type Checker struct {
	log     *slog.Logger
	reg     prometheus.Registerer
	metrics *metrics
	dial    dialFunc
	roots   *x509.CertPool
	events  *dispatcher

	// view is what Up reads: a map that is never changed once stored, so
	// the hot path takes no lock. Set stores a new one.
	view atomic.Pointer[map[string]*target]

	// mu serializes Set and Close and guards the fields below.
	mu      sync.Mutex
	targets map[string]*target
	closed  bool
	// stopped is closed once Close has finished.
	stopped chan struct{}
}

// target is one target's checks and state.
type target struct {
	key    string
	addr   netip.Addr
	check  Check // with defaults
	prober *prober

	// up is Up's answer. Only the target's goroutine (or Set, before the
	// goroutine starts) writes it, under mu and together with state.up;
	// Up reads it without a lock.
	up atomic.Bool

	// ctx ends the target's goroutine; cancel ends ctx.
	ctx    context.Context
	cancel context.CancelFunc
	// done is closed when the target's goroutine has returned.
	done chan struct{}

	// Series of this target, looked up once: a handle also cannot bring
	// a deleted series back.
	upGauge          prometheus.Gauge
	passed, failed   prometheus.Counter
	wentUp, wentDown prometheus.Counter
	checkDuration    prometheus.Observer

	log                        *slog.Logger
	emit                       func(Change)
	rise, fall                 int
	interval, timeout, firstIn time.Duration

	// mu guards state.
	mu    sync.Mutex
	state state
}

// state is what a target's checks have learned.
type state struct {
	up                  bool
	checked             bool
	successes, failures int
	since, lastCheck    time.Time
	lastErr             string
}

// observe records one check's result and reports whether up changed. A
// target starts up; fall consecutive failures take it down and rise
// consecutive successes bring it back.
func (s *state) observe(ok bool, rise, fall int) bool {
	s.checked = true
	if ok {
		s.successes, s.failures = s.successes+1, 0
	} else {
		s.successes, s.failures = 0, s.failures+1
	}
	switch {
	case !s.up && s.successes >= rise:
		s.up = true
		return true
	case s.up && s.failures >= fall:
		s.up = false
		return true
	}
	return false
}

// New returns a Checker with no targets; Set gives it some. It registers
// its metrics with opts.Metrics and panics when they are registered
// already: two Checkers on one registry would delete each other's
// series, so a daemon keeps one Checker and calls Set on every reload.
func New(opts Options) *Checker {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	dial := opts.Dial
	if dial == nil {
		// Checks are short; TCP keep-alive probes would only add work.
		dial = (&net.Dialer{KeepAlive: -1}).DialContext
	}
	c := &Checker{
		log:     log.With("component", "health"),
		reg:     reg,
		metrics: newMetrics(reg, opts.Namespace),
		dial:    dial,
		roots:   opts.RootCAs,
		events:  newDispatcher(),
		targets: map[string]*target{},
		stopped: make(chan struct{}),
	}
	empty := map[string]*target{}
	c.view.Store(&empty)
	go c.events.loop()
	return c
}

// Up reports whether the target with key counts as up. Unknown keys are
// up, and so is a target before its first check has finished: a restart
// or a reload must not drop every address until the checks come in. It is
// the hot path of every answer: no lock, no allocation.
func (c *Checker) Up(key string) bool {
	t, ok := (*c.view.Load())[key]
	return !ok || t.up.Load()
}

// Set makes targets the checked set. A target whose key, address and
// check are unchanged keeps its state and its goroutine. One whose
// address or probe changed starts over as a new target; one whose only
// changes are interval, timeout, rise or fall keeps what it learned and
// continues with the new timing. New targets run their first check at
// once. Removed targets stop before Set returns, and their metric series
// are deleted. When keys repeat, the last target wins. Set after Close
// does nothing.
//
// Every change of Up's answer is delivered to subscribers, including the
// ones Set causes: a down target that is removed, or whose check changed,
// counts as up again.
func (c *Checker) Set(targets []Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	want := make(map[string]Target, len(targets))
	var order []string
	for _, tg := range targets {
		if _, dup := want[tg.Key]; !dup {
			order = append(order, tg.Key)
		}
		tg.Check = tg.Check.withDefaults()
		want[tg.Key] = tg
	}

	next := make(map[string]*target, len(want))
	var (
		stop    []*target
		start   []*target // their first check runs at once
		resume  []*target // they carry state over; checks keep their pace
		changes []Change
	)
	for _, key := range order {
		tg := want[key]
		old := c.targets[key]
		switch {
		case old == nil:
			nt := c.newTarget(tg)
			next[key], start = nt, append(start, nt)
			c.metrics.add(key)
		case old.addr == tg.Addr && old.check == tg.Check:
			next[key] = old
		case old.addr == tg.Addr && sameProbe(old.check, tg.Check):
			nt := c.newTarget(tg)
			next[key], resume, stop = nt, append(resume, nt), append(stop, old)
		default:
			nt := c.newTarget(tg)
			next[key], start, stop = nt, append(start, nt), append(stop, old)
		}
	}
	var removed []*target
	for key, old := range c.targets {
		if _, ok := want[key]; !ok {
			stop, removed = append(stop, old), append(removed, old)
		}
	}
	stopAll(stop)

	for _, nt := range resume {
		old := c.targets[nt.key]
		// old's goroutine has returned: its state is final.
		nt.state = old.state
		nt.up.Store(nt.state.up)
		nt.upGauge.Set(boolGauge(nt.state.up))
	}
	for _, nt := range start {
		if old := c.targets[nt.key]; old != nil {
			nt.upGauge.Set(1)
			if !old.up.Load() {
				changes = append(changes, Change{Key: nt.key, Addr: nt.addr, Up: true, Reason: "check changed"})
			}
		}
	}
	slices.SortFunc(removed, func(a, b *target) int { return cmp.Compare(a.key, b.key) })
	for _, old := range removed {
		c.metrics.remove(old.key)
		if !old.up.Load() {
			changes = append(changes, Change{Key: old.key, Addr: old.addr, Up: true, Reason: "removed"})
		}
	}

	// The view goes first, so a subscriber told of a change finds Up
	// agreeing; Set's changes are queued before any that the new
	// goroutines find.
	c.targets = next
	c.view.Store(&next)
	c.events.emit(changes...)
	for _, nt := range start {
		go nt.run(true)
	}
	for _, nt := range resume {
		go nt.run(false)
	}
	if len(start)+len(resume)+len(removed) > 0 {
		c.log.Debug("health checks set", "targets", len(next), "started", len(start), "resumed", len(resume), "removed", len(removed))
	}
}

// newTarget builds a target for tg (whose check has its defaults); its
// goroutine is not started yet.
func (c *Checker) newTarget(tg Target) *target {
	ctx, cancel := context.WithCancel(context.Background())
	t := &target{
		key:           tg.Key,
		addr:          tg.Addr,
		check:         tg.Check,
		prober:        newProber(tg.Addr, tg.Check, c.dial, c.roots),
		cancel:        cancel,
		done:          make(chan struct{}),
		upGauge:       c.metrics.up.WithLabelValues(tg.Key),
		passed:        c.metrics.checks.WithLabelValues(tg.Key, resultSuccess),
		failed:        c.metrics.checks.WithLabelValues(tg.Key, resultFailure),
		wentUp:        c.metrics.transitions.WithLabelValues(tg.Key, toUp),
		wentDown:      c.metrics.transitions.WithLabelValues(tg.Key, toDown),
		checkDuration: c.metrics.duration,
		log:           c.log,
		emit:          c.events.emit1,
		rise:          tg.Check.Rise,
		fall:          tg.Check.Fall,
		interval:      tg.Check.Interval.D(),
		timeout:       tg.Check.Timeout.D(),
	}
	t.ctx = ctx
	t.firstIn = t.interval/2 + rand.N(t.interval)
	t.state = state{up: true, since: time.Now()}
	t.up.Store(true)
	return t
}

// stopAll stops the targets' goroutines and waits for all of them; the
// stops overlap, so a reload that drops many targets does not wait for
// each in turn.
func stopAll(ts []*target) {
	for _, t := range ts {
		t.cancel()
	}
	for _, t := range ts {
		<-t.done
	}
}

// Subscribe calls fn with every change of Up's answer, in order, from one
// goroutine that only delivers changes: fn may take its time and may call
// Up, Status or Set, but not Close (Close waits for deliveries to end).
// Changes are queued without bound, so a slow fn never delays checks. The
// returned func unsubscribes; a delivery under way may still complete.
func (c *Checker) Subscribe(fn func(Change)) (cancel func()) {
	return c.events.subscribe(fn)
}

// Status reports every target, sorted by key, as the admin API carries
// it.
func (c *Checker) Status() []ctlapi.HealthTarget {
	view := *c.view.Load()
	out := make([]ctlapi.HealthTarget, 0, len(view))
	for _, t := range view {
		t.mu.Lock()
		s := t.state
		t.mu.Unlock()
		out = append(out, ctlapi.HealthTarget{
			Key: t.key, Addr: t.addr, Type: t.check.Type, Port: t.check.Port,
			Up: s.up, Checked: s.checked, Since: s.since, LastCheck: s.lastCheck, LastError: s.lastErr,
			Successes: s.successes, Failures: s.failures,
		})
	}
	slices.SortFunc(out, func(a, b ctlapi.HealthTarget) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// Close stops every check, delivers the changes already queued, and
// returns once no goroutine of the Checker runs. Up then keeps answering
// with the last state; the metric series are deleted and unregistered.
// Close may be called more than once.
func (c *Checker) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.stopped
		return
	}
	c.closed = true
	var all []*target
	for _, t := range c.targets {
		all = append(all, t)
	}
	stopAll(all)
	for _, t := range all {
		c.metrics.remove(t.key)
	}
	c.mu.Unlock()

	c.events.close()
	for _, col := range []prometheus.Collector{c.metrics.up, c.metrics.checks, c.metrics.transitions, c.metrics.duration} {
		c.reg.Unregister(col)
	}
	close(c.stopped)
}

// run is a target's goroutine: the first check at once when immediate,
// then one per interval, the first of those after a random part of an
// interval more, so that targets set together do not check in lockstep.
func (t *target) run(immediate bool) {
	defer close(t.done)
	defer t.prober.close()
	if immediate {
		t.checkOnce()
	}
	timer := time.NewTimer(t.firstIn)
	defer timer.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		t.checkOnce()
		// Interval is from start to start; a check that ran long still
		// leaves the target half an interval of rest.
		timer.Reset(max(t.interval-time.Since(start), t.interval/2))
	}
}

// checkOnce runs one check and records its result.
func (t *target) checkOnce() {
	ctx, cancel := context.WithTimeout(t.ctx, t.timeout)
	start := time.Now()
	err := t.prober.probe(ctx)
	cancel()
	took := time.Since(start)
	if t.ctx.Err() != nil {
		// Stopped during the check: that says nothing of the target.
		return
	}
	t.checkDuration.Observe(took.Seconds())
	if err != nil {
		t.failed.Inc()
	} else {
		t.passed.Inc()
	}
	why := reason(err, t.check)

	t.mu.Lock()
	changed := t.state.observe(err == nil, t.rise, t.fall)
	t.state.lastCheck, t.state.lastErr = start, why
	if changed {
		t.state.since = start
		t.up.Store(t.state.up)
	}
	up, successes := t.state.up, t.state.successes
	t.mu.Unlock()
	if !changed {
		return
	}

	t.upGauge.Set(boolGauge(up))
	if up {
		t.wentUp.Inc()
		why = fmt.Sprintf("%d checks passed in a row", successes)
	} else {
		t.wentDown.Inc()
	}
	// The one line per transition; never one per check.
	t.log.Info("health changed", "target", t.key, "addr", t.addr, "up", up, "reason", why)
	t.emit(Change{Key: t.key, Addr: t.addr, Up: up, Reason: why})
}
