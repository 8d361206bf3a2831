package firewall

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/clock"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/daemon/daemontest"
)

// The service tests run on the fake kernel and a fake clock: confirm
// windows, rollbacks, ban expiry and refresh, and failed prepares, all
// without root. integration/firewall_test.go does the same against the
// real kernel in the lab.

const testSite = `site:
  interfaces: {wan: eth0, lan: br-lan}
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
`

// testFirewall is a firewall section; services lists the wan zone's
// services, so that two configs differ by a rule.
func testFirewall(services string) string {
	return fmt.Sprintf(`firewall:
  metrics: {listen: "off"}
  zones:
    wan: {interfaces: [wan], services: [%s]}
    lan: {interfaces: [lan], networks: [lan], input: accept, forward_to: [wan]}
  bans: {default_timeout: 1h, max_timeout: 1d}
`, services)
}

func parseFW(t *testing.T, services string) *config.File[fwconfig.Config] {
	t.Helper()
	f, err := config.Parse([]byte("version: 1\n"+testSite+testFirewall(services)), "edge.yaml", fwconfig.Section, fwconfig.DefaultConfig)
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	return f
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testDeps(k *fakeKernel, c *clock.Fake) Deps {
	return Deps{OpenKernel: func() (Kernel, error) { return k, nil }, OpenPacketLog: noPacketLog, Clock: c}
}

// started is a service on the fake kernel whose Run has applied the
// first ruleset.
type started struct {
	*Service
	k     *fakeKernel
	clock *clock.Fake
}

func startService(t *testing.T, services string) *started {
	t.Helper()
	c := clock.NewFake(t0)
	k := newFakeKernel(c)
	env := daemon.Env{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(), StateDir: t.TempDir()}
	s, err := newService(env, parseFW(t, services), testDeps(k, c))
	if err != nil {
		t.Fatalf("newService: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	<-s.Ready()
	return &started{Service: s, k: k, clock: c}
}

// reload prepares and commits cfg as the runner does.
func (s *started) reload(t *testing.T, services string, gen int64, confirm time.Duration) error {
	t.Helper()
	c, err := s.Prepare(parseFW(t, services), daemon.Request{Reason: "test", Confirm: confirm})
	if err != nil {
		return err
	}
	c.Apply(gen)
	return nil
}

func (s *started) loadedHas(rule string) bool { return strings.Contains(s.k.text(), rule) }

func TestConfirmRollback(t *testing.T) {
	tests := []struct {
		name        string
		confirmAt   time.Duration // 0: never confirmed
		advance     time.Duration
		wantHTTP    bool // the new ruleset is loaded at the end
		wantPending bool
	}{
		{name: "before the deadline nothing happens", advance: 9 * time.Second, wantHTTP: true, wantPending: true},
		{name: "at the deadline it rolls back", advance: 10 * time.Second},
		{name: "a confirm keeps it", confirmAt: 5 * time.Second, advance: time.Minute, wantHTTP: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startService(t, "ssh")
			if s.loadedHas("tcp dport 443") {
				t.Fatal("the first ruleset already allows 443")
			}
			if err := s.reload(t, "ssh, https", 2, 10*time.Second); err != nil {
				t.Fatalf("reload: %v", err)
			}
			if !s.loadedHas("tcp dport 443") || s.pending == nil {
				t.Fatalf("after the apply: 443 loaded %v, pending %v; want both", s.loadedHas("tcp dport 443"), s.pending)
			}
			if tc.confirmAt > 0 {
				s.clock.Advance(tc.confirmAt)
				if _, err := s.handleConfirm(newRequest()); err != nil {
					t.Fatalf("confirm: %v", err)
				}
				s.clock.Advance(tc.advance - tc.confirmAt)
			} else {
				s.clock.Advance(tc.advance)
			}
			st := s.Status().(ctlapi.FWStatus)
			if got := s.loadedHas("tcp dport 443"); got != tc.wantHTTP {
				t.Errorf("443 loaded after %v = %v, want %v", tc.advance, got, tc.wantHTTP)
			}
			if got := st.Pending != nil; got != tc.wantPending {
				t.Errorf("pending after %v = %v, want %v", tc.advance, got, tc.wantPending)
			}
			wantGen, rolledBack := int64(2), !tc.wantHTTP
			if rolledBack {
				wantGen = 1
			}
			if st.Generation != wantGen || (st.LastRollback != nil) != rolledBack {
				t.Errorf("status = generation %d, last rollback %v; want generation %d, rolled back %v", st.Generation, st.LastRollback, wantGen, rolledBack)
			}
			if rolledBack && !st.LastRollback.Equal(t0.Add(10*time.Second)) {
				t.Errorf("last rollback at %v, want t0+10s", st.LastRollback)
			}
		})
	}
}

func TestReloadRefusedWhilePending(t *testing.T) {
	s := startService(t, "ssh")
	if err := s.reload(t, "ssh, https", 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	before := s.k.text()
	err := s.reload(t, "ssh, http", 3, 0)
	if err == nil || !strings.Contains(err.Error(), "waits for `edgectl fw confirm`") {
		t.Fatalf("reload while pending = %v, want the confirm error", err)
	}
	if s.k.text() != before {
		t.Errorf("a refused reload changed the kernel")
	}
}

// TestPrepareNoSideEffect: a prepare the kernel refuses, and a prepare
// that is aborted, leave the table, the status and the applies count
// as they were.
func TestPrepareNoSideEffect(t *testing.T) {
	s := startService(t, "ssh")
	before, applies := s.k.text(), s.k.applies
	s.k.validateErr = fmt.Errorf("rule \"zone wan input: allow https\": Operation not supported")
	if _, err := s.Prepare(parseFW(t, "ssh, https"), daemon.Request{}); err == nil || !strings.Contains(err.Error(), "allow https") {
		t.Fatalf("Prepare() with a refusing kernel = %v, want its error", err)
	}
	c, err := s.Prepare(parseFW(t, "ssh, https"), daemon.Request{})
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	if s.k.text() != before || s.k.applies != applies || s.cur.gen != 1 {
		t.Errorf("prepare without commit changed the kernel (%d applies, was %d) or the generation (%d)", s.k.applies, applies, s.cur.gen)
	}
	// A kernel that refuses at commit what it accepted in the check
	// keeps the previous table, and the status says which one runs.
	s.k.applyErr = fmt.Errorf("commit: Device or resource busy")
	if err := s.reload(t, "ssh, https", 2, 0); err != nil {
		t.Fatal(err)
	}
	if st := s.Status().(ctlapi.FWStatus); s.k.text() != before || st.Generation != 1 || s.gen != 2 {
		t.Errorf("after a refused commit: generation %d (runner's %d), kernel changed %v; want 1, 2, unchanged", st.Generation, s.gen, s.k.text() != before)
	}
}

func TestBanExpiryAndRefresh(t *testing.T) {
	s := startService(t, "ssh")
	ctx := context.Background()
	addr := netip.MustParseAddr("203.0.113.7")
	ban := func(d string) ctlapi.FWBanResult {
		t.Helper()
		res, err := s.ban(ctx, ctlapi.FWBanRequest{Addr: addr.String(), For: d}, "uid 0")
		if err != nil {
			t.Fatalf("ban for %s: %v", d, err)
		}
		return res
	}
	stored := func() bool {
		_, _, err := s.bans.Get(ctx, addr.String())
		return err == nil
	}
	ban("1m")
	s.clock.Advance(30 * time.Second)
	if res := ban("1m"); !res.Refreshed {
		t.Errorf("second ban = %+v, want refreshed", res)
	}
	steps := []struct {
		at                time.Duration // since the first ban
		inKernel, inStore bool
	}{
		{61 * time.Second, true, true},  // the refresh moved the end to 90s
		{91 * time.Second, false, true}, // the kernel expired it; the janitor has not run since
		{121 * time.Second, false, false},
	}
	elapsed := 30 * time.Second
	for _, st := range steps {
		s.clock.Advance(st.at - elapsed)
		elapsed = st.at
		// The janitor runs in Run's goroutine on a tick; wait for it.
		waitUntil(t, func() bool { return stored() == st.inStore })
		if got := s.k.has("ban_v4", addr); got != st.inKernel {
			t.Errorf("at %v: in the kernel's ban set = %v, want %v", st.at, got, st.inKernel)
		}
	}
}

// TestRollbackKeepsLiftedBan: a ban lifted while an apply waits for its
// confirm stays lifted after the rollback, and one made meanwhile stays.
func TestRollbackKeepsBans(t *testing.T) {
	s := startService(t, "ssh")
	ctx := context.Background()
	lifted, made := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::9")
	if _, err := s.ban(ctx, ctlapi.FWBanRequest{Addr: lifted.String(), For: "1h"}, "uid 0"); err != nil {
		t.Fatal(err)
	}
	if err := s.reload(t, "ssh, https", 2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.unban(ctx, ctlapi.FWUnbanRequest{Addr: lifted.String()}, "uid 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ban(ctx, ctlapi.FWBanRequest{Addr: made.String(), For: "1h"}, "uid 0"); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(10 * time.Second)
	if s.loadedHas("tcp dport 443") {
		t.Fatal("no rollback")
	}
	if s.k.has("ban_v4", lifted) || !s.k.has("ban_v6", made) {
		t.Errorf("after the rollback: lifted ban back %v, new ban kept %v; want false, true", s.k.has("ban_v4", lifted), s.k.has("ban_v6", made))
	}
}

func newRequest() *http.Request { return httptest.NewRequest("POST", ctlapi.PathFWConfirm, nil) }

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("condition not met within 1s")
}

// fwSpec is edge-firewall on the fake kernel and clock.
func fwSpec(k *fakeKernel, c *clock.Fake) daemon.Spec[fwconfig.Config] {
	spec := Spec
	spec.New = func(env daemon.Env, cfg *config.File[fwconfig.Config]) (daemon.Service[fwconfig.Config], error) {
		return newService(env, cfg, testDeps(k, c))
	}
	return spec
}

// TestReloadFaults fails each step of a start and of a reload in turn
// and checks that the kernel, the ban store and the status stay as they
// were, and that the runner's generation is the service's.
func TestReloadFaults(t *testing.T) {
	c := clock.NewFake(t0)
	k := newFakeKernel(c)
	var d *daemontest.Daemon
	snapshot := func() string {
		out := k.text()
		if d != nil {
			var bans []ctlapi.FWBan
			if _, err := d.Client.Do(context.Background(), "GET", ctlapi.PathFWBans, nil, &bans); err != nil {
				t.Fatalf("list bans: %v", err)
			}
			out += fmt.Sprintf("bans %+v\n", bans)
		}
		return out
	}
	d, steps := daemontest.EachStartFault(t, fwSpec(k, c), testSite+testFirewall("ssh"), snapshot)
	if want := "open kernel,open store,check pending,compile,validate"; strings.Join(steps, ",") != want {
		t.Errorf("start steps = %q, want %s", steps, want)
	}
	if _, err := d.Client.Do(context.Background(), "POST", ctlapi.PathFWBans, ctlapi.FWBanRequest{Addr: "203.0.113.7", For: "1h"}, nil); err != nil {
		t.Fatal(err)
	}
	d.WriteConfig(testSite + testFirewall("ssh, https"))
	steps = d.EachReloadFault(snapshot)
	if want := "check pending,compile,validate"; strings.Join(steps, ",") != want {
		t.Errorf("reload steps = %q, want %s", steps, want)
	}
	if !strings.Contains(k.text(), "tcp dport 443") {
		t.Errorf("the last reload did not apply")
	}
	var st ctlapi.FWStatus
	d.Detail(&st)
	if run := d.Status().Config.Generation; st.Generation != run || run != 2 {
		t.Errorf("service generation %d, runner's %d; want both 2", st.Generation, run)
	}
}

// TestCrashInConfirmWindow: a daemon killed while an apply waits for its
// confirm comes back with the last confirmed ruleset, not the config
// file's, and says so; a confirmed apply, a rollback or a plain apply
// leaves nothing to restore.
func TestCrashInConfirmWindow(t *testing.T) {
	tests := []struct {
		name      string
		then      func(s *started)
		wantHTTPS bool // the restarted daemon loads the file's ruleset
	}{
		{"killed in the window", func(s *started) {}, false},
		{"confirmed first", func(s *started) {
			if _, err := s.handleConfirm(newRequest()); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"rolled back first", func(s *started) { s.clock.Advance(time.Minute) }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := clock.NewFake(t0)
			k := newFakeKernel(c)
			dir := t.TempDir()
			env := daemon.Env{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(), StateDir: dir}
			s1, err := newService(env, parseFW(t, "ssh"), testDeps(k, c))
			if err != nil {
				t.Fatal(err)
			}
			first := &started{Service: s1, k: k, clock: c}
			s1.mu.Lock()
			s1.apply(s1.cur, "start")
			s1.mu.Unlock()
			if err := first.reload(t, "ssh, https", 2, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			tc.then(first)
			// kill -9: nothing of Run's stop path runs; the store is let go.
			s1.store.Close()

			var logs bytes.Buffer
			env.Log = slog.New(slog.NewTextHandler(&logs, nil))
			env.Metrics = prometheus.NewRegistry()
			s2, err := newService(env, parseFW(t, "ssh, https"), testDeps(k, c))
			if err != nil {
				t.Fatal(err)
			}
			defer s2.store.Close()
			s2.mu.Lock()
			s2.apply(s2.cur, "start")
			s2.mu.Unlock()
			if got := strings.Contains(k.text(), "tcp dport 443"); got != tc.wantHTTPS {
				t.Errorf("after the restart 443 is loaded = %v, want %v", got, tc.wantHTTPS)
			}
			notes := strings.Join(s2.Notes(), "\n")
			if restored := !tc.wantHTTPS; restored != strings.Contains(notes, "runs the last confirmed ruleset") ||
				restored != strings.Contains(logs.String(), "loading the last confirmed ruleset") {
				t.Errorf("restored %v, but notes %q and log:\n%s", restored, notes, logs.String())
			}
			if !tc.wantHTTPS {
				// An apply of the file makes it the ruleset, and the note goes.
				restarted := &started{Service: s2, k: k, clock: c}
				if err := restarted.reload(t, "ssh, https", 2, 0); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(k.text(), "tcp dport 443") || len(s2.Notes()) != 0 {
					t.Errorf("after fw apply: 443 loaded %v, notes %q", strings.Contains(k.text(), "tcp dport 443"), s2.Notes())
				}
			}
		})
	}
}

func TestNotesAfterRollback(t *testing.T) {
	s := startService(t, "ssh")
	if err := s.reload(t, "ssh, https", 2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := s.Notes(); len(n) != 1 || !strings.Contains(n[0], "generation 2 waits for `edgectl fw confirm`") {
		t.Errorf("notes while pending = %q", n)
	}
	s.clock.Advance(10 * time.Second)
	if n := s.Notes(); len(n) != 1 || !strings.Contains(n[0], "runs generation 1: generation 2 was not confirmed and was rolled back") {
		t.Errorf("notes after the rollback = %q", n)
	}
}

// TestDriftRestored: a table deleted or a rule removed behind the
// daemon's back is restored within driftEvery, with the bans, counted in
// edge_firewall_drift_restores_total.
func TestDriftRestored(t *testing.T) {
	s := startService(t, "ssh")
	ctx := context.Background()
	ban := netip.MustParseAddr("203.0.113.7")
	if _, err := s.ban(ctx, ctlapi.FWBanRequest{Addr: ban.String(), For: "1h"}, "uid 0"); err != nil {
		t.Fatal(err)
	}
	loaded := func() bool {
		s.k.mu.Lock()
		defer s.k.mu.Unlock()
		return s.k.rs == s.cur.rs && len(s.k.droppedRules) == 0
	}
	for _, tc := range []struct {
		name   string
		change func()
	}{
		{"table deleted", s.k.deleteTable},
		{"rule deleted", func() { s.k.deleteRule("zone wan input: allow ssh") }},
	} {
		applies := s.k.applies
		tc.change()
		s.clock.Advance(driftEvery)
		waitUntil(t, func() bool {
			s.k.mu.Lock()
			defer s.k.mu.Unlock()
			return s.k.applies > applies
		})
		s.mu.Lock() // the restore has finished once it lets go of mu
		gen := s.cur.gen
		s.mu.Unlock()
		if gen != 1 {
			t.Errorf("%s: the restore runs generation %d, want the loaded 1", tc.name, gen)
		}
		if !loaded() || !s.k.has("ban_v4", ban) {
			t.Errorf("%s: not restored within %v (ban there %v):\n%s", tc.name, driftEvery, s.k.has("ban_v4", ban), s.k.text())
		}
	}
	// No drift, no apply.
	applies := s.k.applies
	s.clock.Advance(3 * driftEvery)
	time.Sleep(20 * time.Millisecond)
	if s.k.applies != applies {
		t.Errorf("%d applies without drift", s.k.applies-applies)
	}
}
