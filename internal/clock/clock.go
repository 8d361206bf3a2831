// Package clock provides the time source that services take instead of
// calling the time package, so that confirm windows, expiry and periodic
// work are tested on a fake clock (Fake) without sleeping.
package clock

import (
	"slices"
	"sync"
	"time"
)

// Clock is what a service needs of time.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (the real clock) or in
	// Advance's (the fake) once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTicker sends the time on C every d.
	NewTicker(d time.Duration) Ticker
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop cancels the call and reports whether it was still pending.
	Stop() bool
}

// Ticker delivers ticks.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the system clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
func (realClock) NewTicker(d time.Duration) Ticker          { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// Fake is a clock that moves only when Advance moves it. Timers due by
// the new time run in Advance's goroutine, earliest first; tickers get at
// most one pending tick each (like time.Ticker, a slow reader misses
// ticks).
type Fake struct {
	mu  sync.Mutex
	now time.Time
	// waiters are the pending timers and tickers, guarded by mu.
	waiters []*fakeWaiter
}

// NewFake returns a fake clock at start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

var _ Clock = (*Fake)(nil)

type fakeWaiter struct {
	f     *Fake
	at    time.Time
	every time.Duration // tickers only
	fn    func()
	c     chan time.Time
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// AfterFunc schedules fn at Now()+d.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWaiter{f: f, at: f.now.Add(d), fn: fn}
	f.waiters = append(f.waiters, w)
	return w
}

// NewTicker ticks every d from now.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWaiter{f: f, at: f.now.Add(d), every: d, c: make(chan time.Time, 1)}
	f.waiters = append(f.waiters, w)
	return fakeTicker{w}
}

// Pending is how many timers and tickers wait.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// Advance moves the clock by d, running each timer that falls due on the
// way at its own time, and ticking each ticker.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	end := f.now.Add(d)
	for {
		i := -1
		for j, w := range f.waiters {
			if !w.at.After(end) && (i < 0 || w.at.Before(f.waiters[i].at)) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		w := f.waiters[i]
		if w.at.After(f.now) {
			f.now = w.at
		}
		if w.every > 0 {
			w.at = w.at.Add(w.every)
			select {
			case w.c <- f.now:
			default:
			}
			continue
		}
		f.waiters = slices.Delete(f.waiters, i, i+1)
		f.mu.Unlock()
		w.fn()
		f.mu.Lock()
	}
	f.now = end
	f.mu.Unlock()
}

func (w *fakeWaiter) Stop() bool {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	i := slices.Index(w.f.waiters, w)
	if i < 0 {
		return false
	}
	w.f.waiters = slices.Delete(w.f.waiters, i, i+1)
	return true
}

func (w *fakeWaiter) C() <-chan time.Time { return w.c }

// The ticker's Stop has no result; fakeWaiter serves both.
type fakeTicker struct{ *fakeWaiter }

func (t fakeTicker) Stop() { t.fakeWaiter.Stop() }
