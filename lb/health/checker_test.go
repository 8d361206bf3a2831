package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/homeedge/edge/internal/ctlapi"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/internal/config"
)

// tick is the check interval of these tests, so that they run in
// milliseconds.
const tick = 20 * time.Millisecond

var loopback = netip.MustParseAddr("127.0.0.1")

// equateAddr lets cmp compare netip.Addr, whose fields are unexported.
var equateAddr = cmpopts.EquateComparable(netip.Addr{})

// fastCheck checks every tick. Its timeout is longer than the interval,
// which Validate refuses: it keeps a loaded CI machine from failing a
// loopback check that is merely slow, and the runtime tolerates it.
func fastCheck(typ string, port uint16, rise, fall int) Check {
	return Check{Type: typ, Port: port, Interval: config.Duration(tick), Timeout: config.Duration(2 * time.Second), Rise: rise, Fall: fall}
}

// newChecker returns a Checker on a fresh registry, closed at the end of
// the test.
func newChecker(t *testing.T, opts Options) (*Checker, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Metrics = reg
	if opts.Namespace == "" {
		opts.Namespace = "edge_test"
	}
	c := New(opts)
	t.Cleanup(c.Close)
	return c, reg
}

// waitFor polls cond until it holds, failing the test after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// subscribe collects a Checker's changes on a channel.
func subscribe(c *Checker) <-chan Change {
	ch := make(chan Change, 100)
	c.Subscribe(func(x Change) { ch <- x })
	return ch
}

func nextChange(t *testing.T, ch <-chan Change) Change {
	t.Helper()
	select {
	case x := <-ch:
		return x
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a change")
		return Change{}
	}
}

func noChange(t *testing.T, ch <-chan Change, wait time.Duration) {
	t.Helper()
	select {
	case x := <-ch:
		t.Errorf("got change %+v, want none", x)
	case <-time.After(wait):
	}
}

func status(t *testing.T, c *Checker, key string) ctlapi.HealthTarget {
	t.Helper()
	for _, s := range c.Status() {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("Status() has no target %q", key)
	return ctlapi.HealthTarget{}
}

// runningChecks counts the goroutines running a target's checks.
func runningChecks() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "health.(*target).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitChecks waits until n goroutines run checks. A started goroutine
// takes a moment to show, and a stopped one a moment to vanish after it
// said it was done; a count that stays wrong (an orphan) fails here.
func waitChecks(t *testing.T, n int) {
	t.Helper()
	var got int
	deadline := time.Now().Add(5 * time.Second)
	for got = runningChecks(); got != n; got = runningChecks() {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines running checks = %d, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// tcpServer is a loopback listener that counts connections and can be
// closed and reopened on its port.
type tcpServer struct {
	port    uint16
	accepts atomic.Int64
	mu      sync.Mutex
	ln      net.Listener
	wg      sync.WaitGroup
}

func newTCPServer(t *testing.T) *tcpServer {
	s := &tcpServer{}
	s.open(t)
	t.Cleanup(s.close)
	return s
}

func (s *tcpServer) open(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(s.port))))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s.port = uint16(ln.Addr().(*net.TCPAddr).Port)
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			c.Close()
		}
	})
}

func (s *tcpServer) close() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// scriptedDial hands each dial to the test, which decides its outcome:
// nil connects, an error fails the dial. The check waits until told, so a
// test steps through checks one by one.
type scriptedDial struct {
	dials chan chan error
}

func newScriptedDial() *scriptedDial { return &scriptedDial{dials: make(chan chan error)} }

func (s *scriptedDial) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	reply := make(chan error)
	select {
	case s.dials <- reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case err := <-reply:
		if err != nil {
			return nil, err
		}
		a, b := net.Pipe()
		b.Close()
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// step waits for the next check's dial and gives it err.
func (s *scriptedDial) step(t *testing.T, err error) {
	t.Helper()
	select {
	case reply := <-s.dials:
		reply <- err
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a check")
	}
}

// waitDial waits until a check is dialing, which means the one before it
// was recorded, and leaves it waiting.
func (s *scriptedDial) waitDial(t *testing.T) chan error {
	t.Helper()
	select {
	case reply := <-s.dials:
		return reply
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a check")
		return nil
	}
}

var errRefused = errors.New("connect: connection refused")

func TestFirstCheckRunsAtOnce(t *testing.T) {
	dial := newScriptedDial()
	c, _ := newChecker(t, Options{Dial: dial.Dial})
	changes := subscribe(c)
	// An hour between checks: only a first check at Set can answer.
	chk := Check{Type: "tcp", Port: 80, Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Minute), Rise: 1, Fall: 1}
	c.Set([]Target{{Key: "a", Addr: netip.MustParseAddr("192.0.2.10"), Check: chk}})

	reply := dial.waitDial(t)
	// The check is under way and has no result: the target counts as up.
	if !c.Up("a") {
		t.Errorf("Up(a) before the first result = false, want true")
	}
	if s := status(t, c, "a"); s.Checked || !s.Up {
		t.Errorf("Status(a) before the first result = checked %v up %v, want checked false up true", s.Checked, s.Up)
	}
	reply <- errRefused
	got := nextChange(t, changes)
	want := Change{Key: "a", Addr: netip.MustParseAddr("192.0.2.10"), Up: false, Reason: "connect: connection refused"}
	if diff := cmp.Diff(want, got, equateAddr); diff != "" {
		t.Errorf("first change (-want +got):\n%s", diff)
	}
	if c.Up("a") {
		t.Errorf("Up(a) after a failed first check with fall 1 = true, want false")
	}
}

func TestRiseFallThroughChecks(t *testing.T) {
	dial := newScriptedDial()
	c, reg := newChecker(t, Options{Dial: dial.Dial})
	changes := subscribe(c)
	chk := fastCheck("tcp", 80, 2, 3)
	c.Set([]Target{{Key: "a", Addr: loopback, Check: chk}})

	// After each result: what Up answers, and the change it caused.
	steps := []struct {
		fail   bool
		up     bool
		change string
	}{
		{false, true, ""},
		{true, true, ""},
		{true, true, ""},
		{false, true, ""}, // a success resets the failures
		{true, true, ""},
		{true, true, ""},
		{true, false, "down: connect: connection refused"},
		{true, false, ""},
		{false, false, ""},
		{true, false, ""}, // a failure resets the successes
		{false, false, ""},
		{false, true, "up: 2 checks passed in a row"},
		{false, true, ""},
	}
	reply := dial.waitDial(t)
	for i, st := range steps {
		var err error
		if st.fail {
			err = errRefused
		}
		reply <- err
		// The next check dialing means this one was recorded.
		reply = dial.waitDial(t)
		if got := c.Up("a"); got != st.up {
			t.Errorf("step %d: Up(a) = %v, want %v", i, got, st.up)
		}
		if st.change != "" {
			x := nextChange(t, changes)
			got := map[bool]string{true: "up", false: "down"}[x.Up] + ": " + x.Reason
			if got != st.change {
				t.Errorf("step %d: change = %q, want %q", i, got, st.change)
			}
		}
	}
	noChange(t, changes, 0)
	m := gather(t, reg)
	for name, want := range map[string]float64{
		`edge_test_health_transitions_total{target="a",to="down"}`:   1,
		`edge_test_health_transitions_total{target="a",to="up"}`:     1,
		`edge_test_health_checks_total{result="failure",target="a"}`: 7,
		`edge_test_health_checks_total{result="success",target="a"}`: 6,
		`edge_test_health_up{target="a"}`:                            1,
	} {
		if m[name] != want {
			t.Errorf("metric %s = %v, want %v", name, m[name], want)
		}
	}
}

func TestTCPDownAndUp(t *testing.T) {
	srv := newTCPServer(t)
	c, reg := newChecker(t, Options{})
	changes := subscribe(c)
	c.Set([]Target{{Key: "www/A/127.0.0.1", Addr: loopback, Check: fastCheck("tcp", srv.port, 2, 2)}})
	waitFor(t, "the first check", func() bool { return status(t, c, "www/A/127.0.0.1").Checked })
	if !c.Up("www/A/127.0.0.1") {
		t.Fatalf("Up with the server listening = false, want true")
	}

	srv.close()
	got := nextChange(t, changes)
	want := Change{Key: "www/A/127.0.0.1", Addr: loopback, Up: false, Reason: "connect: connection refused"}
	if diff := cmp.Diff(want, got, equateAddr); diff != "" {
		t.Errorf("change after closing the server (-want +got):\n%s", diff)
	}
	if c.Up("www/A/127.0.0.1") {
		t.Errorf("Up after the change to down = true, want false")
	}
	if m := gather(t, reg); m[`edge_test_health_up{target="www/A/127.0.0.1"}`] != 0 {
		t.Errorf("edge_test_health_up while down = %v, want 0", m[`edge_test_health_up{target="www/A/127.0.0.1"}`])
	}
	s := status(t, c, "www/A/127.0.0.1")
	if s.Up || s.Failures < 2 || s.LastError != "connect: connection refused" || s.LastCheck.IsZero() {
		t.Errorf("Status while down = %+v, want down with 2+ failures and the last error", s)
	}

	srv.open(t)
	got = nextChange(t, changes)
	want = Change{Key: "www/A/127.0.0.1", Addr: loopback, Up: true, Reason: "2 checks passed in a row"}
	if diff := cmp.Diff(want, got, equateAddr); diff != "" {
		t.Errorf("change after reopening the server (-want +got):\n%s", diff)
	}
	if !c.Up("www/A/127.0.0.1") {
		t.Errorf("Up after the change to up = false, want true")
	}
}

func TestHTTPDownAndUp(t *testing.T) {
	var code atomic.Int64
	code.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	addr, port := addrPort(t, srv.Listener.Addr().String())
	c, _ := newChecker(t, Options{})
	changes := subscribe(c)
	chk := fastCheck("http", port, 1, 1)
	chk.Path = "/healthz"
	c.Set([]Target{{Key: "web", Addr: addr, Check: chk}})
	waitFor(t, "the first check", func() bool { return status(t, c, "web").Checked })

	code.Store(503)
	if got := nextChange(t, changes); got.Up || got.Reason != "http status 503" {
		t.Errorf("change after the server answered 503 = %+v, want down with http status 503", got)
	}
	code.Store(204)
	if got := nextChange(t, changes); !got.Up {
		t.Errorf("change after the server answered 204 = %+v, want up", got)
	}
}

func TestHangingTargetTimesOut(t *testing.T) {
	addr, port := hangingServer(t)
	c, _ := newChecker(t, Options{})
	changes := subscribe(c)
	chk := Check{Type: "http", Port: port, Interval: config.Duration(100 * time.Millisecond), Timeout: config.Duration(30 * time.Millisecond), Rise: 1, Fall: 2}
	c.Set([]Target{{Key: "hang", Addr: addr, Check: chk}})
	if got := nextChange(t, changes); got.Up || got.Reason != "timeout after 30ms" {
		t.Errorf("change for a target that never answers = %+v, want down with timeout after 30ms", got)
	}
}

func TestSetReconciles(t *testing.T) {
	srvA, srvB, srvC := newTCPServer(t), newTCPServer(t), newTCPServer(t)
	c, reg := newChecker(t, Options{})
	changes := subscribe(c)
	a := Target{Key: "a", Addr: loopback, Check: fastCheck("tcp", srvA.port, 1, 1)}
	b := Target{Key: "b", Addr: loopback, Check: fastCheck("tcp", srvB.port, 1, 1)}
	cc := Target{Key: "c", Addr: loopback, Check: fastCheck("tcp", srvC.port, 1, 1)}
	c.Set([]Target{a, b})
	waitFor(t, "a and b checked", func() bool { return status(t, c, "a").Checked && status(t, c, "b").Checked })

	srvA.close()
	if got := nextChange(t, changes); got.Key != "a" || got.Up {
		t.Fatalf("change after closing a's server = %+v, want a down", got)
	}
	keptA := c.targets["a"]

	// a unchanged, b removed, c added.
	c.Set([]Target{a, cc})
	if c.targets["a"] != keptA {
		t.Errorf("Set with a unchanged replaced its target, want it kept with its goroutine")
	}
	if c.Up("a") {
		t.Errorf("Up(a) right after a Set that kept a = true, want false: its state must survive")
	}
	if !c.Up("b") {
		t.Errorf("Up(b) after removing b = false, want true (unknown keys are up)")
	}
	waitChecks(t, 2)
	waitFor(t, "c's first check", func() bool { return status(t, c, "c").Checked })
	before := srvB.accepts.Load()
	time.Sleep(10 * tick)
	if after := srvB.accepts.Load(); after != before {
		t.Errorf("connections to removed b's server went from %d to %d, want no more checks", before, after)
	}
	for name := range gather(t, reg) {
		if strings.Contains(name, `target="b"`) {
			t.Errorf("metric series %s left behind for removed target b", name)
		}
	}
	if keys := statusKeys(c); !slices.Equal(keys, []string{"a", "c"}) {
		t.Errorf("Status keys = %q, want [a c]", keys)
	}
	noChange(t, changes, 0)

	// a's check changes to c's port: a new probe starts over, up, and
	// subscribers hear that a counts as up again.
	a2 := a
	a2.Check.Port = srvC.port
	c.Set([]Target{a2, cc})
	if !c.Up("a") {
		t.Errorf("Up(a) after its check changed = false, want true (a new check starts up)")
	}
	if got, want := nextChange(t, changes), (Change{Key: "a", Addr: loopback, Up: true, Reason: "check changed"}); got != want {
		t.Errorf("change after a's check changed = %+v, want %+v", got, want)
	}
	waitFor(t, "a's new first check", func() bool { return status(t, c, "a").Checked })
	noChange(t, changes, 5*tick)

	// Removing a down target makes it up (unknown) and says so.
	srvC.close()
	got := []Change{nextChange(t, changes), nextChange(t, changes)}
	sort.Slice(got, func(i, j int) bool { return got[i].Key < got[j].Key })
	if got[0].Up || got[1].Up {
		t.Fatalf("changes after closing c's server = %+v, want a and c down", got)
	}
	c.Set([]Target{a2})
	if got, want := nextChange(t, changes), (Change{Key: "c", Addr: loopback, Up: true, Reason: "removed"}); got != want {
		t.Errorf("change after removing down c = %+v, want %+v", got, want)
	}
	waitChecks(t, 1)

	c.Set(nil)
	waitChecks(t, 0)
	for name := range gather(t, reg) {
		if strings.Contains(name, "target=") {
			t.Errorf("metric series %s left after Set(nil)", name)
		}
	}
}

func TestSetKeepsStateWhenOnlyTimingChanges(t *testing.T) {
	dial := newScriptedDial()
	c, _ := newChecker(t, Options{Dial: dial.Dial})
	changes := subscribe(c)
	a := Target{Key: "a", Addr: loopback, Check: fastCheck("tcp", 80, 2, 1)}
	c.Set([]Target{a})
	dial.step(t, errRefused)
	if got := nextChange(t, changes); got.Up {
		t.Fatalf("change after a failed check with fall 1 = %+v, want down", got)
	}
	old := c.targets["a"]

	slower := a
	slower.Check.Interval = config.Duration(2 * tick)
	slower.Check.Rise = 3
	c.Set([]Target{slower})
	if c.targets["a"] == old {
		t.Fatalf("Set with a new interval kept the old target, want a new one with the new timing")
	}
	if c.Up("a") {
		t.Errorf("Up(a) after changing only its interval = true, want false (state kept)")
	}
	if s := status(t, c, "a"); !s.Checked || s.Failures != 1 {
		t.Errorf("Status(a) after changing only its interval = %+v, want checked with 1 failure", s)
	}
	// Rise is now 3.
	dial.step(t, nil)
	dial.step(t, nil)
	dial.waitDial(t) <- nil
	if got := nextChange(t, changes); !got.Up || got.Reason != "3 checks passed in a row" {
		t.Errorf("change after 3 passes with rise 3 = %+v, want up after 3 checks", got)
	}
	waitChecks(t, 1)
}

func TestSetDuplicateKeysLastWins(t *testing.T) {
	dial := newScriptedDial()
	c, _ := newChecker(t, Options{Dial: dial.Dial})
	c.Set([]Target{
		{Key: "a", Addr: loopback, Check: fastCheck("tcp", 1, 1, 1)},
		{Key: "a", Addr: loopback, Check: fastCheck("tcp", 2, 1, 1)},
	})
	if s := c.Status(); len(s) != 1 || s[0].Port != 2 {
		t.Errorf("Status after Set with key a twice = %+v, want one target with port 2", s)
	}
}

func TestMetrics(t *testing.T) {
	srv := newTCPServer(t)
	c, reg := newChecker(t, Options{Namespace: "edge_dns"})
	c.Set([]Target{{Key: "www.example.net/A/127.0.0.1", Addr: loopback, Check: fastCheck("tcp", srv.port, 1, 1)}})
	waitFor(t, "two checks", func() bool {
		return gather(t, reg)[`edge_dns_health_checks_total{result="success",target="www.example.net/A/127.0.0.1"}`] >= 2
	})
	m := gather(t, reg)
	want := map[string]float64{
		`edge_dns_health_up{target="www.example.net/A/127.0.0.1"}`:                            1,
		`edge_dns_health_checks_total{result="failure",target="www.example.net/A/127.0.0.1"}`: 0,
		`edge_dns_health_transitions_total{target="www.example.net/A/127.0.0.1",to="down"}`:   0,
		`edge_dns_health_transitions_total{target="www.example.net/A/127.0.0.1",to="up"}`:     0,
	}
	for name, v := range want {
		if got, ok := m[name]; !ok || got != v {
			t.Errorf("metric %s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if m["edge_dns_health_check_duration_seconds_count"] < 2 {
		t.Errorf("edge_dns_health_check_duration_seconds_count = %v, want at least 2", m["edge_dns_health_check_duration_seconds_count"])
	}

	// Close deletes and unregisters everything, so a new Checker can
	// register on the same registry.
	c.Close()
	for name := range gather(t, reg) {
		t.Errorf("metric %s left after Close", name)
	}
	c2 := New(Options{Metrics: reg, Namespace: "edge_dns"})
	c2.Close()
}

func TestNewPanicsOnSecondCheckerForARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New(Options{Metrics: reg, Namespace: "edge_dns"})
	defer c.Close()
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "keep one Checker per daemon") {
			t.Errorf("New on a registry that has a Checker's metrics: panic %v, want one saying to keep one Checker", r)
		}
	}()
	New(Options{Metrics: reg, Namespace: "edge_dns"})
}

func TestTransitionLoggedOnce(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	c, reg := newChecker(t, Options{Log: log, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errRefused
	}})
	c.Set([]Target{{Key: "a", Addr: loopback, Check: fastCheck("tcp", 80, 1, 2)}})
	waitFor(t, "ten failed checks", func() bool {
		return gather(t, reg)[`edge_test_health_checks_total{result="failure",target="a"}`] >= 10
	})
	c.Close()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("log after ten failed checks:\n%s\nwant one line", buf.String())
	}
	for _, kv := range []string{`msg="health changed"`, "component=health", "target=a", "addr=127.0.0.1", "up=false", `reason="connect: connection refused"`} {
		if !strings.Contains(lines[0], kv) {
			t.Errorf("log line %q lacks %s", lines[0], kv)
		}
	}
}

func TestCloseWaits(t *testing.T) {
	c, _ := newChecker(t, Options{Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errRefused
	}})
	entered, release := make(chan struct{}), make(chan struct{})
	var delivered atomic.Bool
	c.Subscribe(func(Change) {
		close(entered)
		<-release
		delivered.Store(true)
	})
	c.Set([]Target{{Key: "a", Addr: loopback, Check: fastCheck("tcp", 80, 1, 1)}})
	<-entered

	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a subscriber was still being called")
	case <-time.After(5 * tick):
	}
	close(release)
	<-closed
	if !delivered.Load() {
		t.Errorf("Close returned before the subscriber did")
	}
	waitChecks(t, 0)
	// The last state stays readable; Set and Close are harmless now.
	if c.Up("a") {
		t.Errorf("Up(a) after Close = true, want the last state (down)")
	}
	c.Set([]Target{{Key: "b", Addr: loopback, Check: fastCheck("tcp", 80, 1, 1)}})
	if keys := statusKeys(c); !slices.Equal(keys, []string{"a"}) {
		t.Errorf("Status keys after Set following Close = %q, want [a]", keys)
	}
	waitChecks(t, 0)
	c.Close()
}

func TestSubscriberMaySet(t *testing.T) {
	c, _ := newChecker(t, Options{Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errRefused
	}})
	done := make(chan Change, 10)
	c.Subscribe(func(x Change) {
		// A caller that drops what goes down, from inside the callback.
		if !x.Up {
			c.Set(nil)
		}
		done <- x
	})
	c.Set([]Target{{Key: "a", Addr: loopback, Check: fastCheck("tcp", 80, 1, 1)}})
	if got := nextChange(t, done); got.Up {
		t.Fatalf("first change = %+v, want a down", got)
	}
	if got, want := nextChange(t, done), (Change{Key: "a", Addr: loopback, Up: true, Reason: "removed"}); got != want {
		t.Errorf("change after the subscriber removed a = %+v, want %+v", got, want)
	}
	waitChecks(t, 0)
}

func TestUnsubscribe(t *testing.T) {
	dial := newScriptedDial()
	c, _ := newChecker(t, Options{Dial: dial.Dial})
	var calls atomic.Int64
	cancel := c.Subscribe(func(Change) { calls.Add(1) })
	changes := subscribe(c)
	cancel()
	c.Set([]Target{{Key: "a", Addr: loopback, Check: fastCheck("tcp", 80, 1, 1)}})
	dial.step(t, errRefused)
	nextChange(t, changes)
	if n := calls.Load(); n != 0 {
		t.Errorf("unsubscribed func called %d times, want 0", n)
	}
}

func TestFirstPeriodicCheckIsJittered(t *testing.T) {
	c, _ := newChecker(t, Options{Dial: newScriptedDial().Dial})
	var targets []Target
	for i := range 50 {
		targets = append(targets, Target{Key: strconv.Itoa(i), Addr: loopback, Check: Check{Type: "tcp", Port: 80, Timeout: config.Duration(time.Second)}})
	}
	c.Set(targets)
	seen := map[time.Duration]bool{}
	for _, tg := range c.targets {
		if tg.firstIn < tg.interval/2 || tg.firstIn >= 3*tg.interval/2 {
			t.Errorf("target %s: first periodic check after %v, want within [%v, %v)", tg.key, tg.firstIn, tg.interval/2, 3*tg.interval/2)
		}
		seen[tg.firstIn] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 targets got %d distinct first delays, want them spread", len(seen))
	}
}

func TestConcurrentUse(t *testing.T) {
	c, _ := newChecker(t, Options{Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return nil, errRefused
	}})
	c.Subscribe(func(Change) {})
	sets := [][]Target{
		{{Key: "a", Addr: loopback, Check: fastCheck("tcp", 1, 1, 1)}, {Key: "b", Addr: loopback, Check: fastCheck("tcp", 2, 1, 1)}},
		{{Key: "b", Addr: loopback, Check: fastCheck("tcp", 3, 1, 1)}},
		{{Key: "a", Addr: loopback, Check: fastCheck("tcp", 1, 2, 1)}, {Key: "c", Addr: loopback, Check: fastCheck("tcp", 1, 1, 1)}},
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.Up("a")
				c.Up("b")
				c.Status()
			}
		})
	}
	for i := range 60 {
		c.Set(sets[i%len(sets)])
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	c.Close()
	waitChecks(t, 0)
}

func TestUpDoesNotAllocate(t *testing.T) {
	c, _ := newChecker(t, Options{Dial: newScriptedDial().Dial})
	c.Set([]Target{{Key: "www.example.net/A/192.0.2.10", Addr: loopback, Check: Check{Type: "tcp", Port: 80}}})
	key := strings.Clone("www.example.net/A/192.0.2.10")
	if n := testing.AllocsPerRun(1000, func() {
		c.Up(key)
		c.Up("unknown")
	}); n != 0 {
		t.Errorf("Up allocates %v times per call, want 0", n)
	}
}

func BenchmarkUp(b *testing.B) {
	c := New(Options{Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errRefused
	}})
	var targets []Target
	for i := range 1000 {
		targets = append(targets, Target{Key: fmt.Sprintf("www%d.example.net/A/192.0.2.10", i), Addr: loopback,
			Check: Check{Type: "tcp", Port: 80, Interval: config.Duration(time.Hour), Fall: 2}})
	}
	c.Set(targets)
	// Let the first checks finish, so that only Up runs while timed.
	for !allChecked(c) {
		time.Sleep(time.Millisecond)
	}
	key := "www500.example.net/A/192.0.2.10"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !c.Up(key) {
				b.Fatal("Up = false")
			}
		}
	})
	b.StopTimer()
	c.Close()
}

func allChecked(c *Checker) bool {
	for _, s := range c.Status() {
		if !s.Checked {
			return false
		}
	}
	return true
}

// gather returns every sample of reg as "name{label="value",...}" ->
// value; histograms give their _count and _sum.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func statusKeys(c *Checker) []string {
	var keys []string
	for _, s := range c.Status() {
		keys = append(keys, s.Key)
	}
	return keys
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func BenchmarkSetAndClose(b *testing.B) {
	dial := func(context.Context, string, string) (net.Conn, error) { return nil, errRefused }
	var targets []Target
	for i := range 5000 {
		targets = append(targets, Target{Key: fmt.Sprintf("t%d", i), Addr: loopback, Check: Check{Type: "tcp", Port: 80, Interval: config.Duration(time.Hour)}})
	}
	for b.Loop() {
		c := New(Options{Dial: dial})
		c.Set(targets)
		c.Close()
	}
}
