package health

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Checker's Prometheus series. Every per-target series is
// labelled target=<Key> and deleted when the target goes, so a reload
// that drops a record leaves no stale series behind.
type metrics struct {
	up          *prometheus.GaugeVec
	checks      *prometheus.CounterVec
	transitions *prometheus.CounterVec
	duration    prometheus.Histogram
}

// Label values.
const (
	resultSuccess = "success"
	resultFailure = "failure"
	toUp          = "up"
	toDown        = "down"
)

func newMetrics(reg prometheus.Registerer, namespace string) *metrics {
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "health", Name: "up",
			Help: "1 while the target counts as up (also before its first check), 0 while it is down.",
		}, []string{"target"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "health", Name: "checks_total",
			Help: "Health checks run, by target and result (success or failure).",
		}, []string{"target", "result"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "health", Name: "transitions_total",
			Help: "Times a target went up or down because of its checks.",
		}, []string{"target", "to"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "health", Name: "check_duration_seconds",
			Help:    "How long health checks took, failed ones included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	for _, c := range []prometheus.Collector{m.up, m.checks, m.transitions, m.duration} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				// Two Checkers would delete each other's series; the
				// daemon keeps one and calls Set on reload.
				panic(fmt.Sprintf("health: metrics of namespace %q are already registered; keep one Checker per daemon and call Set on reload", namespace))
			}
			panic(fmt.Sprintf("health: register metrics: %v", err))
		}
	}
	return m
}

// add creates key's series, so that rates start at zero rather than at
// the first failure.
func (m *metrics) add(key string) {
	m.up.WithLabelValues(key).Set(1)
	for _, r := range []string{resultSuccess, resultFailure} {
		m.checks.WithLabelValues(key, r)
	}
	for _, to := range []string{toUp, toDown} {
		m.transitions.WithLabelValues(key, to)
	}
}

// remove deletes every series of key. It names each series rather than
// matching on the target label, which would scan every series per target
// and make dropping many targets quadratic.
func (m *metrics) remove(key string) {
	m.up.DeleteLabelValues(key)
	for _, r := range []string{resultSuccess, resultFailure} {
		m.checks.DeleteLabelValues(key, r)
	}
	for _, to := range []string{toUp, toDown} {
		m.transitions.DeleteLabelValues(key, to)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
