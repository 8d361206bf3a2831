// Package firewall is edge-firewall's service: it compiles the firewall
// section (firewall/compile) and applies it as table inet edge (netfilter/nft)
// at start and on every reload, keeps counters and bans across applies,
// holds the run-time bans in the state store, rolls back an apply that is
// not confirmed in time, and serves the admin API behind `edgectl fw`.
//
// The daemon dying leaves its last ruleset in place: nothing is removed on
// stop except by -cleanup.
package firewall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homeedge/edge/firewall/compile"
	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/clock"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/store"
	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// Spec is edge-firewall's daemon description.
var Spec = daemon.Spec[fwconfig.Config]{
	Name:     fwconfig.Section,
	Defaults: fwconfig.DefaultConfig,
	New:      New,
	Cleanup:  Cleanup,
	Render:   Renderer(true),
	Check:    Checker(false),
}

// janitorEvery is how often expired bans are dropped from the store (the
// kernel expires them from the ban set on its own).
const janitorEvery = time.Minute

// Service is the running firewall.
type Service struct {
	log    *slog.Logger
	env    daemon.Env
	kernel Kernel
	store  store.Store
	bans   *store.Collection[storedBan]
	// pendings holds the record of an apply waiting for its confirm.
	pendings *store.Collection[unconfirmed]
	metrics  *metrics
	ready    chan struct{}
	clock    clock.Clock
	faults   *daemon.Faults
	// openPacketLog opens an NFLOG group (log.to: daemon).
	openPacketLog func(group uint16) (packetReader, error)
	// offload says the kernel has flowtables; offloadWhy is why not.
	offload    bool
	offloadWhy string

	// applyMu serializes `fw apply` requests, each of which runs the
	// daemon's reload (Prepare, then Commit).
	applyMu sync.Mutex

	// mu guards the fields below and every change to the kernel's table,
	// so that an apply, a rollback and a ban never interleave.
	mu sync.Mutex
	// cur is what is loaded (before Run: what Run applies first).
	cur *applied
	// gen is the runner's generation last committed; cur.gen differs
	// after a rollback or a refused apply.
	gen int64
	// pending is an apply waiting for its confirm, or nil.
	pending      *pending
	lastRollback time.Time
	// restoredFrom is set when the start loaded the last confirmed
	// ruleset instead of the config file's; refusedGen is the last
	// generation whose ruleset the kernel refused at commit.
	restoredFrom *restored
	refusedGen   int64
	// lastDiff is the diff of the last commit that changed something.
	lastDiff string
	// plog reads logged packets when log.to is daemon.
	plog *packetLog
}

// applied is one loaded ruleset and what produced it.
type applied struct {
	cfg  *config.File[fwconfig.Config]
	rs   *ruleset.Ruleset
	gen  int64
	at   time.Time
	text string // nft.Render(rs) without ban elements, for diffs
	// sizes are the element counts of sets without timeouts, as loaded.
	sizes map[string]int
}

type pending struct {
	prev     *applied
	deadline time.Time
	timer    clock.Timer
}

// New opens the kernel connection and the state store, checks whether the
// kernel has flowtables, and prepares and commits the config as
// generation 1 (with the kernel's check of its ruleset). Nothing is
// applied until Run.
func New(env daemon.Env, cfg *config.File[fwconfig.Config]) (daemon.Service[fwconfig.Config], error) {
	return newService(env, cfg, realDeps())
}

func newService(env daemon.Env, cfg *config.File[fwconfig.Config], deps Deps) (*Service, error) {
	if err := env.Faults.Step("open kernel"); err != nil {
		return nil, err
	}
	k, err := deps.OpenKernel()
	if err != nil {
		return nil, err
	}
	if err := env.Faults.Step("open store"); err != nil {
		k.Close()
		return nil, err
	}
	st, err := store.OpenBolt(env.StateDir+"/state.db", store.BoltOptions{})
	if err != nil {
		k.Close()
		return nil, err
	}
	s := &Service{
		log:           env.Log,
		env:           env,
		kernel:        k,
		store:         st,
		bans:          store.NewCollection[storedBan](st, "bans/"),
		pendings:      store.NewCollection[unconfirmed](st, "confirm/"),
		ready:         make(chan struct{}),
		clock:         deps.Clock,
		faults:        env.Faults,
		openPacketLog: deps.OpenPacketLog,
	}
	if err := k.ProbeFlowtable(); err != nil {
		s.offloadWhy = err.Error()
	} else {
		s.offload = true
	}
	if cfg.Section.FlowOffload.Enabled && !s.offload {
		s.log.Warn("flow offload is configured but this kernel has no flowtables; forwarding without the fast path", "reason", s.offloadWhy)
	}
	startCfg := cfg
	if prev, rec, ok := s.restoreConfirmed(); ok {
		s.log.Warn("the daemon stopped while an apply waited for its confirm; loading the last confirmed ruleset, not the config file's (`edgectl fw apply` loads the file)",
			"unconfirmed_generation", rec.Generation, "deadline", rec.Deadline)
		startCfg, s.restoredFrom = prev, &restored{rec: rec}
	}
	change, err := s.Prepare(startCfg, daemon.Request{Reason: "start"})
	if err != nil && s.restoredFrom != nil {
		s.log.Error("the last confirmed ruleset does not prepare; loading the config file", "err", err)
		s.restoredFrom = nil
		change, err = s.Prepare(cfg, daemon.Request{Reason: "start"})
	}
	if err != nil {
		st.Close()
		k.Close()
		return nil, err
	}
	s.metrics = newMetrics(s, env.Metrics)
	change.Apply(1)
	return s, nil
}

var _ daemon.Service[fwconfig.Config] = (*Service)(nil)

// compile builds the ruleset of cfg, without flow offload when the
// kernel has no flowtables. Run-time bans are not part of it: they live in
// the kernel's ban sets, which every apply carries over, and in the state
// store, from which Run restores them at start. So a ruleset restored by
// a rollback brings back no ban lifted since it was compiled.
func (s *Service) compile(cfg *config.File[fwconfig.Config]) (*applied, error) {
	rs, err := compile.Compile(cfg, compile.Options{Flowtable: s.offload})
	if err != nil {
		return nil, err
	}
	if !s.offload {
		rs = nft.StripOffload(rs)
	}
	if err := nft.Check(rs); err != nil {
		return nil, fmt.Errorf("compiled ruleset: %w", err)
	}
	sizes := map[string]int{}
	for _, st := range rs.Sets {
		if !st.Timeout && !st.Dynamic {
			keys, err := nft.SetKeys(st)
			if err != nil {
				return nil, err
			}
			sizes[st.Name] = len(keys)
		}
	}
	return &applied{cfg: cfg, rs: rs, text: diffText(rs), sizes: sizes}, nil
}

// Ready is closed once the first ruleset is applied.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run applies the ruleset and restores the stored bans, then drops expired
// bans now and then until ctx ends. An apply waiting for its confirm when
// the daemon stops is rolled back first: nobody confirmed it.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		s.mu.Lock()
		if s.plog != nil {
			s.plog.close()
			s.plog = nil
		}
		s.mu.Unlock()
		s.store.Close()
		s.kernel.Close()
	}()
	s.mu.Lock()
	err := s.apply(s.cur, "start")
	if err == nil {
		s.restoreBans(ctx)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	close(s.ready)
	tick := s.clock.NewTicker(janitorEvery)
	defer tick.Stop()
	driftTick := s.clock.NewTicker(driftEvery)
	defer driftTick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			if p := s.pending; p != nil {
				s.log.Warn("stopping with an unconfirmed apply; restoring the previous ruleset", "generation", s.cur.gen, "previous", p.prev.gen)
				s.rollbackLocked(p)
			}
			s.mu.Unlock()
			return nil
		case <-tick.C():
			s.expireBans(ctx)
		case <-driftTick.C():
			s.checkDrift(ctx)
		}
	}
}

// apply loads a into the kernel with counters and run-time set elements
// carried over, and makes it current. The caller holds mu.
func (s *Service) apply(a *applied, why string) error {
	start := time.Now()
	err := s.kernel.Apply(a.rs)
	took := time.Since(start)
	if err != nil {
		s.metrics.applies.WithLabelValues("failure").Inc()
		return err
	}
	a.at = s.clock.Now()
	s.cur = a
	s.syncPacketLog(&a.cfg.Section)
	sum := summarize(a.rs, s.offloadState(a.cfg))
	s.metrics.applies.WithLabelValues("success").Inc()
	s.metrics.applySeconds.Set(took.Seconds())
	s.metrics.setSummary(sum)
	s.log.Info("ruleset applied", "why", why, "generation", a.gen, "rules", sum.Rules, "sets", sum.Sets,
		"elements", sum.Elements, "offload", sum.Offload, "took", took.Round(time.Millisecond))
	return nil
}

// Prepare compiles cfg and has the kernel check the replace of the table
// by its ruleset without committing it, so that a ruleset the kernel
// would refuse fails here and the loaded one keeps running untouched. It
// refuses while an apply waits for its confirm: confirm it or let it roll
// back first.
//
// The commit applies the checked ruleset. The kernel can still refuse it
// there only if something changed the kernel between the check and the
// apply; nftables' transaction then leaves the loaded table as it was,
// and the commit logs the failure and counts it
// (edge_firewall_applies_total{result="failure"}), so the status keeps
// naming the generation that runs.
func (s *Service) Prepare(cfg *config.File[fwconfig.Config], req daemon.Request) (daemon.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.faults.Step("check pending"); err != nil {
		return daemon.Change{}, err
	}
	if p := s.pending; p != nil {
		return daemon.Change{}, fmt.Errorf("generation %d waits for `edgectl fw confirm` until %s; confirm it or let it roll back before applying again",
			s.cur.gen, p.deadline.Format(time.TimeOnly))
	}
	if err := s.faults.Step("compile"); err != nil {
		return daemon.Change{}, err
	}
	a, err := s.compile(cfg)
	if err != nil {
		return daemon.Change{}, err
	}
	if err := s.faults.Step("validate"); err != nil {
		return daemon.Change{}, err
	}
	if err := s.kernel.Validate(a.rs); err != nil {
		return daemon.Change{}, err
	}
	var undo func()
	if req.Confirm > 0 && s.cur != nil && ruleDiff(s.cur, a) != "" {
		if err := s.faults.Step("store confirm record"); err != nil {
			return daemon.Change{}, err
		}
		var err error
		if undo, err = s.storePending(s.cur, s.gen+1, s.clock.Now().Add(req.Confirm)); err != nil {
			return daemon.Change{}, err
		}
	}
	return daemon.Change{
		Commit: func(gen int64) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.commit(a, gen, req)
		},
		Abort: undo,
	}, nil
}

// commit makes a current as generation gen: before Run (the start) it is
// what Run applies; after, it is applied now, and under a confirm request
// the previous ruleset is kept for the rollback and the timer starts. The
// caller holds mu.
func (s *Service) commit(a *applied, gen int64, req daemon.Request) {
	a.gen, s.gen = gen, gen
	prev := s.cur
	if prev == nil {
		s.cur = a
		return
	}
	if err := s.apply(a, req.Reason); err != nil {
		s.refusedGen = gen
		s.log.Error("the kernel refused a ruleset it had accepted in the check; the previous ruleset stays loaded",
			"generation", gen, "running", prev.gen, "err", err)
		return
	}
	s.restoredFrom = nil
	s.lastDiff = ruleDiff(prev, a)
	if req.Confirm <= 0 || s.lastDiff == "" {
		s.dropPending() // a plain apply replaces any promise of a rollback
	}
	if req.Confirm > 0 && s.lastDiff != "" {
		p := &pending{prev: prev, deadline: s.clock.Now().Add(req.Confirm)}
		p.timer = s.clock.AfterFunc(req.Confirm, func() { s.expire(p) })
		s.pending = p
		s.metrics.pending.Set(1)
		s.log.Warn("applied; waiting for `edgectl fw confirm`", "generation", a.gen, "rollback_in", req.Confirm, "previous", prev.gen)
	}
}

// expire restores p's previous ruleset unless p was confirmed.
func (s *Service) expire(p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != p {
		return
	}
	s.log.Warn("no confirm in time; restoring the previous ruleset", "generation", s.cur.gen, "previous", p.prev.gen)
	s.rollbackLocked(p)
}

// rollbackLocked applies p's previous ruleset. Bans made meanwhile are
// kept: they are in the live ban set, which the apply carries over.
func (s *Service) rollbackLocked(p *pending) {
	p.timer.Stop()
	s.pending = nil
	s.metrics.pending.Set(0)
	if err := s.apply(p.prev, "rollback"); err != nil {
		// The unconfirmed ruleset stays; say so loudly. The record stays
		// too, so that a restart comes back to the confirmed one.
		s.metrics.rollbacks.WithLabelValues("failure").Inc()
		s.log.Error("rollback failed; the unconfirmed ruleset stays loaded", "err", err)
		return
	}
	s.dropPending()
	s.lastRollback = s.clock.Now()
	s.metrics.rollbacks.WithLabelValues("success").Inc()
	s.log.Warn("rolled back", "generation", p.prev.gen)
}

// Renderer returns the func that writes the ruleset of cfg as an nft
// script that replaces table inet edge atomically (edge-firewall
// -render): the NixOS module loads it before the network comes up. It has
// the config's static bans, not the run-time ones (the daemon restores
// those at start). With offload it keeps flow offload, which the boot
// script cannot probe for; the command turns it off for
// EDGE_FIREWALL_NO_OFFLOAD=1.
func Renderer(offload bool) func(w io.Writer, cfg *config.File[fwconfig.Config]) error {
	return func(w io.Writer, cfg *config.File[fwconfig.Config]) error {
		rs, err := compile.Compile(cfg, compile.Options{Flowtable: offload})
		if err != nil {
			return err
		}
		text, err := nft.RenderScript(rs)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, text)
		return err
	}
}

// Checker returns edge-firewall's -check beyond validation: the config
// compiled as an apply compiles it, reading the set files it names, and
// the ruleset checked as nft would read it, so that what the next
// apply would refuse for its config (a set file that does not exist or
// has a bad line, a rule that can match nothing) fails the check too.
// With ignoreMissing, a set file that does not exist is taken as empty:
// for a check on another machine than the router, such as the NixOS
// module's at build time, where the router's /var/lib is not there.
func Checker(ignoreMissing bool) func(cfg *config.File[fwconfig.Config]) error {
	return func(cfg *config.File[fwconfig.Config]) error {
		read := os.ReadFile
		if ignoreMissing {
			read = func(name string) ([]byte, error) {
				b, err := os.ReadFile(name)
				if errors.Is(err, fs.ErrNotExist) {
					return nil, nil
				}
				return b, err
			}
		}
		rs, err := compile.Compile(cfg, compile.Options{Flowtable: true, ReadFile: read})
		if err != nil {
			return err
		}
		if err := nft.Check(rs); err != nil {
			return fmt.Errorf("compiled ruleset: %w", err)
		}
		return nil
	}
}

// Cleanup removes table inet edge and nothing else (edge-firewall
// -cleanup). The state store, with its bans, stays.
func Cleanup(ctx context.Context, log *slog.Logger, _ *config.File[fwconfig.Config]) error {
	conn, err := nft.Open(0)
	if err != nil {
		return err
	}
	defer conn.Close()
	ok, err := nft.TableExists(conn, compile.Table)
	if err != nil {
		return err
	}
	if !ok {
		log.Info("nothing to remove: table inet " + compile.Table + " does not exist")
		return nil
	}
	if err := nft.Delete(conn, compile.Table); err != nil {
		return err
	}
	log.Info("removed table inet " + compile.Table)
	return nil
}

// offloadState says whether flow offload runs.
func (s *Service) offloadState(cfg *config.File[fwconfig.Config]) string {
	switch {
	case !cfg.Section.FlowOffload.Enabled:
		return "off"
	case !s.offload:
		return "unsupported: " + s.offloadWhy
	}
	return "on"
}

func summarize(rs *ruleset.Ruleset, offload string) ctlapi.FWSummary {
	sum := ctlapi.FWSummary{Chains: len(rs.Chains), Sets: len(rs.Sets), Offload: offload}
	for _, c := range rs.Chains {
		sum.Rules += len(c.Rules)
	}
	for _, st := range rs.Sets {
		sum.Elements += len(st.Elements)
	}
	return sum
}

// Status is the status detail of GET /v1/status.
func (s *Service) Status() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ctlapi.FWStatus{
		Applied:    s.cur.at.UTC().Truncate(time.Second),
		Generation: s.cur.gen,
		Summary:    summarize(s.cur.rs, s.offloadState(s.cur.cfg)),
		Pending:    s.pendingInfo(),
	}
	if n, err := s.countBans(); err == nil {
		st.Bans = n
	}
	if !s.lastRollback.IsZero() {
		t := s.lastRollback.UTC().Truncate(time.Second)
		st.LastRollback = &t
	}
	return st
}

// pendingInfo describes the pending apply; the caller holds mu.
func (s *Service) pendingInfo() *ctlapi.FWPending {
	if s.pending == nil {
		return nil
	}
	return &ctlapi.FWPending{Generation: s.cur.gen, Previous: s.pending.prev.gen, Deadline: s.pending.deadline.UTC()}
}

// setByName returns the current ruleset's set called name.
func (s *Service) setByName(name string) *ruleset.Set {
	i := slices.IndexFunc(s.cur.rs.Sets, func(st *ruleset.Set) bool { return st.Name == name })
	if i < 0 {
		return nil
	}
	return s.cur.rs.Sets[i]
}

// errorText flattens a kernel or config error into one line per problem.
func errorText(err error) string {
	var ce config.Errors
	if errors.As(err, &ce) {
		lines := make([]string, len(ce))
		for i, e := range ce {
			lines[i] = e.Error()
		}
		return strings.Join(lines, "\n")
	}
	return err.Error()
}
