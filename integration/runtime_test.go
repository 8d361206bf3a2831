//go:build integration

// The runtime contract, end to end: a daemon built on internal/daemon runs
// in the router namespace of the standard lab and is driven by edgectl,
// signals and real TCP clients.
//
//	client 192.168.1.100 --br-lan-- router ------ internet ------ outside-de 198.51.100.10
//	                              192.168.1.1    192.0.2.1
//	                              edge-testd :7000 (answers lan only)
//	                              metrics 127.0.0.1:9799 (router's own loopback)
//	                              admin socket <tmp>/run/testd.sock (a path: reachable from the host's root)

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homeedge/edge/integration/lab"
)

// notifySink collects what a daemon tells systemd through NOTIFY_SOCKET.
type notifySink struct {
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
}

func newNotifySink(t *testing.T, path string) *notifySink {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &notifySink{conn: conn}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return s
}

// all returns every notification so far, joined.
func (s *notifySink) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.msgs, "|")
}

type testdEnv struct {
	t       *testing.T
	lab     *lab.Lab
	dir     string
	cfgPath string
	sockDir string
}

func (e *testdEnv) writeConfig(testdSection string) {
	e.t.Helper()
	cfg := fmt.Sprintf(`version: 1
site:
  domain: example.net
  local_domain: home.arpa
  interfaces: {wan: wan, lan: br-lan}
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
admin: {socket_dir: %s, world_readable: true}
state_dir: %s
testd:
  metrics: {listen: "127.0.0.1:9799"}
  listen: "0.0.0.0:7000"
%s`, e.sockDir, filepath.Join(e.dir, "state"), testdSection)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// edgectl runs edgectl in the host namespace (the socket is a path) as
// root, or as uid 65534 when asUser, and returns its exit code and output.
func (e *testdEnv) edgectl(asUser bool, args ...string) (int, string) {
	e.t.Helper()
	cmd := exec.Command(bin("edgectl"), append([]string{"--socket-dir", e.sockDir}, args...)...)
	if asUser {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	return runExit(e.t, cmd)
}

// greet connects from node to addr:7000 and returns the line it got
// ("" when the connection was closed without one).
func (e *testdEnv) greet(node, addr string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := e.lab.Run(ctx, node, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/7000 && timeout 5 cat <&3", addr))
	if err != nil {
		e.t.Fatalf("connect from %s to %s:7000: %v", node, addr, err)
	}
	return strings.TrimSpace(string(out))
}

func (e *testdEnv) waitGreeting(node, addr, want string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		if got = e.greet(node, addr); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("greeting from %s = %q, want %q", node, got, want)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestDaemonRuntime(t *testing.T) {
	l := lab.ForTest(t, lab.Options{})
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	e := &testdEnv{t: t, lab: l, dir: dir, cfgPath: filepath.Join(dir, "edge.yaml"), sockDir: filepath.Join(dir, "run")}
	e.writeConfig("  greeting: one\n  allow: [lan]\n")
	sink := newNotifySink(t, filepath.Join(dir, "notify.sock"))

	p, err := l.Start(lab.NodeRouter, "edge-testd", []string{bin("edge-testd"), "-config", e.cfgPath},
		lab.WithEnv("NOTIFY_SOCKET="+filepath.Join(dir, "notify.sock")))
	if err != nil {
		t.Fatal(err)
	}

	// Ready: systemd is told once the daemon serves.
	waitUntil(t, "READY=1", func() bool { return strings.Contains(sink.all(), "READY=1") })
	e.waitGreeting(lab.NodeClient, lab.RouterLANAddr4, "one")
	if got := e.greet(lab.NodeOutsideDE, lab.RouterWANAddr4); got != "" {
		t.Errorf("outside client got %q, want nothing (allow: [lan])", got)
	}

	// edgectl status, as root.
	code, out := e.edgectl(false, "-o", "json", "status", "testd")
	var rows []struct {
		State  string
		Status struct {
			Ready  bool
			PID    int
			Config struct{ Generation int64 }
		}
	}
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || rows[0].State != "up" || !rows[0].Status.Ready || rows[0].Status.Config.Generation != 1 || rows[0].Status.PID != p.Pid() {
		t.Fatalf("edgectl status testd = %d %s (%v), want up, ready, generation 1, pid %d", code, out, err, p.Pid())
	}

	// Read-only for an unprivileged user; its write is refused and logged.
	if code, out := e.edgectl(true, "status", "testd"); code != 0 || !strings.Contains(out, "testd") || !strings.Contains(out, "up") {
		t.Errorf("edgectl status as uid 65534 = %d %q, want 0 and testd up", code, out)
	}
	if code, out := e.edgectl(true, "reload", "testd"); code != 4 || !strings.Contains(out, "uid 65534 may only read") {
		t.Errorf("edgectl reload as uid 65534 = %d %q, want exit 4 and the reason", code, out)
	}
	if !strings.Contains(p.Log(), `msg="admin change refused" daemon=testd component=admin method=POST path=/v1/reload uid=65534`) {
		t.Errorf("daemon log lacks the refused change:\n%s", p.Log())
	}

	// SIGHUP reloads.
	e.writeConfig("  greeting: two\n  allow: [lan]\n")
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitGreeting(lab.NodeClient, lab.RouterLANAddr4, "two")
	waitUntil(t, "RELOADING=1 then READY=1", func() bool {
		s := sink.all()
		i := strings.Index(s, "RELOADING=1")
		return i >= 0 && strings.Contains(s[i:], "READY=1")
	})

	// edgectl reload, as root.
	e.writeConfig("  greeting: three\n  allow: [lan]\n")
	if code, out := e.edgectl(false, "reload", "testd"); code != 0 || out != "testd: reloaded, config generation 3\n" {
		t.Fatalf("edgectl reload testd = %d %q, want generation 3", code, out)
	}
	e.waitGreeting(lab.NodeClient, lab.RouterLANAddr4, "three")

	// A broken config is refused with its line; the old one keeps serving.
	e.writeConfig("  greeting: four\n  greetng: typo\n  allow: [lan]\n")
	code, out = e.edgectl(false, "reload", "testd")
	if code != 1 || !strings.Contains(out, `edge.yaml:14:3: testd.greetng: unknown key "greetng" (did you mean "greeting"?)`) {
		t.Errorf("edgectl reload with a broken config = %d %q, want exit 1 naming line 14", code, out)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitLog(context.Background(), `msg="reload failed; the previous config keeps running"`); err != nil {
		t.Error(err)
	}
	waitUntil(t, "second failed reload", func() bool { return strings.Count(p.Log(), "reload failed;") >= 2 })
	if got := e.greet(lab.NodeClient, lab.RouterLANAddr4); got != "three" {
		t.Errorf("greeting after broken reloads = %q, want three (unchanged)", got)
	}
	code, out = e.edgectl(false, "status", "testd")
	if code != 0 || !strings.Contains(out, "gen 3") || !strings.Contains(out, "last reload failed: edge.yaml:14:3") {
		t.Errorf("edgectl status after failed reloads = %d\n%s\nwant gen 3 and the failure", code, out)
	}

	// The metrics say so too, and promtool accepts them.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	metrics, err := l.Run(ctx, lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9799/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`edge_testd_config_reloads_total{result="failure"} 2`, `edge_testd_config_reloads_total{result="success"} 2`, "edge_testd_config_generation 3"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(string(metrics))
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		out, err := l.Run(ctx, lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9799"+path)
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("GET %s = %q, %v; want %q", path, out, err, want)
		}
	}

	// SIGTERM stops it cleanly: exit 0, STOPPING=1, socket gone.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("edge-testd did not stop on SIGTERM")
	}
	if err := p.Wait(); err != nil {
		t.Errorf("edge-testd exit after SIGTERM: %v, want 0", err)
	}
	if !strings.Contains(sink.all(), "STOPPING=1") {
		t.Errorf("notifications %q lack STOPPING=1", sink.all())
	}
	if _, err := os.Stat(filepath.Join(e.sockDir, "testd.sock")); !os.IsNotExist(err) {
		t.Errorf("admin socket still there after stop: %v", err)
	}
	// testd is no daemon of the suite: once its socket is gone, edgectl
	// cannot tell it from a typo and says so.
	if code, out := e.edgectl(false, "status", "testd"); code != 2 || !strings.Contains(out, `unknown daemon "testd"`) || !strings.Contains(out, "no socket") {
		t.Errorf("edgectl status after stop = %d %q, want 2 and unknown daemon, no socket", code, out)
	}
}

// TestDaemonStartErrors checks the failures an operator meets first: a
// broken config at start and a port already taken.
func TestDaemonStartErrors(t *testing.T) {
	l := lab.ForTest(t, lab.Options{})
	dir := t.TempDir()
	e := &testdEnv{t: t, lab: l, dir: dir, cfgPath: filepath.Join(dir, "edge.yaml"), sockDir: filepath.Join(dir, "run")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	e.writeConfig("  greeting: one\n  allow: [lan, dmz]\n")
	out, err := l.Run(ctx, lab.NodeRouter, bin("edge-testd"), "-config", e.cfgPath)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 78 || !strings.Contains(string(out), `edge.yaml:14:16: testd.allow[1]: unknown network "dmz"; site.networks has "lan"`) {
		t.Errorf("start with an unknown network = %v\n%s\nwant exit 78 naming line 14", err, out)
	}

	// The port is taken by another process in the same namespace.
	e.writeConfig("  greeting: one\n  allow: [lan]\n")
	first, err := l.Start(lab.NodeRouter, "first", []string{bin("edge-testd"), "-config", e.cfgPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.WaitLog(ctx, "msg=ready"); err != nil {
		t.Fatal(err)
	}
	out, err = l.Run(ctx, lab.NodeRouter, bin("edge-testd"), "-config", e.cfgPath)
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "address already in use") {
		t.Errorf("second instance = %v\n%s\nwant exit 1 and the address in use", err, out)
	}
	// The first one is untouched, socket included.
	if code, out := e.edgectl(false, "status", "testd"); code != 0 {
		t.Errorf("first instance after a second tried to start: %d %s", code, out)
	}
}
