package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/homeedge/edge/dns/forward"
	"github.com/homeedge/edge/dns/geoip"
	"github.com/homeedge/edge/dns/rrl"
	"github.com/homeedge/edge/dns/zone"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/store"
	"github.com/homeedge/edge/lb/health"
)

// Server is edge-dns's service: listeners, the current runtime, and the
// state store of run-time records.
type Server struct {
	// Set by New and not changed after it returned; safe to read from any
	// goroutine without a lock.

	log *slog.Logger
	// metrics are edge-dns's own series on registry, the runner's
	// registry, which the GeoIP databases and resolvers prepared by a
	// reload register on too.
	metrics  *metrics
	registry prometheus.Registerer
	// faults fails prepare steps for tests; nil in production.
	faults *daemon.Faults
	// store holds the run-time records and the zone serials; records
	// and serials are typed views of it.
	store   store.Store
	records *store.Collection[storedRecord]
	serials *store.Collection[storedSerial]
	// health runs the checks of health-checked records; a commit gives
	// it the new runtime's targets (its methods are safe for concurrent
	// use).
	health *health.Checker
	// fcache is the resolver's cache, kept across reloads (safe for
	// concurrent use; a reload's commit sets its config).
	fcache *forward.Cache
	// xfr serves zone transfers and sends NOTIFY; it has its own lock.
	xfr *transfers
	// listen and limits are the configured sockets, which change only on
	// restart (checkRestartOnly).
	listen []string
	limits LimitsConfig
	// servers (TCP) and loops (UDP) are bound by New and served by Run.
	servers []*mdns.Server
	loops   []*udpLoop
	// ready is closed once every TCP server has started.
	ready chan struct{}

	// Atomic pointers: what queries read without a lock. Only a commit
	// (of a reload or a record change) stores rt, geo, fwd and qlog;
	// cache is also replaced whenever the data behind the answers changes
	// (a GeoIP file, a check result).

	// rt is the runtime queries use, built and swapped in whole.
	rt atomic.Pointer[snapshot]
	// geo is the open GeoIP databases, or nil.
	geo atomic.Pointer[geoip.DB]
	// fwd is the resolver, nil without upstreams.
	fwd atomic.Pointer[forward.Forwarder]
	// qlog is the query log, nil when off.
	qlog atomic.Pointer[queryLog]
	// cache holds packed answers to repeated UDP questions. It is
	// replaced whole, never cleared: a reader keeps the cache it loaded
	// for one batch or one answer, and what it stores in a replaced one
	// is never served again.
	cache atomic.Pointer[answerCache]

	// buildMu serializes builds (reloads, record changes, updates): it is
	// held from the start of a prepare until its commit or abort has
	// finished, so a record change never builds on a runtime that a
	// reload is about to replace. The fields below are guarded by it.
	buildMu sync.Mutex
	// geoCfg is geo's config, nil when off: a reload with the same one
	// keeps geo.
	geoCfg *geoip.Config
	// fwdCfg is fwd's config, nil when off: a reload with the same one
	// keeps fwd.
	fwdCfg *forward.Config
	// given is the serial (and content hash) of each zone at the last
	// commit, which serials are computed from when a write to the store
	// failed (see serialFor).
	given map[string]storedSerial
}

// snapshot is everything one config and one set of records produce.
type snapshot struct {
	cfg *config.File[Config]
	// generation is the config generation the runner committed cfg as;
	// a record change keeps it.
	generation int64
	set        *zone.Set
	inside     []netip.Prefix
	keys       map[string]*tsigKey
	// checked maps each health-checked address record to its check key.
	checked map[mdns.RR]string
	limiter *rrl.Limiter
}

type tsigKey struct {
	name      string
	algorithm string
	secret    string
	zones     []string
}

// New opens the state store, prepares the config as a reload would,
// binds the sockets and commits the config as generation 1; Run serves.
// On any error it has released what it took.
func New(env daemon.Env, cfg *config.File[Config]) (daemon.Service[Config], error) {
	if err := env.Faults.Step("open store"); err != nil {
		return nil, err
	}
	st, err := store.OpenBolt(env.StateDir+"/state.db", store.BoltOptions{})
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:      env.Log,
		metrics:  newMetrics(env.Metrics),
		registry: env.Metrics,
		faults:   env.Faults,
		store:    st,
		records:  store.NewCollection[storedRecord](st, "records/"),
		serials:  store.NewCollection[storedSerial](st, "serials/"),
		ready:    make(chan struct{}),
		listen:   slices.Clone(cfg.Section.Listen),
		limits:   cfg.Section.Limits,
		health:   health.New(health.Options{Log: env.Log, Metrics: env.Metrics, Namespace: "edge_dns"}),
		given:    map[string]storedSerial{},
	}
	s.fcache = forward.NewCache(cfg.Section.Cache, forward.CacheOptions{Metrics: env.Metrics, Namespace: "edge_dns"})
	s.xfr = newTransfers(s)
	s.cache.Store(newAnswerCache(s.metrics.cacheHits))
	s.health.Subscribe(func(health.Change) { s.cache.Store(newAnswerCache(s.metrics.cacheHits)) })
	change, err := s.Prepare(cfg, daemon.Request{Reason: "start"})
	if err != nil {
		s.health.Close()
		st.Close()
		return nil, err
	}
	if err := s.bind(cfg.Section); err != nil {
		change.Release()
		s.health.Close()
		st.Close()
		return nil, err
	}
	change.Apply(1)
	return s, nil
}

var _ daemon.Service[Config] = (*Server)(nil)

// bind opens a UDP socket per CPU (SO_REUSEPORT spreads queries across
// them) and one TCP listener for every listen address.
func (s *Server) bind(cfg Config) error {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	sockets := runtime.GOMAXPROCS(0)
	var started sync.WaitGroup
	fail := func(err error) error {
		for _, l := range s.loops {
			l.pc.Close()
		}
		s.loops = nil
		for _, srv := range s.servers {
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
		}
		s.servers = nil
		return err
	}
	for _, addr := range cfg.Listen {
		network := "udp4"
		if netip.MustParseAddrPort(addr).Addr().Is6() {
			network = "udp6"
		}
		if err := s.faults.Step("listen udp " + addr); err != nil {
			return fail(err)
		}
		for range sockets {
			pc, err := lc.ListenPacket(context.Background(), network, addr)
			if err != nil {
				return fail(fmt.Errorf("listen udp %s: %w", addr, err))
			}
			loop, err := newUDPLoop(s, pc, network == "udp6")
			if err != nil {
				pc.Close()
				return fail(fmt.Errorf("listen udp %s: %w", addr, err))
			}
			s.loops = append(s.loops, loop)
		}
		if err := s.faults.Step("listen tcp " + addr); err != nil {
			return fail(err)
		}
		ln, err := lc.Listen(context.Background(), "tcp"+network[3:], addr)
		if err != nil {
			return fail(fmt.Errorf("listen tcp %s: %w", addr, err))
		}
		idle := cfg.Limits.TCPIdle.D()
		started.Add(1)
		s.servers = append(s.servers, &mdns.Server{
			Listener:          newTCPGate(ln, cfg.Limits.TCPConnections, cfg.Limits.perClient(), s.metrics),
			Handler:           s,
			ReadTimeout:       idle,
			WriteTimeout:      idle,
			IdleTimeout:       func() time.Duration { return idle },
			MaxTCPQueries:     1000,
			NotifyStartedFunc: started.Done,
			TsigProvider:      keyring{s},
			MsgInvalidFunc:    s.invalid,
			MsgAcceptFunc:     s.accept,
		})
	}
	go func() {
		started.Wait()
		close(s.ready)
	}()
	return nil
}

// invalid counts a message that did not parse; miekg/dns answers FORMERR
// where it can.
func (s *Server) invalid([]byte, error) { s.metrics.malformed.Inc() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, len(s.servers)+len(s.loops))
	for _, srv := range s.servers {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	for _, l := range s.loops {
		go func() {
			if err := l.run(); err != nil {
				errc <- err
			}
		}()
	}
	go s.xfr.run(ctx)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("dns listener: %w", err)
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, l := range s.loops {
		l.pc.Close()
	}
	for _, srv := range s.servers {
		srv.ShutdownContext(shut)
	}
	s.health.Close()
	if db := s.geo.Load(); db != nil {
		db.Close()
	}
	if f := s.fwd.Load(); f != nil {
		f.Close()
	}
	s.qlog.Swap(nil).close()
	return errors.Join(err, s.store.Close())
}

// Ready implements daemon.Readier.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Prepare implements daemon.Service: it checks the settings that change
// only on restart, then prepares the runtime of cfg (see prepare). The
// Change it returns holds buildMu until it is committed or aborted.
func (s *Server) Prepare(cfg *config.File[Config], req daemon.Request) (daemon.Change, error) {
	if err := s.faults.Step("check restart-only settings"); err != nil {
		return daemon.Change{}, err
	}
	if err := s.checkRestartOnly(cfg.Section, req); err != nil {
		return daemon.Change{}, err
	}
	s.buildMu.Lock()
	p, err := s.prepareReload(cfg)
	if err != nil {
		s.buildMu.Unlock()
		return daemon.Change{}, err
	}
	var once sync.Once
	end := func(f func()) {
		once.Do(func() {
			defer s.buildMu.Unlock()
			f()
		})
	}
	return daemon.Change{
		Commit: func(gen int64) { end(func() { s.commit(p, gen) }) },
		Abort:  func() { end(p.abort) },
	}, nil
}

// checkRestartOnly refuses a config whose sockets differ from the bound
// ones, and a reload that asks to be confirmed: edge-dns has no undo.
func (s *Server) checkRestartOnly(cfg Config, req daemon.Request) error {
	var errs []error
	if !slices.Equal(cfg.Listen, s.listen) {
		errs = append(errs, errors.New("dns.listen: the listeners change only on restart; restart edge-dns to apply it"))
	}
	if cfg.Limits != s.limits {
		errs = append(errs, errors.New("dns.limits: the TCP limits are set on the listeners and change only on restart; restart edge-dns to apply them"))
	}
	if req.Confirm > 0 {
		errs = append(errs, errors.New("edge-dns cannot undo a reload, so it cannot wait for a confirmation"))
	}
	return errors.Join(errs...)
}

// serialKey makes a zone origin a store name (no slashes in names).
func serialKey(origin string) string {
	if origin == "." {
		return "root"
	}
	return origin
}

// originOfKey is serialKey's inverse.
func originOfKey(name string) string {
	if name == "root" {
		return "."
	}
	return name
}

// storedSerial is a zone's serial and the content it stands for.
type storedSerial struct {
	Hash   uint64 `json:"hash"`
	Serial uint32 `json:"serial"`
}

func fqdns(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = zone.Fqdn(n)
	}
	return out
}

func addrOfRR(rr mdns.RR) netip.Addr {
	switch v := rr.(type) {
	case *mdns.A:
		a, _ := netip.AddrFromSlice(v.A.To4())
		return a
	case *mdns.AAAA:
		a, _ := netip.AddrFromSlice(v.AAAA)
		return a
	}
	return netip.Addr{}
}

// up reports whether a record may be answered: records without a check
// always, checked ones while their check passes.
func (rt *snapshot) up(h *health.Checker) func(mdns.RR) bool {
	if len(rt.checked) == 0 {
		return nil
	}
	return func(rr mdns.RR) bool {
		key, ok := rt.checked[rr]
		return !ok || h.Up(key)
	}
}

// viewIndex is v's position in the snapshot's views.
func (rt *snapshot) viewIndex(v *zone.View) int {
	for i, x := range rt.set.Views() {
		if x == v {
			return i
		}
	}
	return -1
}
