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
	"golang.org/x/net/netutil"
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
	log     *slog.Logger
	metrics *metrics
	store   store.Store
	records *store.Collection[storedRecord]
	serials *store.Collection[storedSerial]

	// rt is the runtime queries use; a reload or a record change builds a
	// new one and swaps it in whole.
	rt atomic.Pointer[snapshot]
	// buildMu serializes rebuilds (reloads, record changes, updates).
	buildMu sync.Mutex

	health *health.Checker
	// geo is the open GeoIP databases, or nil; geoCfg is their config,
	// guarded by buildMu.
	geo atomic.Pointer[geoip.DB]
	// fcache is the resolver's cache, kept across reloads; fwd is the
	// resolver, nil without upstreams. fwdCfg is fwd's config, guarded by
	// buildMu.
	fcache *forward.Cache
	fwd    atomic.Pointer[forward.Forwarder]
	fwdCfg *forward.Config
	// qlog is the query log, nil when off.
	qlog     atomic.Pointer[queryLog]
	geoCfg   *geoip.Config
	registry prometheus.Registerer

	servers []*mdns.Server
	loops   []*udpLoop
	// cache holds packed answers to repeated UDP questions; it is replaced
	// whole when the data or the health of a record changes.
	cache atomic.Pointer[answerCache]
	ready chan struct{}
	// listen is the configured listen list; it changes only on restart.
	listen []string
	xfr    *transfers
}

// snapshot is everything one config and one set of records produce.
type snapshot struct {
	cfg    *config.File[Config]
	set    *zone.Set
	inside []netip.Prefix
	keys   map[string]*tsigKey
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

// New builds the server and binds its sockets; Run serves.
func New(env daemon.Env, cfg *config.File[Config]) (daemon.Service[Config], error) {
	st, err := store.OpenBolt(env.StateDir+"/state.db", store.BoltOptions{})
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:      env.Log,
		metrics:  newMetrics(env.Metrics),
		store:    st,
		records:  store.NewCollection[storedRecord](st, "records/"),
		serials:  store.NewCollection[storedSerial](st, "serials/"),
		ready:    make(chan struct{}),
		listen:   slices.Clone(cfg.Section.Listen),
		health:   health.New(health.Options{Log: env.Log, Metrics: env.Metrics, Namespace: "edge_dns"}),
		registry: env.Metrics,
	}
	s.fcache = forward.NewCache(cfg.Section.Cache, forward.CacheOptions{Metrics: env.Metrics, Namespace: "edge_dns"})
	s.xfr = newTransfers(s)
	s.cache.Store(newAnswerCache(s.metrics.cacheHits))
	s.health.Subscribe(func(health.Change) { s.cache.Store(newAnswerCache(s.metrics.cacheHits)) })
	if err := s.rebuild(cfg, "start"); err != nil {
		if db := s.geo.Load(); db != nil {
			db.Close()
		}
		s.health.Close()
		st.Close()
		return nil, err
	}
	if err := s.bind(cfg.Section); err != nil {
		s.health.Close()
		st.Close()
		return nil, err
	}
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
		ln, err := lc.Listen(context.Background(), "tcp"+network[3:], addr)
		if err != nil {
			return fail(fmt.Errorf("listen tcp %s: %w", addr, err))
		}
		idle := cfg.Limits.TCPIdle.D()
		started.Add(1)
		s.servers = append(s.servers, &mdns.Server{
			Listener:          netutil.LimitListener(ln, cfg.Limits.TCPConnections),
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

// Prepare implements daemon.Service. It still builds and swaps in one
// step; the commit has nothing left to do.
func (s *Server) Prepare(cfg *config.File[Config], _ daemon.Request) (daemon.Change, error) {
	return daemon.Change{}, s.reload(cfg)
}

func (s *Server) reload(cfg *config.File[Config]) error {
	if !slices.Equal(cfg.Section.Listen, s.listen) {
		return errors.New("dns.listen: the listeners change only on restart; restart edge-dns to apply it")
	}
	return s.rebuild(cfg, "reload")
}

// Status implements daemon.Statuser.
func (s *Server) Status() any {
	rt := s.rt.Load()
	type zoneStatus struct {
		Name    string `json:"name"`
		Serial  uint32 `json:"serial"`
		Inside  bool   `json:"inside,omitempty"`
		Reverse bool   `json:"reverse,omitempty"`
	}
	var zones []zoneStatus
	for _, z := range rt.set.Zones() {
		zones = append(zones, zoneStatus{Name: z.Origin, Serial: z.SOA.Serial, Inside: z.Inside, Reverse: z.Generated})
	}
	slices.SortFunc(zones, func(a, b zoneStatus) int { return compareStrings(a.Name, b.Name) })
	var views []string
	for _, v := range rt.set.Views() {
		views = append(views, v.Name)
	}
	st := map[string]any{"zones": zones, "views": views, "health": s.health.Status()}
	if db := s.geo.Load(); db != nil {
		st["geoip"] = db.Status()
	}
	if f := s.fwd.Load(); f != nil {
		st["resolver"] = f.Status()
	}
	return st
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rebuild builds a runtime from cfg and the stored records and swaps it
// in. Zones whose content changed get a new serial and a NOTIFY.
func (s *Server) rebuild(cfg *config.File[Config], reason string) error {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	ctx := context.Background()
	items, _, err := s.records.List(ctx)
	if err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	var dynamic []mdns.RR
	for _, it := range items {
		rr, err := mdns.NewRR(it.Value.RR)
		if err != nil || rr == nil {
			s.log.Warn("stored record unreadable; skipped", "record", it.Name, "err", err)
			continue
		}
		dynamic = append(dynamic, rr)
	}
	commitGeo, abortGeo, err := s.prepareGeoIP(cfg.Section.GeoIP)
	if err != nil {
		return err
	}
	commitFwd, abortFwd, err := s.prepareForwarder(cfg.Section.Upstreams)
	if err != nil {
		abortGeo()
		return err
	}
	ok := false
	defer func() {
		if !ok {
			abortGeo()
			abortFwd()
		}
	}()
	in := cfg.Section.buildInput(&cfg.Site, dynamic)
	var serialErr error
	changed := map[string]uint32{}
	in.Serial = func(origin string, h uint64) uint32 {
		serial, isNew, err := s.serialFor(ctx, origin, h)
		if err != nil {
			serialErr = err
		}
		if isNew {
			changed[origin] = serial
		}
		return serial
	}
	set, err := zone.Build(in)
	if err != nil {
		return err
	}
	if serialErr != nil {
		return serialErr
	}
	keys := map[string]*tsigKey{}
	for _, k := range cfg.Section.Updates.Keys {
		secret, err := k.secret()
		if err != nil {
			return err
		}
		keys[mdns.Fqdn(k.Name)] = &tsigKey{name: mdns.Fqdn(k.Name), algorithm: tsigAlgorithms[k.Algorithm], secret: secret, zones: fqdns(k.Zones)}
	}
	rt := &snapshot{cfg: cfg, set: set, inside: cfg.Section.insidePrefixes(&cfg.Site), keys: keys, checked: map[mdns.RR]string{}}
	// Unchanged limits keep their counts across a reload.
	if prev := s.rt.Load(); prev != nil && prev.limiter.Config() == cfg.Section.RRL {
		rt.limiter = prev.limiter
	} else {
		rt.limiter = rrl.New(cfg.Section.RRL)
	}
	var targets []health.Target
	for _, c := range set.Checked() {
		addr := addrOfRR(c.RR)
		key := c.RR.Header().Name + " " + mdns.TypeToString[c.RR.Header().Rrtype] + " " + addr.String()
		rt.checked[c.RR] = key
		targets = append(targets, health.Target{Key: key, Addr: addr, Check: *c.Check})
	}
	// Checks start (or carry on, for unchanged targets) before the new
	// snapshot answers, so a first answer is never judged on nothing.
	s.health.Set(targets)
	qlog, err := openQueryLog(cfg.Section.QueryLog)
	if err != nil {
		return err
	}
	ok = true
	commitGeo()
	commitFwd()
	// The log is reopened on every rebuild, so a rotated file is let go.
	s.qlog.Swap(qlog).close()
	s.fcache.SetConfig(cfg.Section.Cache)
	old := s.rt.Swap(rt)
	s.cache.Store(newAnswerCache(s.metrics.cacheHits))
	s.metrics.zones.Set(float64(len(set.Zones())))
	for origin, serial := range changed {
		s.metrics.serial.WithLabelValues(origin).Set(float64(serial))
	}
	if old != nil && len(changed) > 0 {
		s.log.Info("zones changed", "reason", reason, "zones", len(changed))
	}
	s.xfr.changed(old, rt, changed)
	return nil
}

// serialFor returns the zone's serial for content hash h: the stored one
// when the content is unchanged, else a new one that is larger than both
// the stored serial and any serial given before a state loss (the clock).
func (s *Server) serialFor(ctx context.Context, origin string, h uint64) (uint32, bool, error) {
	prev, _, err := s.serials.Get(ctx, serialKey(origin))
	if err == nil && prev.Hash == h {
		return prev.Serial, false, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, false, err
	}
	serial := max(prev.Serial+1, uint32(time.Now().Unix()))
	if _, err := s.serials.Put(ctx, serialKey(origin), storedSerial{Hash: h, Serial: serial}); err != nil {
		return 0, false, err
	}
	return serial, true, nil
}

// serialKey makes a zone origin a store name (no slashes in names).
func serialKey(origin string) string {
	if origin == "." {
		return "root"
	}
	return origin
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
