package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeDaemon serves the admin API with fixed answers.
func fakeDaemon(t *testing.T, dir, name string, st ctlapi.Status, reloadErr error) {
	t.Helper()
	level := "info"
	serveFake(t, dir, name, st.Version,
		ctlsock.Route{Method: "GET", Path: ctlapi.PathStatus, Handle: func(*http.Request) (any, error) { return st, nil }},
		ctlsock.Route{Method: "POST", Path: ctlapi.PathReload, Write: true, Handle: func(*http.Request) (any, error) {
			if reloadErr != nil {
				return nil, reloadErr
			}
			return ctlapi.ReloadResult{Generation: st.Config.Generation + 1}, nil
		}},
		ctlsock.Route{Method: "GET", Path: ctlapi.PathLogLevel, Handle: func(*http.Request) (any, error) { return ctlapi.LogLevel{Level: level}, nil }},
		ctlsock.Route{Method: "PUT", Path: ctlapi.PathLogLevel, Write: true, Handle: func(r *http.Request) (any, error) {
			var ll ctlapi.LogLevel
			if err := ctlsock.DecodeBody(r, &ll); err != nil {
				return nil, err
			}
			level = ll.Level
			return ll, nil
		}},
	)
}

// staleSocket leaves a socket file that nobody listens on.
func staleSocket(t *testing.T, dir, name string) {
	ln, err := net.Listen("unix", filepath.Join(dir, name+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
}

func status(name string, gen int64, lastErr string) ctlapi.Status {
	return ctlapi.Status{
		Daemon: name, Version: "v0.1.0", PID: 4242, Ready: true, Uptime: 7384.5, LogLevel: "info",
		Started: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		Config:  ctlapi.Config{Path: "/etc/edge/edge.yaml", Generation: gen, LastError: lastErr, Loaded: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)},
	}
}

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update if intended):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestStatus(t *testing.T) {
	dir := t.TempDir()
	fakeDaemon(t, dir, "dns", status("dns", 3, ""), nil)
	fakeDaemon(t, dir, "vpn", status("vpn", 1, "edge.yaml:12:5: vpn.wireguard.pool: prefix 10.100.0.1/24 has host bits set\nmore"), nil)
	staleSocket(t, dir, "firewall")

	code, out, _ := run("--socket-dir", dir, "status")
	if code != ExitNotRunning {
		t.Errorf("status with a stale socket exit = %d, want %d", code, ExitNotRunning)
	}
	golden(t, "status.table.golden", out)

	code, out, _ = run("status", "-o", "json", "--socket-dir="+dir, "dns", "vpn")
	if code != ExitOK {
		t.Errorf("status dns vpn exit = %d, want 0", code)
	}
	golden(t, "status.json.golden", out)

	if code, _, _ := run("--socket-dir", dir, "status", "lb"); code != ExitNotRunning {
		t.Errorf("status lb (not running) exit = %d, want %d", code, ExitNotRunning)
	}
}

// TestStatusNothingRunning: a socket directory without sockets (a wrong
// --socket-dir, most often) lists every daemon down, says so with a hint,
// and exits 3, even with a timeout too short for any dial.
func TestStatusNothingRunning(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"--socket-dir", dir, "status"}, dir + " has no daemon socket"},
		{[]string{"--socket-dir", dir + "/nosuch", "status"}, dir + "/nosuch does not exist"},
		{[]string{"--socket-dir", dir, "--timeout", "1us", "status"}, "has no daemon socket"},
	} {
		code, out, errb := run(tc.args...)
		if code != ExitNotRunning || strings.Count(out, "not running") != 5 || strings.Contains(out, "error") || !strings.Contains(errb, tc.hint) {
			t.Errorf("%q = %d\n%s%s\nwant 3, five daemons down and a hint %q", tc.args, code, out, errb, tc.hint)
		}
	}
}

func TestStatusUnknownDaemon(t *testing.T) {
	code, _, errb := run("--socket-dir", t.TempDir(), "status", "nosuch")
	if code != ExitUsage || !strings.Contains(errb, `unknown daemon "nosuch"`) {
		t.Errorf("status nosuch = %d, %q; want 2 and unknown daemon", code, errb)
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, _ := run("-o", "json", "version")
	var v struct{ Version, API string }
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.API != ctlapi.APIVersion || v.Version == "" {
		t.Errorf("-o json version = %d, %q (%v); want JSON with version and api", code, out, err)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	fakeDaemon(t, dir, "dns", status("dns", 3, ""), nil)
	fakeDaemon(t, dir, "vpn", status("vpn", 1, ""), ctlapi.Errorf(422, "reload failed, generation 1 keeps running: edge.yaml:3:1: vpn.bogus: unknown key"))
	fakeDaemon(t, dir, "lb", status("lb", 1, ""), ctlapi.Errorf(403, "POST /v1/reload refused: uid 1000 may only read"))

	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"reload", "dns"}, ExitOK, "dns: reloaded, config generation 4\n", ""},
		{[]string{"reload", "vpn"}, ExitFailure, "", "vpn: reload failed, generation 1 keeps running: edge.yaml:3:1: vpn.bogus: unknown key\n"},
		{[]string{"reload", "lb"}, ExitDenied, "", "lb: POST /v1/reload refused: uid 1000 may only read (changes need root or membership in the admin group)\n"},
		{[]string{"reload", "proxy"}, ExitNotRunning, "", "no daemon answers on " + dir + "/proxy.sock: daemon not running; start it"},
		{[]string{"reload"}, ExitFailure, "dns: reloaded, config generation 4\n", "vpn: reload failed"},
		{[]string{"-o", "json", "reload", "dns"}, ExitOK, "[\n  {\n    \"daemon\": \"dns\",\n    \"generation\": 4\n  }\n]\n", ""},
		{[]string{"reload", "../etc"}, ExitUsage, "", `invalid daemon name "../etc"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errb := run(append([]string{"--socket-dir", dir}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errb, tc.stderr) {
				t.Errorf("edgectl %q = %d\nstdout: %q\nstderr: %q\nwant %d, stdout with %q, stderr with %q", tc.args, code, out, errb, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	if code, _, errb := run("--socket-dir", t.TempDir(), "reload"); code != ExitNotRunning || !strings.Contains(errb, "no daemon sockets") {
		t.Errorf("reload with no daemons = %d %q, want %d and a hint", code, errb, ExitNotRunning)
	}
}

func TestLogLevel(t *testing.T) {
	dir := t.TempDir()
	fakeDaemon(t, dir, "dns", status("dns", 1, ""), nil)
	if code, out, _ := run("--socket-dir", dir, "log-level", "dns", "debug"); code != 0 || out != "dns: debug\n" {
		t.Errorf("log-level dns debug = %d %q", code, out)
	}
	if code, out, _ := run("--socket-dir", dir, "log-level", "dns"); code != 0 || out != "dns: debug\n" {
		t.Errorf("log-level dns = %d %q, want debug", code, out)
	}
}

func TestVersionMismatch(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, "dns.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ctlapi.HeaderAPI, "2")
		w.Header().Set(ctlapi.HeaderVersion, "v9.0.0")
		io.WriteString(w, "{}")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	code, out, _ := run("--socket-dir", dir, "status", "dns")
	if code != ExitVersion || !strings.Contains(out, "daemon speaks admin API v2, this edgectl speaks v1") {
		t.Errorf("status against API v2 = %d\n%s\nwant %d and both versions named", code, out, ExitVersion)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, ExitUsage, "usage: edgectl"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"--bogus", "status"}, ExitUsage, "unknown flag --bogus"},
		{[]string{"-o", "yaml", "status"}, ExitUsage, `unknown output "yaml"`},
		{[]string{"status", "--socket-dir"}, ExitUsage, "flag --socket-dir needs a value"},
		{[]string{"--timeout", "soon", "status"}, ExitUsage, `invalid --timeout "soon"`},
		{[]string{"log-level"}, ExitUsage, "usage: edgectl log-level"},
		{[]string{"completion", "tcsh"}, ExitUsage, `unknown shell "tcsh"`},
	}
	for _, tc := range tests {
		code, _, errb := run(tc.args...)
		if code != tc.code || !strings.Contains(errb, tc.stderr) {
			t.Errorf("edgectl %q = %d %q, want %d with %q", tc.args, code, errb, tc.code, tc.stderr)
		}
	}
	if code, out, _ := run("help"); code != 0 || !strings.Contains(out, "Exit codes: 0 ok") {
		t.Errorf("help = %d %q", code, out)
	}
	if code, out, _ := run("version"); code != 0 || !strings.HasPrefix(out, "edgectl ") {
		t.Errorf("version = %d %q", code, out)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, _ := run("completion", sh)
		if code != 0 || !strings.Contains(out, "log-level") || !strings.Contains(out, "firewall") {
			t.Errorf("completion %s = %d, want a script naming commands and daemons", sh, code)
		}
		if sh == "bash" {
			if _, err := exec.LookPath("bash"); err == nil {
				cmd := exec.Command("bash", "-n")
				cmd.Stdin = strings.NewReader(out)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("bash -n on the bash completion: %v\n%s", err, b)
				}
			}
		}
	}
}

func TestFormatUptime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 12*time.Minute + 5*time.Second: "12m5s",
		3*time.Hour + 4*time.Minute + 9*time.Second: "3h4m", 53 * time.Hour: "2d5h",
	} {
		if got := formatUptime(d); got != want {
			t.Errorf("formatUptime(%v) = %q, want %q", d, got, want)
		}
	}
}
