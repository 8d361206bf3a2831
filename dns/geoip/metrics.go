package geoip

import (
	"errors"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the package's metrics. One collector serves a
// registerer for its lifetime: edge-dns builds a new DB on a config reload
// while the old one still answers, and a second registration of the same
// names would fail, so the new DB takes over the registered collector
// (counters carry on) and the build-time gauges follow the newest DB
// still open. A DB opened for a reload that is then abandoned (closed
// before the old one) gives the gauges back to the old one.
type collector struct {
	// mu guards open.
	mu sync.Mutex
	// open are the DBs not yet closed, oldest first; the gauges describe
	// the last.
	open         []*DB
	reloads      *prometheus.CounterVec
	decodeErrors *prometheus.CounterVec
	buildEpoch   *prometheus.Desc
}

func newCollector(ns string) *collector {
	return &collector{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "_geoip_reloads_total",
			Help: "Loads of changed GeoIP database files by database and result (success or failure; a failure keeps the last good file).",
		}, []string{"db", "result"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "_geoip_decode_errors_total",
			Help: "GeoIP records that could not be decoded and were answered as unknown.",
		}, []string{"db"}),
		buildEpoch: prometheus.NewDesc(ns+"_geoip_build_epoch_seconds",
			"Build time of the loaded GeoIP database, from its metadata, in Unix seconds.",
			[]string{"db"}, nil),
	}
}

// registerCollector returns the collector registered on reg for ns,
// registering a new one if there is none. Without reg the collector is
// kept unregistered, so the code that counts needs no nil checks.
func registerCollector(ns string, reg prometheus.Registerer) (*collector, error) {
	c := newCollector(ns)
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(*collector); ok {
				return prev, nil
			}
		}
		return nil, err
	}
	return c, nil
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.reloads.Describe(ch)
	c.decodeErrors.Describe(ch)
	ch <- c.buildEpoch
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.reloads.Collect(ch)
	c.decodeErrors.Collect(ch)
	c.mu.Lock()
	var db *DB
	if len(c.open) > 0 {
		db = c.open[len(c.open)-1]
	}
	c.mu.Unlock()
	if db == nil {
		return
	}
	for _, s := range db.sources {
		d := s.cur.Load()
		ch <- prometheus.MustNewConstMetric(c.buildEpoch, prometheus.GaugeValue, float64(d.built.Unix()), s.kind.String())
	}
}

// add makes db the newest open DB.
func (c *collector) add(db *DB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open = append(c.open, db)
}

// remove forgets db, once closed.
func (c *collector) remove(db *DB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open = slices.DeleteFunc(c.open, func(o *DB) bool { return o == db })
}
