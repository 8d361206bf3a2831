package firewall

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/firewall/compile"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// metrics are edge-firewall's own metrics. Rule, zone and set figures are
// read from the kernel at scrape time by a collector (counters).
type metrics struct {
	applies      *prometheus.CounterVec
	applySeconds prometheus.Gauge
	rollbacks    *prometheus.CounterVec
	pending      prometheus.Gauge
	// drift counts restores of a table changed by someone else.
	drift      *prometheus.CounterVec
	banChanges *prometheus.CounterVec
	rules      prometheus.Gauge
	elements   prometheus.Gauge
	readErrors prometheus.Counter
	logged     *prometheus.CounterVec
	logLost    prometheus.Counter
}

func newMetrics(s *Service, reg prometheus.Registerer) *metrics {
	m := &metrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_firewall_applies_total", Help: "Ruleset applies (start, reload, rollback) by result.",
		}, []string{"result"}),
		applySeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_firewall_apply_duration_seconds", Help: "How long the last successful apply took.",
		}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_firewall_rollbacks_total", Help: "Unconfirmed applies rolled back, by result.",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_firewall_confirm_pending", Help: "1 while an apply waits for `edgectl fw confirm`.",
		}),
		banChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_firewall_ban_changes_total", Help: "Bans added or refreshed (ban) and lifted (unban) at run time.",
		}, []string{"op"}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_firewall_rules", Help: "Rules in the loaded ruleset.",
		}),
		elements: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_firewall_set_elements_declared", Help: "Set elements the loaded ruleset declares, all sets together.",
		}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_firewall_kernel_read_errors_total", Help: "Scrapes whose kernel counters could not be read.",
		}),
	}
	m.logged = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_firewall_logged_packets_total", Help: "Packets logged through the NFLOG group (log.to: daemon), by log prefix.",
	}, []string{"prefix"})
	m.logLost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edge_firewall_packet_log_lost_total", Help: "Logged packets the kernel dropped before edge-firewall read them.",
	})
	m.applies.WithLabelValues("success")
	m.applies.WithLabelValues("failure")
	m.rollbacks.WithLabelValues("success")
	m.rollbacks.WithLabelValues("failure")
	m.banChanges.WithLabelValues("ban")
	m.banChanges.WithLabelValues("unban")
	m.drift = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_firewall_drift_restores_total", Help: "Times table inet edge was found deleted (table) or its rules changed (rules) by someone else, and restored.",
	}, []string{"what"})
	m.drift.WithLabelValues("table")
	m.drift.WithLabelValues("rules")
	reg.MustRegister(m.drift)
	reg.MustRegister(m.applies, m.applySeconds, m.rollbacks, m.pending, m.banChanges, m.rules, m.elements, m.readErrors, m.logged, m.logLost, &kernelCollector{s: s})
	return m
}

func (m *metrics) setSummary(sum ctlapi.FWSummary) {
	m.rules.Set(float64(sum.Rules))
	m.elements.Set(float64(sum.Elements))
}

var (
	descRulePackets = prometheus.NewDesc("edge_firewall_rule_packets_total",
		"Packets that matched a rule, by rule ID and chain.", []string{"rule", "chain"}, nil)
	descRuleBytes = prometheus.NewDesc("edge_firewall_rule_bytes_total",
		"Bytes that matched a rule, by rule ID and chain.", []string{"rule", "chain"}, nil)
	descZonePackets = prometheus.NewDesc("edge_firewall_zone_packets_total",
		"Packets from a zone that reached its chain, by zone and hook (input: to the router, forward: through it).", []string{"zone", "hook"}, nil)
	descZoneBytes = prometheus.NewDesc("edge_firewall_zone_bytes_total",
		"Bytes from a zone that reached its chain, by zone and hook.", []string{"zone", "hook"}, nil)
	descZoneDropped = prometheus.NewDesc("edge_firewall_zone_dropped_packets_total",
		"Packets from a zone dropped or rejected by its chain (rules and policy), by zone and hook.", []string{"zone", "hook"}, nil)
	descSetElements = prometheus.NewDesc("edge_firewall_set_elements",
		"Elements a set holds in the kernel (timeout sets) or was loaded with.", []string{"set"}, nil)
	descBans = prometheus.NewDesc("edge_firewall_bans",
		"Addresses in the kernel's ban sets: run-time bans and bans.static.", nil, nil)
)

// kernelCollector reads rule counters and ban set sizes from the kernel
// when scraped.
type kernelCollector struct{ s *Service }

func (k *kernelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRulePackets, descRuleBytes, descZonePackets, descZoneBytes, descZoneDropped, descSetElements, descBans} {
		ch <- d
	}
}

type zoneKey struct{ zone, hook string }

func (k *kernelCollector) Collect(ch chan<- prometheus.Metric) {
	s := k.s
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur == nil || cur.at.IsZero() {
		return // nothing applied yet
	}
	counters, err := s.kernel.Counters()
	if err != nil {
		s.metrics.readErrors.Inc()
		s.log.Debug("metrics: read counters", "err", err)
		return
	}
	for _, c := range cur.rs.Chains {
		for _, r := range c.Rules {
			if cnt, ok := counters[r.ID]; ok {
				ch <- prometheus.MustNewConstMetric(descRulePackets, prometheus.CounterValue, float64(cnt.Packets), r.ID, c.Name)
				ch <- prometheus.MustNewConstMetric(descRuleBytes, prometheus.CounterValue, float64(cnt.Bytes), r.ID, c.Name)
			}
		}
	}
	for zk, t := range zoneTotals(cur.rs, counters) {
		ch <- prometheus.MustNewConstMetric(descZonePackets, prometheus.CounterValue, float64(t.packets), zk.zone, zk.hook)
		ch <- prometheus.MustNewConstMetric(descZoneBytes, prometheus.CounterValue, float64(t.bytes), zk.zone, zk.hook)
		ch <- prometheus.MustNewConstMetric(descZoneDropped, prometheus.CounterValue, float64(t.dropped), zk.zone, zk.hook)
	}
	bans := 0
	for _, st := range cur.rs.Sets {
		n := cur.sizes[st.Name]
		if st.Timeout || st.Dynamic {
			els, err := s.kernel.SetElements(st.Name)
			if err != nil {
				s.metrics.readErrors.Inc()
				continue
			}
			n = len(els)
		}
		if st.Timeout && !st.Dynamic {
			bans += n
		}
		ch <- prometheus.MustNewConstMetric(descSetElements, prometheus.GaugeValue, float64(n), st.Name)
	}
	ch <- prometheus.MustNewConstMetric(descBans, prometheus.GaugeValue, float64(bans))
}

// zoneOfChain reads a zone chain's name: input_lan is zone lan's input
// chain.
// zoneTotal is what reached one zone chain and what it dropped.
type zoneTotal struct{ packets, bytes, dropped uint64 }

// zoneTotals sums rule counters by zone chain: the base chains' jumps
// into it are its traffic, and its rules that drop or reject (jump to
// compile.RejectChain) what it dropped.
func zoneTotals(rs *ruleset.Ruleset, counters map[string]nft.Counter) map[zoneKey]zoneTotal {
	out := map[zoneKey]zoneTotal{}
	for _, c := range rs.Chains {
		zk, inZone := zoneOfChain(c.Name)
		for _, r := range c.Rules {
			cnt, ok := counters[r.ID]
			if !ok {
				continue
			}
			if c.Hook != "" && r.Verdict == ruleset.Jump {
				if tk, ok := zoneOfChain(r.Target); ok {
					t := out[tk]
					t.packets += cnt.Packets
					t.bytes += cnt.Bytes
					out[tk] = t
				}
			}
			rejects := r.Verdict == ruleset.Reject || r.Verdict == ruleset.Jump && r.Target == compile.RejectChain
			if inZone && (r.Verdict == ruleset.Drop || rejects) {
				t := out[zk]
				t.dropped += cnt.Packets
				out[zk] = t
			}
		}
	}
	return out
}

func zoneOfChain(name string) (zoneKey, bool) {
	for _, hook := range []string{"input", "forward", "output"} {
		if z, ok := strings.CutPrefix(name, hook+"_"); ok && z != "" {
			return zoneKey{zone: z, hook: hook}, true
		}
	}
	return zoneKey{}, false
}
