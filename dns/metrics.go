package dns

import (
	"strconv"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are edge-dns's own metrics (the runner adds its standard ones).
type metrics struct {
	queries     *prometheus.CounterVec
	duration    prometheus.Histogram
	malformed   prometheus.Counter
	truncated   prometheus.Counter
	writeErrors prometheus.Counter
	zones       prometheus.Gauge
	serial      *prometheus.GaugeVec
	updates     *prometheus.CounterVec
	transfers   *prometheus.CounterVec
	notifies    *prometheus.CounterVec
	records     *prometheus.CounterVec
	cacheHits   prometheus.Counter
	dropped     prometheus.Counter
	limited     *prometheus.CounterVec
	// serialStoreFailures counts commits whose zone serials could not be
	// stored.
	serialStoreFailures prometheus.Counter
	// tcpRefused and tcpEvicted count the TCP gate's decisions.
	tcpRefused *prometheus.CounterVec
	tcpEvicted prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_dns_queries_total",
			Help: "Queries answered, by view, query type, response code and transport.",
		}, []string{"view", "qtype", "rcode", "proto"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edge_dns_query_duration_seconds",
			Help:    "Time from receiving a query to sending its answer.",
			Buckets: []float64{0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2},
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_dns_malformed_total",
			Help: "Messages dropped or answered FORMERR because they did not parse or made no sense.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_dns_truncated_total",
			Help: "UDP answers truncated (TC set) to fit the client's buffer.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_dns_write_errors_total",
			Help: "Answers that could not be sent.",
		}),
		zones: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_dns_zones",
			Help: "Zones served, reverse zones included.",
		}),
		serial: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edge_dns_zone_serial",
			Help: "Each zone's current SOA serial.",
		}, []string{"zone"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_dns_updates_total",
			Help: "RFC 2136 updates by result (applied, refused, notauth, badkey, error).",
		}, []string{"result"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_dns_transfers_total",
			Help: "Zone transfers served, by type (axfr, ixfr) and result.",
		}, []string{"type", "result"}),
		notifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_dns_notifies_total",
			Help: "NOTIFY messages sent to secondaries, by result.",
		}, []string{"result"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_dns_record_changes_total",
			Help: "Run-time record changes through the admin API, by action.",
		}, []string{"action"}),
	}
	m.cacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edge_dns_answer_cache_hits_total",
		Help: "UDP queries answered from the cache of packed authoritative answers (also counted in edge_dns_queries_total).",
	})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edge_dns_dropped_total",
		Help: "UDP queries dropped because too many were being handled at once.",
	})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_dns_rate_limited_total",
		Help: "UDP answers to outside clients limited: by response rate limiting (slip: sent truncated, drop) or the per-client query limit (query).",
	}, []string{"action"})
	m.serialStoreFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edge_dns_serial_store_failures_total",
		Help: "Reloads whose new zone serials could not be written to the state store; they are served, and stored with the next change.",
	})
	m.tcpRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_dns_tcp_refused_total",
		Help: "TCP connections closed at once: the client held dns.limits.tcp_per_client already (per_client), or every connection was busy answering (busy).",
	}, []string{"reason"})
	m.tcpEvicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edge_dns_tcp_evicted_total",
		Help: "Idle TCP connections closed to make room for a new one when dns.limits.tcp_connections were open.",
	})
	reg.MustRegister(m.cacheHits, m.dropped, m.limited, m.serialStoreFailures, m.tcpRefused, m.tcpEvicted)
	reg.MustRegister(m.queries, m.duration, m.malformed, m.truncated, m.writeErrors, m.zones, m.serial, m.updates, m.transfers, m.notifies, m.records)
	return m
}

// count records one answered query and returns its counter, which the
// answer cache keeps to count the hits of the same answer.
func (m *metrics) count(view string, qtype uint16, rcode int, proto string, start time.Time) prometheus.Counter {
	c := m.queries.WithLabelValues(view, qtypeLabel(qtype), rcodeLabel(rcode), proto)
	c.Inc()
	m.duration.Observe(time.Since(start).Seconds())
	return c
}

// qtypeLabel keeps the label's values bounded: known types by name, the
// rest as "other".
func qtypeLabel(t uint16) string {
	switch t {
	case mdns.TypeA, mdns.TypeAAAA, mdns.TypeCNAME, mdns.TypeMX, mdns.TypeTXT, mdns.TypeSRV, mdns.TypeCAA,
		mdns.TypePTR, mdns.TypeNS, mdns.TypeSOA, mdns.TypeANY, mdns.TypeAXFR, mdns.TypeIXFR, mdns.TypeHTTPS,
		mdns.TypeSVCB, mdns.TypeDS, mdns.TypeDNSKEY:
		return mdns.TypeToString[t]
	}
	return "other"
}

func rcodeLabel(rc int) string {
	if s, ok := mdns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}
