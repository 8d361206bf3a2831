package firewall

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/homeedge/edge/firewall/compile"
	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/netfilter/nft"
)

// Confirm timeouts outside these bounds are mistakes: too short to type
// the confirm, or long enough to forget it.
const (
	minConfirm = 5 * time.Second
	maxConfirm = 24 * time.Hour
)

// Routes are edge-firewall's admin API.
func (s *Service) Routes() []ctlsock.Route {
	return []ctlsock.Route{
		{Method: http.MethodPost, Path: ctlapi.PathFWApply, Write: true, Handle: s.handleApply},
		{Method: http.MethodPost, Path: ctlapi.PathFWConfirm, Write: true, Handle: s.handleConfirm},
		{Method: http.MethodGet, Path: ctlapi.PathFWDiff, Handle: s.handleDiff},
		{Method: http.MethodGet, Path: ctlapi.PathFWShow, Handle: s.handleShow},
		{Method: http.MethodGet, Path: ctlapi.PathFWBans, Handle: func(r *http.Request) (any, error) {
			return s.listBans(r.Context())
		}},
		{Method: http.MethodPost, Path: ctlapi.PathFWBans, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.FWBanRequest
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			return s.ban(r.Context(), req, ctlsock.CallerFrom(r.Context()).String())
		}},
		{Method: http.MethodDelete, Path: ctlapi.PathFWBans, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.FWUnbanRequest
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			return s.unban(r.Context(), req, ctlsock.CallerFrom(r.Context()).String())
		}},
	}
}

// confirmTimeout reads an apply's confirm option against the loaded
// config's default.
func (s *Service) confirmTimeout(text string) (time.Duration, error) {
	if text == "" {
		return 0, nil
	}
	var d time.Duration
	if text == "default" {
		s.mu.Lock()
		d = s.cur.cfg.Section.Confirm.DefaultTimeout.D()
		s.mu.Unlock()
	} else {
		v, err := config.ParseDuration(text)
		if err != nil {
			return 0, ctlapi.Errorf(http.StatusBadRequest, "confirm timeout: %v", err)
		}
		d = v
	}
	if d < minConfirm || d > maxConfirm {
		return 0, ctlapi.Errorf(http.StatusBadRequest, "confirm timeout %s: use between %s and %s", config.Duration(d), config.Duration(minConfirm), config.Duration(maxConfirm))
	}
	return d, nil
}

// handleApply re-reads the config and applies it through the daemon's
// reload, so that the generation, the reload metrics and the status
// follow; with a confirm timeout the previous ruleset comes back unless
// confirmed in time.
func (s *Service) handleApply(r *http.Request) (any, error) {
	var req ctlapi.FWApplyRequest
	if r.ContentLength != 0 {
		if err := ctlsock.DecodeBody(r, &req); err != nil {
			return nil, err
		}
	}
	d, err := s.confirmTimeout(req.Confirm)
	if err != nil {
		return nil, err
	}
	if s.env.Reload == nil {
		return nil, ctlapi.Errorf(http.StatusServiceUnavailable, "this firewall runs without a daemon to reload it")
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	if p := s.pending; p != nil {
		s.mu.Unlock()
		return nil, ctlapi.Errorf(http.StatusConflict, "generation %d waits for `edgectl fw confirm` until %s; confirm it or let it roll back first",
			s.cur.gen, p.deadline.Format(time.TimeOnly))
	}
	before := s.cur
	s.mu.Unlock()

	gen, err := s.env.Reload(daemon.Request{Reason: "fw apply", Confirm: d})

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		return nil, ctlapi.Errorf(http.StatusUnprocessableEntity, "apply failed; generation %d keeps running:\n%s", gen, errorText(err))
	}
	res := ctlapi.FWApplyResult{Generation: gen, Summary: summarize(s.cur.rs, s.offloadState(s.cur.cfg)), Pending: s.pendingInfo()}
	if s.cur != before {
		res.Diff = s.lastDiff
		res.Changed = res.Diff != ""
	}
	return res, nil
}

func (s *Service) handleConfirm(r *http.Request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	if p == nil {
		return nil, ctlapi.Errorf(http.StatusConflict, "nothing waits for a confirm")
	}
	p.timer.Stop()
	s.pending = nil
	s.metrics.pending.Set(0)
	s.dropPending()
	s.log.Info("apply confirmed", "generation", s.cur.gen, "by", ctlsock.CallerFrom(r.Context()).String())
	return ctlapi.FWConfirmResult{Generation: s.cur.gen}, nil
}

// handleDiff compiles the config file as an apply would and compares it
// with the loaded ruleset.
func (s *Service) handleDiff(r *http.Request) (any, error) {
	cfg, err := config.Load(s.env.ConfigPath, fwconfig.Section, fwconfig.DefaultConfig)
	if err != nil {
		return nil, ctlapi.Errorf(http.StatusUnprocessableEntity, "%s does not load:\n%s", s.env.ConfigPath, errorText(err))
	}
	next, err := s.compile(cfg)
	if err != nil {
		return nil, ctlapi.Errorf(http.StatusUnprocessableEntity, "%s does not compile:\n%s", s.env.ConfigPath, errorText(err))
	}
	s.mu.Lock()
	cur := s.cur
	next.gen = s.gen + 1
	s.mu.Unlock()
	d := ruleDiff(cur, next)
	return ctlapi.FWDiff{Changed: d != "", Diff: d}, nil
}

// handleShow renders the loaded ruleset with the kernel's counters and
// the ban sets' live elements.
func (s *Service) handleShow(r *http.Request) (any, error) {
	maxElems := 0
	if v := r.URL.Query().Get("elements"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, ctlapi.Errorf(http.StatusBadRequest, "elements=%q: want a count, 0 for all", v)
		}
		maxElems = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.show(r.Context(), maxElems)
}

// show is handleShow's work; the caller holds mu.
func (s *Service) show(_ context.Context, maxElems int) (ctlapi.FWShow, error) {
	ok, err := s.kernel.TableExists()
	if err != nil {
		return ctlapi.FWShow{}, err
	}
	if !ok {
		return ctlapi.FWShow{}, ctlapi.Errorf(http.StatusServiceUnavailable,
			"table inet %s is not loaded (removed by hand or by edge-firewall -cleanup?); `edgectl fw apply` loads it again", compile.Table)
	}
	counters, err := s.kernel.Counters()
	if err != nil {
		return ctlapi.FWShow{}, err
	}
	live := map[string][]nft.SetElement{}
	for _, st := range s.cur.rs.Sets {
		if st.Timeout && !st.Dynamic {
			els, err := s.kernel.SetElements(st.Name)
			if err != nil {
				return ctlapi.FWShow{}, err
			}
			live[st.Name] = els
		}
	}
	text := nft.RenderWith(liveView(s.cur.rs, live), nft.RenderOptions{Counters: counters, MaxElements: maxElems})
	return ctlapi.FWShow{Ruleset: text, Generation: s.cur.gen, Pending: s.pendingInfo()}, nil
}
