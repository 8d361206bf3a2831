package daemon

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Change is a prepared reload. Exactly one of Commit and Abort follows a
// successful Prepare, always, so a service may hold a lock from Prepare
// until then. The runner commits; Abort is for a caller that prepared and
// then decided not to commit: a service whose later part failed to
// prepare (see Parts), or a test.
type Change struct {
	// Commit puts the prepared runtime in place as config generation
	// gen. It cannot fail: everything that can was done by Prepare. Nil
	// means there is nothing to put in place.
	Commit func(gen int64)
	// Abort releases what Prepare opened. Nil means nothing to release.
	Abort func()
}

// Apply runs c.Commit, if any.
func (c Change) Apply(gen int64) {
	if c.Commit != nil {
		c.Commit(gen)
	}
}

// Release runs c.Abort, if any.
func (c Change) Release() {
	if c.Abort != nil {
		c.Abort()
	}
}

// Request is what one reload was asked with.
type Request struct {
	// Reason says what asked for it: "start", "SIGHUP", "api", or a
	// service's own word such as "fw apply".
	Reason string
	// Confirm, when positive, asks that the change be undone unless it is
	// confirmed within that time (edge-firewall's `fw apply --confirm`).
	// A service that cannot undo a change fails Prepare when it is set.
	Confirm time.Duration
}

// Parts gathers the changes of a prepare made of several parts (GeoIP
// databases, a resolver, a query log): when a later part fails, Abort
// releases the earlier ones in reverse order; once all are prepared,
// Change commits them in order.
type Parts struct {
	parts []Change
}

// Add records a prepared part.
func (p *Parts) Add(c Change) { p.parts = append(p.parts, c) }

// Abort releases every part added, the last first.
func (p *Parts) Abort() {
	for _, c := range slices.Backward(p.parts) {
		c.Release()
	}
	p.parts = nil
}

// Change is one change that commits every part, in the order added, and
// then the commit functions given, or aborts every part.
func (p *Parts) Change(commit ...func(gen int64)) Change {
	parts := p.parts
	return Change{
		Commit: func(gen int64) {
			for _, c := range parts {
				c.Apply(gen)
			}
			for _, f := range commit {
				f(gen)
			}
		},
		Abort: func() {
			for _, c := range slices.Backward(parts) {
				c.Release()
			}
		},
	}
}

// Faults makes a prepare fail at a chosen step, so that a test can show
// that a failure at each step in turn leaves everything as it was. A
// service calls Step before each of its fallible steps (opening a file,
// binding, asking the kernel to validate); a nil *Faults never fails,
// which is what production runs with.
type Faults struct {
	mu   sync.Mutex
	fail string
	// nth, when positive, fails the step reached nth (from 1); zero
	// fails none, so a zero Faults is disarmed.
	nth  int
	seen []string
}

// FaultError is the error an armed step returns.
type FaultError struct{ Step string }

func (e *FaultError) Error() string { return fmt.Sprintf("injected failure at step %q", e.Step) }

// Step records that the prepare reached step and returns a *FaultError
// when the test armed that step.
func (f *Faults) Step(step string) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, step)
	if step == f.fail || len(f.seen) == f.nth {
		return &FaultError{Step: step}
	}
	return nil
}

// FailAt arms step (and disarms any other); "" disarms. It forgets the
// steps seen so far.
func (f *Faults) FailAt(step string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.nth, f.seen = step, 0, nil
}

// FailNth arms the nth step reached from now on (counting from 0),
// whatever its name, so that a test can walk a prepare's steps without
// knowing them: the first n for which nothing fails has passed them all.
func (f *Faults) FailNth(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.nth, f.seen = "", n+1, nil
}

// Seen returns the steps reached since the last FailAt, in order.
func (f *Faults) Seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}
