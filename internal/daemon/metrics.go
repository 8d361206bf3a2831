package daemon

import (
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/homeedge/edge/internal/suite"
)

// runnerMetrics are the metrics every daemon exports about itself.
type runnerMetrics struct {
	reloads       *prometheus.CounterVec
	generation    prometheus.Gauge
	lastReload    prometheus.Gauge
	ready         prometheus.Gauge
	adminRequests *prometheus.CounterVec
}

func newRunnerMetrics(daemon string, reg *prometheus.Registry) *runnerMetrics {
	ns := "edge_" + daemon
	m := &runnerMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "_config_reloads_total",
			Help: "Config reloads by result (success or failure).",
		}, []string{"result"}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ns + "_config_generation",
			Help: "Configs applied since start: 1 for the first, +1 per successful reload.",
		}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ns + "_config_last_reload_success_timestamp_seconds",
			Help: "When the config was last applied successfully, in Unix seconds.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ns + "_ready",
			Help: "1 while the daemon serves.",
		}),
		adminRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "_admin_requests_total",
			Help: "Admin API requests by route and status code.",
		}, []string{"path", "code"}),
	}
	m.lastReload.SetToCurrentTime()
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        ns + "_build_info",
		Help:        "Build of the running daemon; always 1.",
		ConstLabels: prometheus.Labels{"version": suite.BuildVersion(), "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(m.reloads, m.generation, m.lastReload, m.ready, m.adminRequests, info,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// newMetricsServer serves /metrics, /healthz (the process answers) and
// /readyz (the daemon serves).
func newMetricsServer(reg *prometheus.Registry, ready *atomic.Bool) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}
