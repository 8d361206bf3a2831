package forward

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the package's Prometheus metrics. They are registered as one
// collector per registry and shared by everything registered there, so a
// reload can build a new Forwarder (and the Cache and Forwarders can each
// be given the same registry) without a duplicate registration.
type metrics struct {
	hits, misses, stale, prefetches, coalesced, failures prometheus.Counter
	entries                                              prometheus.Gauge
	evictions                                            prometheus.Counter

	upQueries *prometheus.CounterVec   // upstream, rcode
	upLatency *prometheus.HistogramVec // upstream
	upUp      *prometheus.GaugeVec     // upstream

	mu sync.Mutex
	// refs counts the live Forwarders that use each upstream label, so the
	// last one to close removes the label's series. Guarded by mu.
	refs map[string]int
}

func newMetrics(ns string) *metrics {
	if ns == "" {
		ns = "edge_dns"
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "_" + name, Help: help})
	}
	return &metrics{
		hits:       counter("cache_hits_total", "Queries answered from a fresh cache entry."),
		misses:     counter("cache_misses_total", "Queries that found no fresh cache entry and went upstream."),
		stale:      counter("cache_stale_answers_total", "Queries answered from an expired entry because the upstreams failed or were slow (RFC 8767)."),
		prefetches: counter("cache_prefetches_total", "Background refreshes of popular entries before they expired."),
		coalesced:  counter("forward_coalesced_queries_total", "Queries that waited for an identical query already sent upstream instead of sending their own."),
		failures:   counter("forward_failures_total", "Queries answered SERVFAIL because no upstream gave a usable answer."),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ns + "_cache_entries",
			Help: "Entries in the cache, fresh and stale.",
		}),
		evictions: counter("cache_evictions_total", "Entries removed to keep the cache within its size."),
		upQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "_upstream_queries_total",
			Help: "Queries sent to each upstream, by the rcode of the reply (or timeout/error when none came).",
		}, []string{"upstream", "rcode"}),
		upLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    ns + "_upstream_query_duration_seconds",
			Help:    "Time from sending a query to an upstream to its reply.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"upstream"}),
		upUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: ns + "_upstream_up",
			Help: "1 while an upstream is considered healthy, 0 while it is skipped and probed.",
		}, []string{"upstream"}),
		refs: make(map[string]int),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.hits, m.misses, m.stale, m.prefetches, m.coalesced, m.failures,
		m.entries, m.evictions, m.upQueries, m.upLatency, m.upUp}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// metricsFor returns the metrics registered in reg under ns, registering
// them on first use. A nil reg gets metrics of their own that nothing
// exports.
func metricsFor(reg prometheus.Registerer, ns string) (*metrics, error) {
	m := newMetrics(ns)
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*metrics); ok {
				return old, nil
			}
		}
		return nil, fmt.Errorf("register dns forward metrics: %w", err)
	}
	return m, nil
}

// acquire and release count a Forwarder's use of an upstream label;
// acquire reports whether no other Forwarder holds it.
func (m *metrics) acquire(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refs[name]++
	return m.refs[name] == 1
}

func (m *metrics) release(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refs[name]--
	if m.refs[name] > 0 {
		return
	}
	delete(m.refs, name)
	l := prometheus.Labels{"upstream": name}
	m.upQueries.DeletePartialMatch(l)
	m.upLatency.DeletePartialMatch(l)
	m.upUp.DeletePartialMatch(l)
}
