package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homeedge/edge/internal/clock"
	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// fakeKernel is a recording Kernel: one table, its sets' live elements
// with the times they expire on the fake clock, and errors to inject.
// Apply carries over what the netfilter library's KeepState carries:
// run-time elements of timeout sets that the new ruleset does not
// declare, with the time they had left.
type fakeKernel struct {
	clock *clock.Fake

	mu sync.Mutex
	// rs is the loaded table, nil when there is none.
	rs *ruleset.Ruleset
	// live holds each set's elements by key.
	live map[string]map[string]fakeElem
	// validateErr and applyErr, when set, are returned by the next
	// Validate or Apply.
	validateErr, applyErr error
	applies, validates    int
	closed                bool
	// droppedRules are rules deleted by hand since the last Apply.
	droppedRules map[string]bool
}

type fakeElem struct {
	e       ruleset.Element
	expires time.Time // zero: never
}

var _ Kernel = (*fakeKernel)(nil)

func newFakeKernel(c *clock.Fake) *fakeKernel {
	return &fakeKernel{clock: c, live: map[string]map[string]fakeElem{}}
}

func elemKey(e ruleset.Element) string { return fmt.Sprintf("%s %d-%d", e.Prefix, e.Port, e.PortEnd) }

func (k *fakeKernel) Validate(rs *ruleset.Ruleset) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.validates++
	err := k.validateErr
	k.validateErr = nil
	return err
}

func (k *fakeKernel) Apply(rs *ruleset.Ruleset) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.applyErr; err != nil {
		k.applyErr = nil
		return err
	}
	k.applies++
	now := k.clock.Now()
	live := map[string]map[string]fakeElem{}
	for _, s := range rs.Sets {
		m := map[string]fakeElem{}
		if s.Timeout {
			for key, fe := range k.live[s.Name] {
				if fe.expires.IsZero() || fe.expires.After(now) {
					m[key] = fe
				}
			}
		}
		for _, e := range s.Elements {
			fe := fakeElem{e: e}
			if e.Timeout > 0 {
				fe.expires = now.Add(e.Timeout)
			}
			m[elemKey(e)] = fe
		}
		live[s.Name] = m
	}
	k.rs, k.live, k.droppedRules = rs, live, nil
	return nil
}

func (k *fakeKernel) UpdateSet(s *ruleset.Set, put, del []ruleset.Element) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	m, ok := k.live[s.Name]
	if !ok || k.rs == nil {
		return fmt.Errorf("set %s: no such set", s.Name)
	}
	now := k.clock.Now()
	for _, e := range put {
		fe := fakeElem{e: e}
		if e.Timeout > 0 {
			fe.expires = now.Add(e.Timeout)
		}
		m[elemKey(e)] = fe
	}
	for _, e := range del {
		delete(m, elemKey(e))
	}
	return nil
}

// SetElements lists the elements not yet expired, as the kernel does.
func (k *fakeKernel) SetElements(set string) ([]nft.SetElement, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m, ok := k.live[set]
	if !ok {
		return nil, fmt.Errorf("set %s: no such set", set)
	}
	now := k.clock.Now()
	var out []nft.SetElement
	for _, fe := range m {
		if !fe.expires.IsZero() && !fe.expires.After(now) {
			continue
		}
		se := nft.SetElement{Element: fe.e}
		if !fe.expires.IsZero() {
			se.Expires = fe.expires.Sub(now)
		}
		out = append(out, se)
	}
	slices.SortFunc(out, func(a, b nft.SetElement) int { return strings.Compare(elemKey(a.Element), elemKey(b.Element)) })
	return out, nil
}

// Counters has a zero counter for every counted rule of the loaded table,
// as the kernel would.
func (k *fakeKernel) Counters() (map[string]nft.Counter, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]nft.Counter{}
	if k.rs == nil {
		return out, nil
	}
	for _, c := range k.rs.Chains {
		for _, r := range c.Rules {
			if r.Counter && r.ID != "" && !k.droppedRules[r.ID] {
				out[r.ID] = nft.Counter{}
			}
		}
	}
	return out, nil
}

// deleteTable and deleteRule change the kernel behind the service's back.
func (k *fakeKernel) deleteTable() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rs, k.live = nil, map[string]map[string]fakeElem{}
}

func (k *fakeKernel) deleteRule(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.droppedRules == nil {
		k.droppedRules = map[string]bool{}
	}
	k.droppedRules[id] = true
}

func (k *fakeKernel) TableExists() (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rs != nil, nil
}

func (k *fakeKernel) ProbeFlowtable() error { return errors.New("no flowtables in the fake kernel") }

func (k *fakeKernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	return nil
}

// text is the loaded table as nft would list it, with each set's live
// elements and the time they have left: what a test compares.
func (k *fakeKernel) text() string {
	k.mu.Lock()
	rs := k.rs
	k.mu.Unlock()
	if rs == nil {
		return "(no table)\n"
	}
	var b strings.Builder
	b.WriteString(nft.Render(rs))
	for _, s := range rs.Sets {
		els, _ := k.SetElements(s.Name)
		for _, e := range els {
			fmt.Fprintf(&b, "live %s %s %v %q\n", s.Name, elemKey(e.Element), e.Expires, e.Comment)
		}
	}
	return b.String()
}

// has says whether set holds addr now.
func (k *fakeKernel) has(set string, addr netip.Addr) bool {
	els, _ := k.SetElements(set)
	return slices.ContainsFunc(els, func(e nft.SetElement) bool { return e.Prefix.Addr() == addr })
}

// noPacketLog stands in for NFLOG: tests run with log.to kernel.
func noPacketLog(uint16) (packetReader, error) { return nil, errors.New("no NFLOG in unit tests") }
