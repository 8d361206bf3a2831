// Package daemontest runs a daemon in-process for tests, on a config in a
// temporary directory with its admin socket and state there too, and walks
// a reload's prepare steps, failing each in turn (daemon.Faults), to show
// that a failed prepare leaves everything as it was.
package daemontest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/textdiff"
)

// Daemon is a daemon running in-process.
type Daemon struct {
	t      testing.TB
	name   string
	dir    string
	Config string // the config file's path
	Client *ctlapi.Client
	Faults *daemon.Faults
	Logs   *Buffer
	cancel context.CancelFunc
	done   chan error
}

// Buffer is a log sink safe for concurrent writes.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Dir returns the daemon's temporary directory: the config, run/ (the
// admin socket) and state/ are in it.
func (d *Daemon) Dir() string { return d.dir }

// StateDir is the daemon's own state directory, <state_dir>/<name>.
func (d *Daemon) StateDir() string { return filepath.Join(d.dir, "state", d.name) }

// WriteConfig writes the config: body (the site and the daemon's section,
// YAML) after the version, admin socket and state lines the harness owns.
func (d *Daemon) WriteConfig(body string) {
	d.t.Helper()
	cfg := fmt.Sprintf("version: 1\nadmin: {socket_dir: %s}\nstate_dir: %s\n%s",
		filepath.Join(d.dir, "run"), filepath.Join(d.dir, "state"), body)
	if err := os.WriteFile(d.Config, []byte(cfg), 0o600); err != nil {
		d.t.Fatal(err)
	}
}

// New prepares a daemon on body without starting it.
func New(t testing.TB, name, body string) *Daemon {
	t.Helper()
	dir := t.TempDir()
	d := &Daemon{t: t, name: name, dir: dir, Config: filepath.Join(dir, "edge.yaml"), Faults: new(daemon.Faults),
		Logs: &Buffer{}, Client: ctlapi.NewClient(filepath.Join(dir, "run"), name)}
	d.WriteConfig(body)
	return d
}

// Start runs spec on body until the test ends, and waits until it is
// ready.
func Start[T any](t testing.TB, spec daemon.Spec[T], body string) *Daemon {
	t.Helper()
	d := New(t, spec.Name, body)
	if err := start(d, spec); err != nil {
		t.Fatalf("start %s: %v\n%s", spec.Name, err, d.Logs)
	}
	return d
}

// start runs spec and waits for READY, or returns the error the daemon
// stopped with.
func start[T any](d *Daemon, spec daemon.Spec[T]) error {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan error, 1)
	go func() {
		d.done <- daemon.Run(ctx, spec, daemon.Options{ConfigPath: d.Config, LogOutput: d.Logs, Faults: d.Faults})
	}()
	deadline := time.After(20 * time.Second)
	for {
		st, err := d.Client.Status(context.Background())
		if err == nil && st.Ready {
			d.t.Cleanup(func() { d.Stop() })
			return nil
		}
		select {
		case err := <-d.done:
			cancel()
			if err == nil {
				err = errors.New("stopped before ready")
			}
			return err
		case <-deadline:
			cancel()
			<-d.done
			return errors.New("not ready within 20s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops the daemon and returns what Run returned; a second call
// returns nil.
func (d *Daemon) Stop() error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		return err
	case <-time.After(20 * time.Second):
		d.t.Errorf("%s did not stop within 20s", d.name)
		return nil
	}
}

// Reload asks the daemon to reload through the admin API.
func (d *Daemon) Reload() (int64, error) {
	rr, err := d.Client.Reload(context.Background())
	if err != nil {
		return 0, err
	}
	return rr.Generation, nil
}

// Status is the daemon's GET /v1/status.
func (d *Daemon) Status() *ctlapi.Status {
	d.t.Helper()
	st, err := d.Client.Status(context.Background())
	if err != nil {
		d.t.Fatalf("status: %v", err)
	}
	return st
}

// StatusText is the status as indented JSON, without what a failed
// reload changes on purpose (the failure count and the last error) and
// what time changes (uptime): the part that must stay byte-identical.
func (d *Daemon) StatusText() string {
	d.t.Helper()
	st := d.Status()
	st.Uptime, st.Config.ReloadFailures, st.Config.LastError = 0, 0, ""
	raw := st.Detail
	st.Detail = nil
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		d.t.Fatal(err)
	}
	// The detail indented on lines of its own, so that a diff shows the
	// field that changed.
	var detail any
	if len(raw) > 0 {
		json.Unmarshal(raw, &detail)
		db, _ := json.MarshalIndent(detail, "", "  ")
		b = append(append(b, "\ndetail: "...), db...)
	}
	return string(b)
}

// Detail decodes the service's own status into v.
func (d *Daemon) Detail(v any) {
	d.t.Helper()
	if err := json.Unmarshal(d.Status().Detail, v); err != nil {
		d.t.Fatalf("status detail: %v", err)
	}
}

// EachReloadFault reloads the config on file once per prepare step,
// failing the first step, then the second, and so on, until a reload
// passes every step and commits. After each failure it compares
// snapshot() (the kernel state, listeners, store: what the test cares
// about) and the status with what they were before, and fails the test
// on any difference. It returns the steps in order.
func (d *Daemon) EachReloadFault(snapshot func() string) []string {
	d.t.Helper()
	before, beforeStatus := snapshot(), d.StatusText()
	var steps []string
	for n := 0; ; n++ {
		if n > 100 {
			d.t.Fatalf("more than 100 prepare steps: %q", steps)
		}
		d.Faults.FailNth(n)
		_, err := d.Reload()
		if err == nil {
			break
		}
		seen := d.Faults.Seen()
		if !strings.Contains(err.Error(), "injected failure at step") || len(seen) != n+1 {
			d.t.Fatalf("reload failing at step %d failed otherwise: %v (steps reached %q)", n, err, seen)
		}
		step := seen[n]
		steps = append(steps, step)
		if diff := diff("before", "after a failure at "+step, before, snapshot()); diff != "" {
			d.t.Errorf("a reload failing at step %q changed the state:\n%s", step, diff)
		}
		if diff := diff("before", "after a failure at "+step, beforeStatus, d.StatusText()); diff != "" {
			d.t.Errorf("a reload failing at step %q changed the status:\n%s", step, diff)
		}
	}
	d.Faults.FailAt("")
	if len(steps) == 0 {
		d.t.Errorf("the reload passed no prepare step: nothing was tested")
	}
	return steps
}

// EachStartFault starts spec on body once per step of New, failing the
// first, then the second, until a start passes every step; after each
// failed start snapshot() must be what it was before the first. It
// leaves the last, successful, daemon running and returns it with the
// steps.
func EachStartFault[T any](t testing.TB, spec daemon.Spec[T], body string, snapshot func() string) (*Daemon, []string) {
	t.Helper()
	before := snapshot()
	var steps []string
	for n := 0; ; n++ {
		if n > 100 {
			t.Fatalf("more than 100 start steps: %q", steps)
		}
		d := New(t, spec.Name, body)
		d.Faults.FailNth(n)
		err := start(d, spec)
		if err == nil {
			d.Faults.FailAt("")
			if len(steps) == 0 {
				t.Errorf("the start passed no step: nothing was tested")
			}
			return d, steps
		}
		seen := d.Faults.Seen()
		if !strings.Contains(err.Error(), "injected failure at step") || len(seen) != n+1 {
			t.Fatalf("start failing at step %d failed otherwise: %v (steps reached %q)\n%s", n, err, seen, d.Logs)
		}
		steps = append(steps, seen[n])
		if diff := diff("before", "after a failed start at "+seen[n], before, snapshot()); diff != "" {
			t.Errorf("a start failing at step %q left state behind:\n%s", seen[n], diff)
		}
		if entries, _ := os.ReadDir(filepath.Join(d.dir, "run")); len(entries) > 0 {
			t.Errorf("a start failing at step %q left %s in the socket directory", seen[n], entries[0].Name())
		}
	}
}

// diff is a unified diff of a and b, empty when they are equal.
func diff(aName, bName, a, b string) string {
	if a == b {
		return ""
	}
	return textdiff.Unified(aName, bName, textdiff.SplitLines(a), textdiff.SplitLines(b), 3, 1000)
}
