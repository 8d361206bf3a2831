package clock

import (
	"slices"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake(t0)
	var fired []string
	f.AfterFunc(3*time.Second, func() { fired = append(fired, "3s at "+f.Now().Sub(t0).String()) })
	f.AfterFunc(time.Second, func() {
		fired = append(fired, "1s at "+f.Now().Sub(t0).String())
		// A timer set from a timer runs in the same Advance when due.
		f.AfterFunc(time.Second, func() { fired = append(fired, "nested at "+f.Now().Sub(t0).String()) })
	})
	stopped := f.AfterFunc(2*time.Second, func() { fired = append(fired, "stopped") })
	if !stopped.Stop() || stopped.Stop() {
		t.Errorf("Stop() = false for a pending timer, or true twice")
	}
	tk := f.NewTicker(time.Second)
	f.Advance(2500 * time.Millisecond)
	if want := []string{"1s at 1s", "nested at 2s"}; !slices.Equal(fired, want) {
		t.Errorf("after 2.5s fired = %q, want %q", fired, want)
	}
	select {
	case at := <-tk.C():
		if at.Sub(t0) != time.Second {
			t.Errorf("first tick at %v, want 1s (one pending tick; later ones missed)", at.Sub(t0))
		}
	default:
		t.Errorf("no tick after 2.5s")
	}
	f.Advance(time.Second)
	if got := fired[len(fired)-1]; got != "3s at 3s" {
		t.Errorf("last fired = %q, want the 3s timer at 3s", got)
	}
	if got := f.Now().Sub(t0); got != 3500*time.Millisecond {
		t.Errorf("Now() = t0+%v, want t0+3.5s", got)
	}
	tk.Stop()
	if f.Pending() != 0 {
		t.Errorf("Pending() = %d after the ticker stopped, want 0", f.Pending())
	}
}
