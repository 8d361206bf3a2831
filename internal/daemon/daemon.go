// Package daemon is the runner every edge daemon uses: flags, config
// loading and -check, logging with a run-time level, the admin socket,
// the metrics and health listener, sd_notify, SIGHUP reload (parse,
// validate, the service's prepare, then commit or abort: the old config
// keeps running on any error) and a graceful stop under a deadline.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
	"github.com/homeedge/edge/internal/sdnotify"
	"github.com/homeedge/edge/internal/suite"
)

// Service is a running daemon's domain part, built by Spec.New.
type Service[T any] interface {
	// Run serves until ctx is cancelled, then stops and returns nil.
	// Any other return ends the daemon with that error.
	Run(ctx context.Context) error
	// Prepare is the first half of a reload: it checks cfg (restart-only
	// settings included) and builds and opens everything the new runtime
	// needs, with no side effect anyone can see: nothing served or
	// programmed into the kernel changes. A store write that must happen
	// for the commit not to fail is done last, in one transaction, and
	// undone by Abort; the service keeps it from its readers until Commit.
	// It returns the Change that puts the result in place or releases it.
	// On error it has released (and undone) everything, and the old
	// runtime keeps serving exactly as before.
	Prepare(cfg *config.File[T], req Request) (Change, error)
}

// Readier is implemented by services that need time after Run starts
// before they serve (binding listeners, a first sync). The runner reports
// READY only once the channel is closed.
type Readier interface {
	Ready() <-chan struct{}
}

// Statuser is implemented by services with status of their own, served as
// the detail of GET /v1/status.
type Statuser interface {
	Status() any
}

// Noter is implemented by services with something an operator should
// know now (the generation that runs when it is not the config's, a
// confirm being waited for): GET /v1/status carries it and `edgectl
// status` shows it.
type Noter interface {
	Notes() []string
}

// Router is implemented by services with admin API routes of their own.
type Router interface {
	Routes() []ctlsock.Route
}

// Env is what the runner hands a service.
type Env struct {
	// Log is the daemon's logger.
	Log *slog.Logger
	// Metrics is the daemon's registry; names follow edge_<daemon>_<thing>_<unit>.
	Metrics prometheus.Registerer
	// StateDir is <state_dir>/<daemon>, created 0700.
	StateDir string
	// ConfigPath is the config file the daemon loads and reloads.
	ConfigPath string
	// Reload runs a reload as SIGHUP does (load, validate, the service's
	// Prepare, then Commit or Abort) with req, and returns the generation
	// that runs after it. Reloads are serialized; a service must not call
	// it from inside its own Prepare or Commit.
	Reload func(req Request) (generation int64, err error)
	// Faults, set only by tests, fails the service's prepare steps on
	// demand; nil never fails.
	Faults *Faults
}

// Spec describes one daemon.
type Spec[T any] struct {
	// Name is the daemon's short name and config section, such as "dns".
	Name string
	// Defaults returns the section's defaults.
	Defaults func() T
	// New builds the service from a validated config as generation 1:
	// the same prepare as a reload, then its commit. It must not start
	// serving; Run does. On error it has released everything it took.
	New func(env Env, cfg *config.File[T]) (Service[T], error)
	// Cleanup, when set, removes the kernel state the daemon owns; it
	// adds the -cleanup flag.
	Cleanup func(ctx context.Context, log *slog.Logger, cfg *config.File[T]) error
	// Render, when set, writes what the daemon would program from cfg
	// (a boot-time ruleset) to w without touching the system; it adds
	// the -render flag.
	Render func(w io.Writer, cfg *config.File[T]) error
	// Check, when set, is -check's dry build of a config that validated:
	// what a start would do with it short of touching the system, such
	// as compiling a ruleset from it and reading the files it names. Its
	// config.Errors are reported as the loader's are.
	Check func(cfg *config.File[T]) error
}

// Options are what flags and tests decide about a run.
type Options struct {
	ConfigPath string
	// LogOutput receives log lines; nil means stderr.
	LogOutput io.Writer
	// Faults is handed to the service (Env.Faults); tests set it.
	Faults *Faults
}

// runner holds one daemon's process-wide state.
type runner[T any] struct {
	spec    Spec[T]
	opts    Options
	log     *slog.Logger
	level   *slog.LevelVar
	notify  *sdnotify.Notifier
	metrics *runnerMetrics
	started time.Time
	svc     Service[T]
	ready   atomic.Bool

	// reloadMu serializes reloads from SIGHUP and the admin API.
	reloadMu sync.Mutex
	// mu guards the fields below.
	mu          sync.Mutex
	cfg         *config.File[T]
	generation  int64
	loaded      time.Time
	failures    int64
	lastErr     string
	levelPinned bool
}

// Run loads the config and runs the daemon until ctx ends (a clean stop,
// returning nil) or the service fails.
func Run[T any](ctx context.Context, spec Spec[T], opts Options) error {
	cfg, err := config.Load(opts.ConfigPath, spec.Name, spec.Defaults)
	if err != nil {
		return err
	}
	r := &runner[T]{spec: spec, opts: opts, level: new(slog.LevelVar), notify: sdnotify.FromEnv(), started: time.Now()}
	r.log = newLogger(cfg.Log, r.level, opts.LogOutput).With("daemon", spec.Name)
	r.cfg, r.generation, r.loaded = cfg, 1, time.Now()
	r.log.Info("starting", "version", suite.BuildVersion(), "config", opts.ConfigPath, "pid", os.Getpid())

	reg := prometheus.NewRegistry()
	r.metrics = newRunnerMetrics(spec.Name, reg)
	r.metrics.generation.Set(1)

	stateDir := cfg.StateDirFor(spec.Name)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	// Listeners first, so a port or socket conflict stops the daemon
	// before the service acquires anything; once New succeeds, Run is
	// always called and releases what New took.
	common := commonOf(cfg)
	var metricsLn net.Listener
	if addr := common.Metrics.Listen; addr != "" && addr != "off" {
		if metricsLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
	}
	sockPath := cfg.SocketPath(spec.Name)
	adminLn, gid, err := ctlsock.Listen(sockPath, cfg.Admin.Group, cfg.Admin.SocketMode())
	if err != nil {
		if metricsLn != nil {
			metricsLn.Close()
		}
		return fmt.Errorf("admin socket: %w", err)
	}
	svc, err := spec.New(Env{Log: r.log, Metrics: reg, StateDir: stateDir, ConfigPath: opts.ConfigPath, Reload: r.reload, Faults: opts.Faults}, cfg)
	if err != nil {
		adminLn.Close()
		if metricsLn != nil {
			metricsLn.Close()
		}
		return fmt.Errorf("start %s: %w", spec.Name, err)
	}
	r.svc = svc
	if gid < 0 && cfg.Admin.Group != "" {
		r.log.Warn("admin group does not exist; only root and the daemon's user may change things", "group", cfg.Admin.Group)
	}
	admin := ctlsock.New(ctlsock.Options{
		Daemon: spec.Name, Version: suite.BuildVersion(), Log: r.log.With("component", "admin"), AdminGID: gid,
		Observe: func(path string, status int) {
			r.metrics.adminRequests.WithLabelValues(path, fmt.Sprint(status)).Inc()
		},
	})
	admin.Handle(r.routes()...)
	if rt, ok := svc.(Router); ok {
		admin.Handle(rt.Routes()...)
	}
	var metricsSrv *http.Server
	if metricsLn != nil {
		metricsSrv = newMetricsServer(reg, &r.ready)
	}

	svcCtx, stopSvc := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSvc()
	svcDone := make(chan error, 1)
	go func() { svcDone <- svc.Run(svcCtx) }()
	serveErr := make(chan error, 2)
	go func() { serveErr <- admin.Serve(adminLn) }()
	if metricsSrv != nil {
		go func() {
			if err := metricsSrv.Serve(metricsLn); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
	}
	r.log.Info("listening", "admin_socket", sockPath, "metrics", common.Metrics.Listen)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var readyCh <-chan struct{}
	if rd, ok := svc.(Readier); ok {
		readyCh = rd.Ready()
	} else {
		closed := make(chan struct{})
		close(closed)
		readyCh = closed
	}
	var watchdog <-chan time.Time
	if iv := sdnotify.WatchdogInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		watchdog = t.C
	}

	var runErr error
loop:
	for {
		select {
		case <-readyCh:
			readyCh = nil
			r.ready.Store(true)
			r.metrics.ready.Set(1)
			r.notifyf(sdnotify.Ready, "STATUS=serving, config generation 1", fmt.Sprintf("MAINPID=%d", os.Getpid()))
			r.log.Info("ready")
		case <-hup:
			r.log.Info("reload requested", "by", "SIGHUP")
			r.reload(Request{Reason: "SIGHUP"}) // errors are logged and counted there
		case <-watchdog:
			r.notifyf(sdnotify.Watchdog)
		case err := <-svcDone:
			svcDone = nil
			if err == nil {
				err = errors.New("service stopped on its own")
			}
			runErr = fmt.Errorf("%s: %w", spec.Name, err)
			break loop
		case err := <-serveErr:
			runErr = err
			break loop
		case <-ctx.Done():
			r.log.Info("stopping", "reason", context.Cause(ctx))
			break loop
		}
	}

	// Stop in reverse start order under the deadline.
	r.notifyf(sdnotify.Stopping)
	r.ready.Store(false)
	deadline := common.ShutdownTimeout.D()
	shutCtx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	stopSvc()
	if svcDone != nil {
		select {
		case err := <-svcDone:
			if err != nil && runErr == nil {
				runErr = fmt.Errorf("%s: stop: %w", spec.Name, err)
			}
		case <-shutCtx.Done():
			if runErr == nil {
				runErr = fmt.Errorf("%s did not stop within %v", spec.Name, deadline)
			}
		}
	}
	if err := admin.Shutdown(shutCtx); err != nil {
		r.log.Warn("admin socket shutdown", "err", err)
	}
	if metricsSrv != nil {
		metricsSrv.Shutdown(shutCtx)
	}
	if runErr != nil {
		r.log.Error("stopped with error", "err", runErr)
		return runErr
	}
	r.log.Info("stopped")
	return nil
}

// reload is parse, validate, prepare, then commit or abort. On any error
// the old config keeps running; the error is logged, counted and kept for
// status. The runner owns the generation: a commit is told its number.
func (r *runner[T]) reload(req Request) (int64, error) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	r.notify.Reloading()
	defer func() {
		r.mu.Lock()
		gen := r.generation
		r.mu.Unlock()
		r.notifyf(sdnotify.Ready, fmt.Sprintf("STATUS=serving, config generation %d", gen))
	}()
	cfg, err := config.Load(r.opts.ConfigPath, r.spec.Name, r.spec.Defaults)
	if err == nil {
		err = r.checkRestartOnly(cfg)
	}
	var change Change
	if err == nil {
		change, err = r.svc.Prepare(cfg, req)
	}
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.failures++
		r.lastErr = err.Error()
		r.metrics.reloads.WithLabelValues("failure").Inc()
		r.log.Error("reload failed; the previous config keeps running", "err", err, "by", req.Reason)
		return r.generation, err
	}
	// The commit runs outside mu, so that a status request does not wait
	// for it (edge-vpn's publishes names); reloadMu keeps the generation
	// ours until it is recorded.
	r.mu.Lock()
	gen := r.generation + 1
	r.mu.Unlock()
	change.Apply(gen)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.generation = gen
	r.cfg = cfg
	r.loaded = time.Now()
	r.lastErr = ""
	if lvl, err := config.ParseLevel(cfg.Log.Level); err == nil && !r.levelPinned {
		r.level.Set(lvl)
	}
	r.levelPinned = false
	r.metrics.reloads.WithLabelValues("success").Inc()
	r.metrics.generation.Set(float64(r.generation))
	r.metrics.lastReload.SetToCurrentTime()
	r.log.Info("reloaded", "generation", r.generation, "by", req.Reason)
	return r.generation, nil
}

// checkRestartOnly refuses changes that a reload cannot apply: the admin
// socket and metrics listener are bound once, at start.
func (r *runner[T]) checkRestartOnly(cfg *config.File[T]) error {
	r.mu.Lock()
	old := r.cfg
	r.mu.Unlock()
	var errs []error
	if cfg.Admin != old.Admin {
		errs = append(errs, errors.New("admin: socket settings change only on restart; restart the daemon to apply them"))
	}
	if commonOf(cfg).Metrics != commonOf(old).Metrics {
		errs = append(errs, fmt.Errorf("%s.metrics: the listener changes only on restart; restart the daemon to apply it", r.spec.Name))
	}
	if cfg.StateDir != old.StateDir {
		errs = append(errs, errors.New("state_dir: changes only on restart"))
	}
	return errors.Join(errs...)
}

func (r *runner[T]) notifyf(states ...string) {
	if err := r.notify.Notify(states...); err != nil {
		r.log.Warn("sd_notify failed", "err", err)
	}
}

// routes are the endpoints every daemon serves.
func (r *runner[T]) routes() []ctlsock.Route {
	return []ctlsock.Route{
		{Method: http.MethodGet, Path: ctlapi.PathStatus, Handle: func(*http.Request) (any, error) {
			return r.status()
		}},
		{Method: http.MethodPost, Path: ctlapi.PathReload, Write: true, Handle: func(*http.Request) (any, error) {
			gen, err := r.reload(Request{Reason: "api"})
			if err != nil {
				return nil, ctlapi.Errorf(http.StatusUnprocessableEntity, "reload failed, generation %d keeps running: %v", gen, err)
			}
			return ctlapi.ReloadResult{Generation: gen}, nil
		}},
		{Method: http.MethodGet, Path: ctlapi.PathLogLevel, Handle: func(*http.Request) (any, error) {
			return ctlapi.LogLevel{Level: levelName(r.level.Level())}, nil
		}},
		{Method: http.MethodPut, Path: ctlapi.PathLogLevel, Write: true, Handle: func(req *http.Request) (any, error) {
			var ll ctlapi.LogLevel
			if err := ctlsock.DecodeBody(req, &ll); err != nil {
				return nil, err
			}
			lvl, err := config.ParseLevel(ll.Level)
			if err != nil || ll.Level == "" {
				return nil, ctlapi.Errorf(http.StatusBadRequest, "unknown level %q; use debug, info, warn or error", ll.Level)
			}
			r.mu.Lock()
			r.levelPinned = true
			r.mu.Unlock()
			r.level.Set(lvl)
			r.log.Info("log level changed", "level", levelName(lvl))
			return ctlapi.LogLevel{Level: levelName(lvl)}, nil
		}},
	}
}

func (r *runner[T]) status() (ctlapi.Status, error) {
	r.mu.Lock()
	st := ctlapi.Status{
		Daemon:   r.spec.Name,
		Version:  suite.BuildVersion(),
		PID:      os.Getpid(),
		Started:  r.started.UTC().Truncate(time.Second),
		Uptime:   time.Since(r.started).Round(time.Millisecond).Seconds(),
		Ready:    r.ready.Load(),
		LogLevel: levelName(r.level.Level()),
		Config: ctlapi.Config{
			Path:           r.opts.ConfigPath,
			Generation:     r.generation,
			Loaded:         r.loaded.UTC().Truncate(time.Second),
			ReloadFailures: r.failures,
			LastError:      r.lastErr,
		},
	}
	r.mu.Unlock()
	if n, ok := r.svc.(Noter); ok {
		st.Notes = n.Notes()
	}
	if s, ok := r.svc.(Statuser); ok {
		b, err := json.Marshal(s.Status())
		if err != nil {
			return st, fmt.Errorf("encode status: %w", err)
		}
		st.Detail = b
	}
	return st, nil
}

func commonOf[T any](cfg *config.File[T]) config.Common {
	if hc, ok := any(&cfg.Section).(config.HasCommon); ok {
		return *hc.CommonConfig()
	}
	return config.Common{ShutdownTimeout: config.DefaultShutdownTimeout}
}

func levelName(l slog.Level) string {
	switch {
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	}
	return "error"
}

func newLogger(lc config.Log, level *slog.LevelVar, out io.Writer) *slog.Logger {
	if lvl, err := config.ParseLevel(lc.Level); err == nil {
		level.Set(lvl)
	}
	if out == nil {
		out = os.Stderr
	}
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}
