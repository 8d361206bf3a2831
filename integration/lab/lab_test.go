package lab

// Root tests: they build real namespaces. The standard lab:
//
//	outside-de  198.51.100.0/24 --+                                     +-- nas    192.168.1.10
//	outside-us  203.0.113.0/24  --+           wan 192.0.2.0/24          +-- host11 192.168.1.11
//	services    172.31.53.0/24  --+-- internet ------------ router -----+-- host12 192.168.1.12
//	roadwarrior 172.31.77.0/24  --+         .254             .1  br-lan +-- client 192.168.1.100
//	                                                             192.168.1.1/24, fd00:1::1/64
//
// No firewall runs on the router, so the lan reaches nothing outside:
// "internet" has no route back to 192.168.1.0/24 and fd00:1::/64.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/nettest"
)

func ping(ctx context.Context, l *Lab, from, to string, wait time.Duration) error {
	_, err := l.Run(ctx, from, "ping", "-n", "-c", "1", "-W", fmt.Sprint(wait.Seconds()), to)
	return err
}

func TestStandardConnectivity(t *testing.T) {
	l := ForTest(t, Options{})
	reachable := []struct{ from, to string }{
		{NodeClient, RouterLANAddr4},
		{NodeClient, RouterLANAddr6},
		{NodeNAS, RouterLANAddr4},
		{NodeHost11, Host12Addr4},
		{NodeHost11, Host12Addr6},
		{NodeClient, RouterWANAddr4}, // the router's own address, not forwarded
		{NodeOutsideDE, RouterWANAddr4},
		{NodeOutsideDE, RouterWANAddr6},
		{NodeOutsideDE, OutsideUSAddr4},
		{NodeOutsideDE, OutsideUSAddr6},
		{NodeOutsideUS, OutsideDEAddr4},
		{NodeOutsideUS, OutsideDEAddr6},
		{NodeRoadwarrior, ServicesAddr4},
		{NodeServices, RoadwarriorAddr6},
		{NodeRouter, OutsideDEAddr4}, // the router's own traffic leaves by wan
		{NodeRouter, ServicesAddr6},
	}
	// Without NAT on the router the lan must not reach the outside, nor
	// the outside the lan: "internet" has no route to the lan.
	unreachable := []struct{ from, to string }{
		{NodeClient, OutsideDEAddr4},
		{NodeClient, OutsideDEAddr6},
		{NodeNAS, ServicesAddr4},
		{NodeOutsideDE, ClientAddr4},
		{NodeOutsideDE, ClientAddr6},
	}
	t.Run("reachable", func(t *testing.T) {
		for _, tc := range reachable {
			t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
				t.Parallel()
				if err := ping(t.Context(), l, tc.from, tc.to, 2*time.Second); err != nil {
					t.Errorf("ping: %v", err)
				}
			})
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		for _, tc := range unreachable {
			t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
				t.Parallel()
				if err := ping(t.Context(), l, tc.from, tc.to, time.Second); err == nil {
					t.Errorf("ping from %s to %s succeeded, want no path without NAT", tc.from, tc.to)
				}
			})
		}
		for _, dst := range []string{ClientAddr4, ClientAddr6} {
			if out, err := l.Run(t.Context(), NodeInternet, "ip", "route", "get", dst); err == nil {
				t.Errorf("internet has a route to %s: %s", dst, out)
			}
		}
	})

	// Addresses and interface names are what the constants say.
	out, err := l.Run(t.Context(), NodeRouter, "ip", "-o", "addr", "show", "dev", IfaceLAN)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{RouterLANAddr4 + "/24", RouterLANAddr6 + "/64"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("router %s addresses %q lack %s", IfaceLAN, out, want)
		}
	}
	if got := l.Addr(NodeRouter, IPv4).String(); got != RouterWANAddr4 {
		t.Errorf("Addr(router, IPv4) = %s, want %s", got, RouterWANAddr4)
	}
	if got := l.IfaceAddr(NodeRouter, IfaceLAN, IPv6).String(); got != RouterLANAddr6 {
		t.Errorf("IfaceAddr(router, br-lan, IPv6) = %s, want %s", got, RouterLANAddr6)
	}
}

// hostSnapshot records the host namespace's interfaces, addresses, routes,
// rules and firewall, without the lifetimes that count down on their own.
func hostSnapshot(t *testing.T) string {
	t.Helper()
	lifetimes := regexp.MustCompile(`(valid_lft|preferred_lft|expires) \S+`)
	var b strings.Builder
	for _, args := range [][]string{
		{"ip", "-o", "link"},
		{"ip", "-o", "addr"},
		{"ip", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"ip", "rule"},
		{"ip", "-6", "rule"},
		{"nft", "list", "ruleset"},
	} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil && args[0] == "nft" && errors.Is(err, exec.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), lifetimes.ReplaceAllString(string(out), "$1 X"))
	}
	return b.String()
}

// TestCloseLeavesNothing builds the standard lab with a managed process
// and a stray one, closes it, and checks that the host namespace is as
// before and nothing of the lab is left.
func TestCloseLeavesNothing(t *testing.T) {
	nettest.RequireRoot(t)
	before := hostSnapshot(t)

	l, err := New(t.Context(), Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	p, err := l.Start(NodeNAS, "sleeper", []string{"sleep", "100"})
	if err != nil {
		t.Fatal(err)
	}
	stray := l.Command(context.Background(), NodeClient, "sleep", "100")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	strayDone := make(chan error, 1)
	go func() { strayDone <- stray.Wait() }()
	// Until "ip netns exec" has entered the namespace and exec'd sleep,
	// the namespace does not list it: wait for that, as a stray process
	// started earlier would be.
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", stray.Process.Pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stray process never became sleep (comm %q)", comm)
		}
		time.Sleep(5 * time.Millisecond)
	}

	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	select {
	case <-p.Done():
	default:
		t.Errorf("started process still running after Close")
	}
	select {
	case <-strayDone:
	case <-time.After(5 * time.Second):
		t.Errorf("stray process in %s still running after Close", NodeClient)
		stray.Process.Kill()
	}
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), NamespaceName(l.RunID(), "")) {
			t.Errorf("namespace %s left after Close", e.Name())
		}
	}
	for _, path := range []string{defaultState().markerPath(l.RunID()), l.LogDir()} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Close (stat: %v)", path, err)
		}
	}
	if _, err := l.Start(NodeNAS, "late", []string{"true"}); err == nil {
		t.Errorf("Start after Close succeeded, want an error")
	}

	if after := hostSnapshot(t); after != before {
		t.Errorf("host namespace changed by the lab:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestProcesses(t *testing.T) {
	topo, err := Standard().Subset(NodeInternet, NodeOutsideDE)
	if err != nil {
		t.Fatal(err)
	}
	l := ForTest(t, Options{Topology: topo, StopTimeout: time.Second})
	ctx := t.Context()

	t.Run("log and stop", func(t *testing.T) {
		p, err := l.Start(NodeOutsideDE, "sleeper", []string{"sh", "-c", "echo ready; echo oops >&2; exec sleep 100"})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitLog(ctx, "oops"); err != nil {
			t.Fatal(err)
		}
		if got, want := p.Log(), "ready\noops\n"; got != want {
			t.Errorf("Log() = %q, want %q", got, want)
		}
		if want := filepath.Join(l.LogDir(), "outside-de-sleeper.log"); p.LogPath() != want {
			t.Errorf("LogPath() = %s, want %s", p.LogPath(), want)
		}
		// Pid is the command itself, inside the namespace.
		pids, err := namespacePids(ctx, l.NS(NodeOutsideDE))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(pids, p.Pid()) {
			t.Errorf("pid %d not among the namespace's processes %v", p.Pid(), pids)
		}

		start := time.Now()
		if err := p.Stop(5 * time.Second); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Stop took %v; sleep should die of SIGTERM at once", d)
		}
		if err := p.Wait(); err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Errorf("Wait() = %v, want signal: terminated", err)
		}
		if err := p.Signal(os.Interrupt); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Signal after exit = %v, want os.ErrProcessDone", err)
		}

		// A restart under the same name appends; Log shows its own part.
		p2, err := l.Start(NodeOutsideDE, "sleeper", []string{"echo", "second"})
		if err != nil {
			t.Fatal(err)
		}
		if err := p2.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := p2.Log(); got != "second\n" {
			t.Errorf("restarted Log() = %q, want %q", got, "second\n")
		}
		if data, _ := os.ReadFile(p2.LogPath()); string(data) != "ready\noops\nsecond\n" {
			t.Errorf("log file = %q, want both runs", data)
		}
	})

	t.Run("stop escalates to SIGKILL", func(t *testing.T) {
		p, err := l.Start(NodeInternet, "stubborn", []string{"sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.1; done`})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitLog(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.Stop(300 * time.Millisecond); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("Stop returned after %v, before the SIGTERM grace period", d)
		}
		if err := p.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("Wait() = %v, want signal: killed", err)
		}
	})

	t.Run("signal", func(t *testing.T) {
		p, err := l.Start(NodeOutsideDE, "hup", []string{"sh", "-c", `trap "echo got-hup; exit 0" HUP; echo ready; while :; do sleep 0.1; done`})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitLog(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitLog(ctx, "got-hup"); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Errorf("Wait() = %v, want nil", err)
		}
	})

	t.Run("user and environment", func(t *testing.T) {
		out, err := l.RunAs(ctx, NodeOutsideDE, 65534, 65534, "id", "-u")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != "65534" {
			t.Errorf("id -u as 65534 printed %q", got)
		}
		p, err := l.Start(NodeOutsideDE, "nobody", []string{"sh", "-c", `id -u; id -g; id -G; echo "$LAB_TEST"; pwd`},
			AsUser(65534, 65534), WithEnv("LAB_TEST=hello"), InDir("/"))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("Wait: %v\n%s", err, p.Log())
		}
		if got, want := p.Log(), "65534\n65534\n65534\nhello\n/\n"; got != want {
			t.Errorf("Log() = %q, want %q", got, want)
		}
	})

	t.Run("run error", func(t *testing.T) {
		_, err := l.Run(ctx, NodeOutsideDE, "sh", "-c", "echo boom; exit 3")
		if err == nil {
			t.Fatal("Run of a failing command = nil error")
		}
		for _, want := range []string{"in outside-de", "sh -c", "exit status 3", "boom"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Run error %q lacks %q", err, want)
			}
		}
	})

	t.Run("bad start", func(t *testing.T) {
		if _, err := l.Start("nosuch", "x", []string{"true"}); err == nil {
			t.Errorf("Start in unknown node = nil error")
		}
		if _, err := l.Start(NodeOutsideDE, "../x", []string{"true"}); err == nil {
			t.Errorf("Start with a path as name = nil error")
		}
		if _, err := l.Start(NodeOutsideDE, "x", nil); err == nil {
			t.Errorf("Start of an empty command = nil error")
		}
	})
}

// TestNewRemovesDeadRuns plants the leftovers of a crashed run (marker with
// a dead owner, namespaces, a process inside, a log directory) and of a run
// that died before writing anything but namespaces, next to a live and a
// persistent lab, and checks that New removes exactly the dead ones.
func TestNewRemovesDeadRuns(t *testing.T) {
	nettest.RequireRoot(t)
	ctx := t.Context()
	st := defaultState()

	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}

	unlock, err := st.lock() // keep a concurrent New from seeing half a plant
	if err != nil {
		t.Fatal(err)
	}
	plant := func(nodes ...string) string {
		t.Helper()
		id, err := st.newRunID()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if _, err := ipCmd(ctx, nil, "netns", "add", NamespaceName(id, n)); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	writeMarker := func(m *marker) {
		t.Helper()
		if err := st.writeMarker(m); err != nil {
			t.Fatal(err)
		}
	}

	deadID := plant("a", "b")
	deadLogs := filepath.Join(os.TempDir(), logDirStem+deadID)
	if err := os.MkdirAll(deadLogs, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(deadLogs, "a-daemon.log"), []byte("old\n"), 0o644)
	// OwnerStart 1 cannot match a reused pid either.
	writeMarker(&marker{RunID: deadID, Nodes: []string{"a", "b"}, OwnerPID: exited.Process.Pid, OwnerStart: 1,
		Started: time.Now(), LogDir: deadLogs})
	leftover := exec.Command("ip", "netns", "exec", NamespaceName(deadID, "a"), "sleep", "100")
	if err := leftover.Start(); err != nil {
		t.Fatal(err)
	}
	leftoverDone := make(chan error, 1)
	go func() { leftoverDone <- leftover.Wait() }()

	orphanID := plant("x")

	liveID := plant("a")
	writeMarker(&marker{RunID: liveID, Nodes: []string{"a"}, OwnerPID: os.Getpid(), OwnerStart: processStart(os.Getpid()), Started: time.Now()})
	persistentID := plant("a")
	writeMarker(&marker{RunID: persistentID, Nodes: []string{"a"}, OwnerPID: 0, Started: time.Now()})
	unlock()
	t.Cleanup(func() {
		for _, id := range []string{deadID, orphanID, liveID, persistentID} {
			st.removeRun(context.Background(), run{ID: id, Marker: &marker{Nodes: []string{"a", "b", "x"}}}, false)
		}
		leftover.Process.Kill()
	})

	l := ForTest(t, Options{Topology: Topology{Nodes: []Node{{Name: "solo"}}}})
	if out, err := l.Run(ctx, "solo", "ip", "-o", "link"); err != nil || !strings.Contains(string(out), "lo:") {
		t.Errorf("solo lab: %v\n%s", err, out)
	}

	for _, ns := range []string{NamespaceName(deadID, "a"), NamespaceName(deadID, "b"), NamespaceName(orphanID, "x")} {
		if st.namespaceExists(ns) {
			t.Errorf("dead run's namespace %s survived New", ns)
		}
	}
	for _, path := range []string{st.markerPath(deadID), deadLogs} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dead run's %s survived New (stat: %v)", path, err)
		}
	}
	select {
	case <-leftoverDone:
	case <-time.After(5 * time.Second):
		t.Errorf("process in dead run's namespace still running")
	}
	for _, id := range []string{liveID, persistentID} {
		if !st.namespaceExists(NamespaceName(id, "a")) {
			t.Errorf("namespace of live run %s removed", id)
		}
		if _, err := os.Stat(st.markerPath(id)); err != nil {
			t.Errorf("marker of live run %s: %v", id, err)
		}
	}
}

func TestCLI(t *testing.T) {
	nettest.RequireRoot(t)
	ctx := t.Context()
	edgeLab := func(args ...string) (int, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		status := Main(ctx, args, nil, &stdout, &stderr)
		return status, stdout.String() + stderr.String()
	}

	status, out := edgeLab("up")
	if status != 0 {
		t.Fatalf("up = %d:\n%s", status, out)
	}
	m := regexp.MustCompile(`^lab ([0-9a-f]{6}) is up`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("up printed no run id:\n%s", out)
	}
	id := m[1]
	t.Cleanup(func() { Main(context.Background(), []string{"down", id}, nil, &bytes.Buffer{}, &bytes.Buffer{}) })
	for _, want := range []string{NamespaceName(id, NodeClient), ClientAddr4 + "/24", RouterWANAddr6 + "/64"} {
		if !strings.Contains(out, want) {
			t.Errorf("up output lacks %s:\n%s", want, out)
		}
	}

	// The lab outlives the command that made it, and New leaves it alone.
	other := ForTest(t, Options{Topology: Topology{Nodes: []Node{{Name: "solo"}}}})
	other.Close()

	if status, out := edgeLab("ls"); status != 0 || !regexp.MustCompile(id+` +persistent +\S+ +yes +10 `).MatchString(out) {
		t.Errorf("ls = %d, want a live persistent row for %s:\n%s", status, id, out)
	}
	if status, out := edgeLab("exec", "-lab", id, NodeClient, "--", "ip", "-o", "addr", "show", "dev", IfaceHost); status != 0 || !strings.Contains(out, ClientAddr4) {
		t.Errorf("exec ip addr = %d, want the client's address:\n%s", status, out)
	}
	if status, out := edgeLab("exec", "-lab", id, NodeClient, "--", "ping", "-n", "-c", "1", "-W", "2", RouterLANAddr6); status != 0 {
		t.Errorf("exec ping = %d:\n%s", status, out)
	}
	if status, out := edgeLab("exec", "-lab", id, NodeClient, "sh", "-c", "exit 3"); status != 3 {
		t.Errorf("exec exit 3 = %d, want 3:\n%s", status, out)
	}
	if status, out := edgeLab("down", id); status != 0 || !strings.Contains(out, "removed lab "+id) {
		t.Errorf("down = %d:\n%s", status, out)
	}
	if status, out := edgeLab("ls"); status != 0 || strings.Contains(out, id) {
		t.Errorf("ls after down = %d, still lists %s:\n%s", status, id, out)
	}
	if st := defaultState(); st.namespaceExists(NamespaceName(id, NodeRouter)) {
		t.Errorf("namespace of lab %s left after down", id)
	}
}
