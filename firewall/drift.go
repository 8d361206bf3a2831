package firewall

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// driftEvery is how often the daemon checks that table inet edge is still
// the one it loaded: someone's `nft flush ruleset`, `nft delete table inet
// edge` or a hand-edited rule is undone within this time.
const driftEvery = 10 * time.Second

// drift says how the live table differs from the loaded ruleset, or "".
// It compares what identifies each rule (its ID, which every counted rule
// carries as its comment), not the packets it saw; the caller holds mu.
func (s *Service) drift() (string, error) {
	ok, err := s.kernel.TableExists()
	if err != nil {
		return "", err
	}
	if !ok {
		return "table gone", nil
	}
	live, err := s.kernel.Counters()
	if err != nil {
		return "", err
	}
	var missing, extra []string
	want := map[string]bool{}
	for _, c := range s.cur.rs.Chains {
		for _, r := range c.Rules {
			if r.Counter && r.ID != "" {
				want[r.ID] = true
				if _, ok := live[r.ID]; !ok {
					missing = append(missing, r.ID)
				}
			}
		}
	}
	for id := range live {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(extra) == 0 {
		return "", nil
	}
	slices.Sort(missing)
	slices.Sort(extra)
	switch {
	case len(extra) == 0:
		return fmt.Sprintf("rules changed: %d missing (%q first)", len(missing), missing[0]), nil
	case len(missing) == 0:
		return fmt.Sprintf("rules changed: %d not ours (%q first)", len(extra), extra[0]), nil
	}
	return fmt.Sprintf("rules changed: %d missing (%q first), %d not ours", len(missing), missing[0], len(extra)), nil
}

// checkDrift restores the loaded ruleset when the live table drifted,
// with the bans of the moment (from the live ban sets, or from the store
// when the table was gone), logs it once and counts it.
func (s *Service) checkDrift(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	why, err := s.drift()
	if err != nil {
		s.metrics.readErrors.Inc()
		s.log.Debug("drift check: read the table", "err", err)
		return
	}
	if why == "" {
		return
	}
	what := "rules"
	if why == "table gone" {
		what = "table"
	}
	s.metrics.drift.WithLabelValues(what).Inc()
	s.log.Warn("table inet edge changed behind edge-firewall's back; restoring the loaded ruleset", "what", why, "generation", s.cur.gen)
	if err := s.apply(s.cur, "drift"); err != nil {
		s.log.Error("could not restore the ruleset; trying again in "+driftEvery.String(), "err", err)
		return
	}
	if what == "table" {
		s.restoreBans(ctx)
	}
}
