package firewall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/store"
)

// An apply made with --confirm is a promise to come back to the previous
// ruleset unless confirmed. The daemon keeps that promise across a crash:
// before such an apply it stores the last confirmed config, and a daemon
// that starts and finds it there (it was killed inside the window) loads
// that ruleset instead of the config file's and says so. The record goes
// once the apply is confirmed or rolled back, or another apply succeeds.

// pendingKey is the record's name in the "confirm/" collection.
const pendingKey = "pending"

// unconfirmed is the stored record of an apply waiting for its confirm.
type unconfirmed struct {
	// Confirmed is the last confirmed config, normalized (secrets
	// redacted; the firewall section has none).
	Confirmed string `json:"confirmed"`
	// Generation is the waiting apply's, Previous the confirmed one's.
	Generation int64     `json:"generation"`
	Previous   int64     `json:"previous"`
	Deadline   time.Time `json:"deadline"`
}

// storePending records prev as the ruleset to come back to; the caller
// holds mu. It returns the undo for Abort.
func (s *Service) storePending(prev *applied, gen int64, deadline time.Time) (undo func(), err error) {
	text, err := prev.cfg.Normalized()
	if err != nil {
		return nil, fmt.Errorf("keep the confirmed config for a rollback: %w", err)
	}
	ctx := context.Background()
	old, oldRev, getErr := s.pendings.Get(ctx, pendingKey)
	if getErr != nil && !errors.Is(getErr, store.ErrNotFound) {
		return nil, getErr
	}
	if _, err := s.pendings.Put(ctx, pendingKey, unconfirmed{Confirmed: string(text), Generation: gen, Previous: prev.gen, Deadline: deadline.UTC()}); err != nil {
		return nil, fmt.Errorf("keep the confirmed config for a rollback: %w", err)
	}
	return func() {
		var err error
		if oldRev != 0 {
			_, err = s.pendings.Put(ctx, pendingKey, old)
		} else {
			_, err = s.pendings.Delete(ctx, pendingKey)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("could not undo the stored confirm record", "err", err)
		}
	}, nil
}

// dropPending forgets the record: the apply was confirmed or rolled back,
// or another one replaced it. A failure is logged: at worst the next
// start restores a ruleset that was confirmed after all.
func (s *Service) dropPending() {
	if _, err := s.pendings.Delete(context.Background(), pendingKey); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("could not forget the confirm record; a restart would restore the ruleset before the confirmed one", "err", err)
	}
}

// restoreConfirmed returns the last confirmed config when the daemon
// stopped inside a confirm window, with the record; ok is false when it
// did not.
func (s *Service) restoreConfirmed() (cfg *config.File[fwconfig.Config], rec unconfirmed, ok bool) {
	rec, _, err := s.pendings.Get(context.Background(), pendingKey)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("read the confirm record; loading the config file", "err", err)
		}
		return nil, rec, false
	}
	cfg, err = config.Parse([]byte(rec.Confirmed), "the last confirmed firewall config", fwconfig.Section, fwconfig.DefaultConfig)
	if err != nil {
		s.log.Error("the last confirmed config does not load; loading the config file", "err", err)
		return nil, rec, false
	}
	return cfg, rec, true
}

// restored says why the ruleset that runs is not the config file's, for
// status notes.
type restored struct {
	rec unconfirmed
}

// Notes implements daemon.Noter: which generation runs when it is not the
// config's, and an apply waiting for its confirm.
func (s *Service) Notes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	switch {
	case s.pending != nil:
		out = append(out, fmt.Sprintf("generation %d waits for `edgectl fw confirm` until %s; otherwise generation %d comes back",
			s.cur.gen, s.pending.deadline.Local().Format(time.TimeOnly), s.pending.prev.gen))
	case s.restoredFrom != nil && s.cur.gen == s.gen:
		out = append(out, fmt.Sprintf("runs the last confirmed ruleset: the daemon stopped while an apply waited for its confirm (until %s); `edgectl fw apply` loads the config file",
			s.restoredFrom.rec.Deadline.Local().Format(time.DateTime)))
	case s.cur.gen != s.gen && !s.lastRollback.IsZero() && s.refusedGen != s.gen:
		out = append(out, fmt.Sprintf("runs generation %d: generation %d was not confirmed and was rolled back at %s",
			s.cur.gen, s.gen, s.lastRollback.Local().Format(time.TimeOnly)))
	case s.cur.gen != s.gen:
		out = append(out, fmt.Sprintf("runs generation %d: the kernel refused generation %d's ruleset (see the log)", s.cur.gen, s.gen))
	}
	return out
}

var _ daemon.Noter = (*Service)(nil)
