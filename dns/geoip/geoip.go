// Package geoip looks up the country, continent and autonomous system of a
// client address in MaxMind DB files (GeoLite2, GeoIP2, DB-IP), for
// edge-dns's location-chosen answers.
//
// Lookup sits on the DNS hot path. It walks the database's search tree and
// then finds the decoded record in a small lock-free cache keyed by the
// record's offset in the file: a country database has a few thousand
// distinct records at most, so once the cache is warm a lookup decodes
// nothing and allocates nothing.
//
// The files are read whole into memory rather than mapped, so an operator
// (or geoipupdate) may replace, truncate or delete a file at any time
// without a concurrent lookup ever touching changed bytes. A goroutine
// started by Open polls the files every Config.CheckInterval; a changed
// file is parsed, checked and swapped in atomically, and a bad one is
// logged, counted and ignored while the last good database keeps
// answering. Close stops the polling; the garbage collector frees
// databases no lookup holds any more.
package geoip

import (
	"errors"
	"fmt"
	"github.com/homeedge/edge/internal/ctlapi"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are what the caller, not the config file, decides.
type Options struct {
	// Log receives load and reload messages; nil discards them.
	Log *slog.Logger
	// Metrics, when set, gets the package's metrics (see Open).
	Metrics prometheus.Registerer
	// Namespace prefixes metric names, such as "edge_dns"; that is also
	// the default.
	Namespace string
}

// Result is what the databases know about an address. Zero fields are
// unknown: the address is in no network of the database, the record lacks
// the field, or that database is not configured.
type Result struct {
	// Country is an ISO 3166-1 alpha-2 code in upper case, such as "DE".
	// Where a record has no country (some anycast and satellite networks),
	// the registered country is used.
	Country string
	// Continent is a two-letter continent code: AF, AN, AS, EU, NA, OC, SA.
	Continent string
	// ASN is the autonomous system number.
	ASN uint32
	// CountryPrefix and ASNPrefix are the networks of the country and ASN
	// databases that contain the address, such as 198.51.100.0/24: every
	// address in them gets the same answer, so the prefix length is the
	// ECS scope (RFC 7871) and a safe cache bucket. They are set when the
	// address is in no network with data too (then they are the empty
	// network around it), and left invalid when that database is not
	// configured. IPv4 addresses, mapped or not, always get IPv4 prefixes.
	CountryPrefix, ASNPrefix netip.Prefix
}

// DB holds the loaded databases and keeps them current. Its methods are
// safe for concurrent use.
type DB struct {
	country, asn *source // nil when not configured
	sources      []*source
	log          *slog.Logger
	metrics      *collector

	// reloadMu serializes checks (the poller's and Reload's) and the
	// OnChange calls that follow a swap.
	reloadMu sync.Mutex

	// hookMu guards hooks.
	hookMu sync.Mutex
	hooks  []func()

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Open loads the configured databases and starts polling them for changes.
// A configured file that is missing, unreadable, not a MaxMind DB, corrupt
// or of the wrong type is an error naming the file and the problem.
//
// With opts.Metrics set, Open registers (names with opts.Namespace):
//
//	<ns>_geoip_reloads_total{db,result}      reloads of changed files, result success or failure
//	<ns>_geoip_build_epoch_seconds{db}       build time of the loaded database, from its metadata
//	<ns>_geoip_decode_errors_total{db}       records that could not be decoded (answered as unknown)
//
// db is "country" or "asn". A DB opened later on the same registerer (a
// config reload) takes the metrics over; counters carry on. Closing it
// gives the gauges back to the newest DB still open, so a reload that
// opened a DB and then failed leaves them as they were. There is no
// per-lookup counter: an atomic add on a cache line shared by every core
// would cost more than a cached lookup, and edge-dns counts its
// location-chosen answers anyway.
func Open(cfg Config, opts Options) (*DB, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "geoip")
	ns := opts.Namespace
	if ns == "" {
		ns = "edge_dns"
	}
	interval := cfg.CheckInterval.D()
	if interval <= 0 {
		interval = DefaultCheckInterval.D()
	}
	db := &DB{log: log, stop: make(chan struct{}), done: make(chan struct{})}
	var errs []error
	for _, f := range []struct {
		k    kind
		path string
		dst  **source
	}{{kindCountry, cfg.Country, &db.country}, {kindASN, cfg.ASN, &db.asn}} {
		if f.path == "" {
			continue
		}
		s := &source{kind: f.k, path: f.path}
		d, _, err := loadFile(f.path, f.k)
		if err != nil {
			errs = append(errs, s.wrap(err))
			continue
		}
		s.cur.Store(d)
		*f.dst = s
		db.sources = append(db.sources, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	m, err := registerCollector(ns, opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("geoip metrics: %w", err)
	}
	db.metrics = m
	for _, s := range db.sources {
		s.decodeErrors = m.decodeErrors.WithLabelValues(s.kind.String())
		m.reloads.WithLabelValues(s.kind.String(), "success")
		m.reloads.WithLabelValues(s.kind.String(), "failure")
		d := s.cur.Load()
		log.Info("geoip database loaded", "db", s.kind.String(), "path", s.path, "type", d.typ, "build_time", d.built)
	}
	m.add(db)

	if len(db.sources) == 0 {
		close(db.done)
		return db, nil
	}
	go db.poll(interval)
	return db, nil
}

// Lookup returns what the databases know about addr. IPv4-mapped IPv6
// addresses are looked up as IPv4 and zones are ignored. It never fails: a
// record that cannot be decoded is answered as unknown and counted. It
// takes no lock and, once a record is cached, allocates nothing.
func (db *DB) Lookup(addr netip.Addr) Result {
	var r Result
	if !addr.IsValid() {
		return r
	}
	addr = addr.Unmap()
	if addr.Zone() != "" {
		addr = addr.WithZone("")
	}
	if s := db.country; s != nil {
		rec, p := s.lookup(addr)
		r.Country, r.Continent, r.CountryPrefix = rec.country, rec.continent, p
	}
	if s := db.asn; s != nil {
		rec, p := s.lookup(addr)
		r.ASN, r.ASNPrefix = rec.asn, p
	}
	return r
}

// OnChange registers fn to be called after a changed file was loaded and
// swapped in, so that answers computed from the old database can be
// dropped. Calls are made one at a time from the goroutine that swapped
// (the poller, or Reload's caller); fn must not call Reload.
func (db *DB) OnChange(fn func()) {
	db.hookMu.Lock()
	defer db.hookMu.Unlock()
	db.hooks = append(db.hooks, fn)
}

// Reload checks every file now (edge-dns calls it on SIGHUP) and loads
// those that differ from the loaded ones, retrying files that failed
// before. It returns what failed, naming each file; the databases that
// failed keep answering from the last good file.
func (db *DB) Reload() error {
	return db.check(true)
}

// Close stops polling the files, waiting for a check in progress. Lookups
// keep working on the databases loaded last, so requests in flight while
// edge-dns swaps one DB for another finish normally.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stop)
		<-db.done
		db.metrics.remove(db)
	})
	return nil
}

// Status describes the configured databases, country first.
func (db *DB) Status() []ctlapi.DNSGeoIPDB {
	out := make([]ctlapi.DNSGeoIPDB, 0, len(db.sources))
	for _, s := range db.sources {
		d := s.cur.Load()
		st := ctlapi.DNSGeoIPDB{DB: s.kind.String(), Path: s.path, Type: d.typ, BuildTime: d.built, LoadedAt: d.loadedAt}
		s.mu.Lock()
		st.LastError, st.LastErrorAt = s.lastErr, s.lastErrAt
		s.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// poll checks the files every interval until Close.
func (db *DB) poll(interval time.Duration) {
	defer close(db.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			db.check(false)
		}
	}
}

// check loads the files that changed and calls the hooks if any was
// swapped. With force it also retries files whose last load failed.
func (db *DB) check(force bool) error {
	db.reloadMu.Lock()
	defer db.reloadMu.Unlock()
	var errs []error
	changed := false
	for _, s := range db.sources {
		swapped, err := db.checkSource(s, force)
		changed = changed || swapped
		if err != nil {
			errs = append(errs, err)
		}
	}
	if changed {
		db.hookMu.Lock()
		hooks := slices.Clone(db.hooks)
		db.hookMu.Unlock()
		for _, fn := range hooks {
			fn()
		}
	}
	return errors.Join(errs...)
}

// checkSource loads s's file if it is not the loaded one. Without force, a
// file that already failed and has not changed since is not read again:
// re-reading and verifying a large bad file every few seconds would be
// waste, and its failure was already reported.
func (db *DB) checkSource(s *source, force bool) (bool, error) {
	cur := s.cur.Load()
	id, err := statFile(s.path)
	if err == nil {
		if id == cur.id {
			s.clearFailure()
			return false, nil
		}
		if !force {
			if err := s.unchangedFailure(id); err != nil {
				return false, err
			}
		}
		var d *database
		d, id, err = loadFile(s.path, s.kind)
		if err == nil {
			s.cur.Store(d)
			s.clearFailure()
			db.metrics.reloads.WithLabelValues(s.kind.String(), "success").Inc()
			db.log.Info("geoip database reloaded", "db", s.kind.String(), "path", s.path, "type", d.typ, "build_time", d.built)
			return true, nil
		}
	}
	err = s.wrap(err)
	if s.recordFailure(id, err) {
		db.metrics.reloads.WithLabelValues(s.kind.String(), "failure").Inc()
		db.log.Warn("geoip database not reloaded; keeping the last good one", "db", s.kind.String(), "path", s.path, "err", err)
	}
	return false, err
}
