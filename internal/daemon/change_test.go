package daemon

import (
	"errors"
	"slices"
	"testing"
)

func TestParts(t *testing.T) {
	var log []string
	part := func(name string) Change {
		return Change{
			Commit: func(gen int64) { log = append(log, "commit "+name) },
			Abort:  func() { log = append(log, "abort "+name) },
		}
	}
	tests := []struct {
		name   string
		commit bool
		want   []string
	}{
		{"commit in order", true, []string{"commit a", "commit b", "commit nil", "then 7"}},
		{"abort in reverse", false, []string{"abort b", "abort a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log = nil
			var p Parts
			p.Add(part("a"))
			p.Add(part("b"))
			p.Add(Change{Commit: func(int64) { log = append(log, "commit nil") }}) // no Abort
			c := p.Change(func(gen int64) { log = append(log, "then "+string(rune('0'+gen))) })
			if tc.commit {
				c.Apply(7)
			} else {
				c.Release()
			}
			if !slices.Equal(log, tc.want) {
				t.Errorf("log = %q, want %q", log, tc.want)
			}
		})
	}
	t.Run("abort before change", func(t *testing.T) {
		log = nil
		var p Parts
		p.Add(part("a"))
		p.Add(part("b"))
		p.Abort()
		p.Abort() // a second abort releases nothing again
		if want := []string{"abort b", "abort a"}; !slices.Equal(log, want) {
			t.Errorf("log = %q, want %q", log, want)
		}
	})
}

func TestFaults(t *testing.T) {
	var nilFaults *Faults
	if err := nilFaults.Step("open"); err != nil {
		t.Fatalf("nil Faults.Step() = %v, want nil", err)
	}
	f := new(Faults)
	f.FailAt("bind")
	if err := f.Step("open"); err != nil {
		t.Errorf("Step(open) = %v, want nil", err)
	}
	err := f.Step("bind")
	var fe *FaultError
	if !errors.As(err, &fe) || fe.Step != "bind" {
		t.Errorf("Step(bind) = %v, want a FaultError for bind", err)
	}
	if got, want := f.Seen(), []string{"open", "bind"}; !slices.Equal(got, want) {
		t.Errorf("Seen() = %q, want %q", got, want)
	}
	f.FailAt("")
	if err := f.Step("bind"); err != nil || len(f.Seen()) != 1 {
		t.Errorf("after FailAt(\"\"): Step(bind) = %v, Seen() = %q; want nil and one step", err, f.Seen())
	}
}

func TestFaultsNth(t *testing.T) {
	f := new(Faults)
	f.FailNth(1)
	if err := f.Step("open"); err != nil {
		t.Errorf("Step(open) = %v, want nil", err)
	}
	if err := f.Step("bind"); err == nil {
		t.Errorf("Step(bind), the second step, = nil, want a FaultError")
	}
	if err := f.Step("serve"); err != nil {
		t.Errorf("Step(serve) = %v, want nil: only the nth step fails", err)
	}
}
