package vpn

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are edge-vpn's own metrics; per-peer figures are read from the
// devices at scrape time.
type metrics struct {
	changes    *prometheus.CounterVec
	nameErrors prometheus.Counter
	// kernelErrors counts what the kernel refused after a commit or at a
	// reconcile, by what: interface (its settings), peers, access.
	kernelErrors *prometheus.CounterVec
	// drift counts kernel state put back after someone else removed or
	// changed it: the access table, an interface.
	drift *prometheus.CounterVec
}

func newMetrics(s *Service, reg prometheus.Registerer) *metrics {
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_vpn_peer_changes_total", Help: "Peers added, updated and removed through the admin API.",
		}, []string{"op"}),
		nameErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_vpn_name_update_errors_total", Help: "DNS updates of peer names that failed (retried at the next reconcile).",
		}),
		kernelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_vpn_kernel_errors_total", Help: "Changes the kernel refused: interface settings, peers, access limits (retried at the next reconcile).",
		}, []string{"what"}),
	}
	for _, op := range []string{"add", "update", "remove"} {
		m.changes.WithLabelValues(op)
	}
	for _, what := range []string{"interface", "peers", "access"} {
		m.kernelErrors.WithLabelValues(what)
	}
	m.drift = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_vpn_drift_restores_total", Help: "Kernel state found removed or changed by someone else and put back: the access table (access), a WireGuard interface (interface).",
	}, []string{"what"})
	for _, what := range []string{"access", "interface"} {
		m.drift.WithLabelValues(what)
	}
	reg.MustRegister(m.changes, m.nameErrors, m.kernelErrors, m.drift, &peerCollector{s: s})
	return m
}

var (
	descHandshake = prometheus.NewDesc("edge_vpn_peer_last_handshake_seconds",
		"Unix time of the peer's last handshake (0: never).", []string{"interface", "peer"}, nil)
	descRx = prometheus.NewDesc("edge_vpn_peer_receive_bytes_total",
		"Bytes received from the peer.", []string{"interface", "peer"}, nil)
	descTx = prometheus.NewDesc("edge_vpn_peer_transmit_bytes_total",
		"Bytes sent to the peer.", []string{"interface", "peer"}, nil)
	descEnabled = prometheus.NewDesc("edge_vpn_peer_enabled",
		"1 when the peer is on its device (enabled and not expired).", []string{"interface", "peer"}, nil)
	descPeers = prometheus.NewDesc("edge_vpn_peers",
		"Peers in the registry by state (active, disabled, expired).", []string{"interface", "state"}, nil)
	descActive = prometheus.NewDesc("edge_vpn_peers_connected",
		"Peers with a handshake in the last three minutes.", []string{"interface"}, nil)
)

type peerCollector struct{ s *Service }

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHandshake, descRx, descTx, descEnabled, descPeers, descActive} {
		ch <- d
	}
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	peers, err := c.s.listPeers(context.Background())
	if err != nil {
		return
	}
	states := map[[2]string]int{}
	connected := map[string]int{}
	for _, w := range c.s.currentInterfaces() {
		for _, st := range []string{"active", "disabled", "expired"} {
			states[[2]string{w, st}] = 0
		}
		connected[w] = 0
	}
	now := c.s.now()
	for _, p := range peers {
		states[[2]string{p.Interface, p.State}]++
		hs := 0.0
		if p.LastHandshake != nil {
			hs = float64(p.LastHandshake.Unix())
			if now.Sub(*p.LastHandshake) < activeWithin && p.State == "active" {
				connected[p.Interface]++
			}
		}
		on := 0.0
		if p.State == "active" {
			on = 1
		}
		ch <- prometheus.MustNewConstMetric(descHandshake, prometheus.GaugeValue, hs, p.Interface, p.Name)
		ch <- prometheus.MustNewConstMetric(descRx, prometheus.CounterValue, float64(p.RxBytes), p.Interface, p.Name)
		ch <- prometheus.MustNewConstMetric(descTx, prometheus.CounterValue, float64(p.TxBytes), p.Interface, p.Name)
		ch <- prometheus.MustNewConstMetric(descEnabled, prometheus.GaugeValue, on, p.Interface, p.Name)
	}
	for k, n := range states {
		ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	for w, n := range connected {
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(n), w)
	}
}

// currentInterfaces names the configured interfaces.
func (s *Service) currentInterfaces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, w := range s.cfg.Section.WireGuard {
		out = append(out, w.Interface)
	}
	return out
}
