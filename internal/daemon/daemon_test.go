package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
)

// section is the test daemon's config section.
type section struct {
	config.Common `yaml:",inline"`
	Greeting      string          `yaml:"greeting"`
	StopDelay     config.Duration `yaml:"stop_delay"`
}

func (s *section) Validate(c *config.Checker) {
	if s.Greeting == "" {
		c.Key("greeting").Errorf("required")
	}
}

// service keeps the greeting; Prepare refuses "refuse" to exercise a
// prepare that fails after the config validated.
type service struct {
	greeting  atomic.Value
	stopDelay time.Duration
	ready     chan struct{}
	// gen is the generation the last commit was told.
	gen atomic.Int64
}

func (s *service) Run(ctx context.Context) error {
	close(s.ready)
	<-ctx.Done()
	time.Sleep(s.stopDelay)
	return nil
}

func (s *service) Prepare(cfg *config.File[section], _ Request) (Change, error) {
	if cfg.Section.Greeting == "refuse" {
		return Change{}, errors.New("greeting refused by the service")
	}
	return Change{Commit: func(gen int64) {
		s.greeting.Store(cfg.Section.Greeting)
		s.gen.Store(gen)
	}}, nil
}

func (s *service) Ready() <-chan struct{} { return s.ready }
func (s *service) Status() any {
	return map[string]any{"greeting": s.greeting.Load().(string), "generation": s.gen.Load()}
}

var (
	_ Service[section] = (*service)(nil)
	_ Readier          = (*service)(nil)
	_ Statuser         = (*service)(nil)
)

func testSpec() Spec[section] {
	return Spec[section]{
		Name:     "testd",
		Defaults: func() section { return section{Greeting: "hello"} },
		New: func(env Env, cfg *config.File[section]) (Service[section], error) {
			s := &service{ready: make(chan struct{}), stopDelay: cfg.Section.StopDelay.D()}
			c, err := s.Prepare(cfg, Request{Reason: "start"})
			if err != nil {
				return nil, err
			}
			c.Apply(1)
			return s, nil
		},
	}
}

// fixture is a daemon running in-process on a temporary config.
type fixture struct {
	t       *testing.T
	dir     string
	cfgPath string
	metrics string
	client  *ctlapi.Client
	cancel  context.CancelFunc
	done    chan error
	logs    *syncBuffer
}

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

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (f *fixture) writeConfig(section string) {
	f.t.Helper()
	cfg := fmt.Sprintf("version: 1\nadmin: {socket_dir: %s}\nstate_dir: %s\ntestd:\n  metrics: {listen: %q}\n%s",
		filepath.Join(f.dir, "run"), filepath.Join(f.dir, "state"), f.metrics, section)
	if err := os.WriteFile(f.cfgPath, []byte(cfg), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func start(t *testing.T, section string, spec Spec[section]) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, cfgPath: filepath.Join(dir, "edge.yaml"), metrics: freePort(t), done: make(chan error, 1), logs: &syncBuffer{}}
	f.writeConfig(section)
	f.client = ctlapi.NewClient(filepath.Join(dir, "run"), "testd")
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.done <- Run(ctx, spec, Options{ConfigPath: f.cfgPath, LogOutput: f.logs}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", f.logs.String())
		}
	})
	f.waitReady()
	return f
}

func (f *fixture) waitReady() {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + f.metrics + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-f.done:
			f.t.Fatalf("daemon stopped before ready: %v\n%s", err, f.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	f.t.Fatalf("daemon not ready in time\n%s", f.logs.String())
}

func (f *fixture) greeting() string {
	f.t.Helper()
	st, err := f.client.Status(context.Background())
	if err != nil {
		f.t.Fatalf("Status() error: %v", err)
	}
	var d struct{ Greeting string }
	if err := json.Unmarshal(st.Detail, &d); err != nil {
		f.t.Fatalf("Status().Detail %s: %v", st.Detail, err)
	}
	return d.Greeting
}

func TestRunStatusReload(t *testing.T) {
	f := start(t, "  greeting: one\n", testSpec())
	ctx := context.Background()

	st, err := f.client.Status(ctx)
	if err != nil {
		t.Fatalf("Status() error: %v", err)
	}
	if st.Daemon != "testd" || !st.Ready || st.Config.Generation != 1 || st.PID != os.Getpid() || st.LogLevel != "info" {
		t.Errorf("Status() = %+v, want ready testd at generation 1", st)
	}
	if string(st.Detail) != `{"generation":1,"greeting":"one"}` {
		t.Errorf("Status().Detail = %s, want the service's status", st.Detail)
	}

	// Reload through the API.
	f.writeConfig("  greeting: two\n")
	rr, err := f.client.Reload(ctx)
	if err != nil || rr.Generation != 2 {
		t.Fatalf("Reload() = %+v, %v; want generation 2", rr, err)
	}
	if g := f.greeting(); g != "two" {
		t.Errorf("greeting after reload = %q, want two", g)
	}
	st, _ = f.client.Status(ctx)
	if want := `{"generation":2,"greeting":"two"}`; string(st.Detail) != want {
		t.Errorf("Status().Detail after reload = %s, want %s: the commit is told the runner's generation", st.Detail, want)
	}

	// A broken file keeps the old config; the error names the line.
	f.writeConfig("  greeting: three\n  bogus: 1\n")
	_, err = f.client.Reload(ctx)
	var ae *ctlapi.Error
	if !errors.As(err, &ae) || ae.Status != 422 || !strings.Contains(ae.Message, `edge.yaml:7:3: testd.bogus: unknown key "bogus"`) {
		t.Fatalf("Reload(broken) error = %v, want 422 naming line 7 and testd.bogus", err)
	}
	// A valid file that the service refuses to build keeps the old one too.
	f.writeConfig("  greeting: refuse\n")
	if _, err := f.client.Reload(ctx); err == nil || !strings.Contains(err.Error(), "greeting refused by the service") {
		t.Fatalf("Reload(refused) error = %v, want the service's error", err)
	}
	// Listener settings cannot change on reload.
	old := f.metrics
	f.metrics = "127.0.0.1:1"
	f.writeConfig("  greeting: four\n")
	if _, err := f.client.Reload(ctx); err == nil || !strings.Contains(err.Error(), "testd.metrics: the listener changes only on restart") {
		t.Fatalf("Reload(new metrics address) error = %v, want restart-only error", err)
	}
	f.metrics = old

	st, _ = f.client.Status(ctx)
	if st.Config.Generation != 2 || st.Config.ReloadFailures != 3 || !strings.Contains(st.Config.LastError, "listener changes only on restart") {
		t.Errorf("Status().Config after failed reloads = %+v, want generation 2, 3 failures, the last error", st.Config)
	}
	if g := f.greeting(); g != "two" {
		t.Errorf("greeting after failed reloads = %q, want two (unchanged)", g)
	}

	// SIGHUP reloads the same way.
	f.writeConfig("  greeting: five\n")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "SIGHUP reload", func() bool { return f.greeting() == "five" })
	st, _ = f.client.Status(ctx)
	if st.Config.Generation != 3 || st.Config.LastError != "" {
		t.Errorf("Status().Config after SIGHUP = %+v, want generation 3 and no error", st.Config)
	}

	// Metrics say the same.
	body := get(t, "http://"+f.metrics+"/metrics")
	for _, want := range []string{
		`edge_testd_config_reloads_total{result="failure"} 3`,
		`edge_testd_config_reloads_total{result="success"} 2`,
		"edge_testd_config_generation 3",
		"edge_testd_ready 1",
		`edge_testd_admin_requests_total{code="422",path="/v1/reload"} 3`,
		"edge_testd_build_info{",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := get(t, "http://"+f.metrics+"/healthz"); got != "ok\n" {
		t.Errorf("/healthz = %q, want ok", got)
	}
}

func TestLogLevel(t *testing.T) {
	f := start(t, "", testSpec())
	ctx := context.Background()
	if err := f.client.SetLogLevel(ctx, "debug"); err != nil {
		t.Fatalf("SetLogLevel(debug) error: %v", err)
	}
	if st, _ := f.client.Status(ctx); st.LogLevel != "debug" {
		t.Errorf("log level = %q, want debug", st.LogLevel)
	}
	err := f.client.SetLogLevel(ctx, "loud")
	var ae *ctlapi.Error
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("SetLogLevel(loud) error = %v, want 400", err)
	}
}

func TestStopDeadline(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "edge.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("version: 1\nadmin: {socket_dir: %s/run}\nstate_dir: %s/state\ntestd: {metrics: {listen: \"off\"}, shutdown_timeout: 200ms, stop_delay: 5s}\n", dir, dir)), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, testSpec(), Options{ConfigPath: cfgPath, LogOutput: io.Discard}) }()
	c := ctlapi.NewClient(dir+"/run", "testd")
	waitFor(t, "status", func() bool { st, err := c.Status(context.Background()); return err == nil && st.Ready })
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not stop within 200ms") {
			t.Errorf("Run() with a slow service = %v, want deadline error", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run() did not return at the deadline")
	}
}

func TestSocketInUse(t *testing.T) {
	f := start(t, "", testSpec())
	other := freePort(t)
	cfg, _ := os.ReadFile(f.cfgPath)
	second := filepath.Join(f.dir, "second.yaml")
	os.WriteFile(second, bytes.Replace(cfg, []byte(f.metrics), []byte(other), 1), 0o600)
	err := Run(context.Background(), testSpec(), Options{ConfigPath: second, LogOutput: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "in use by a running process") {
		t.Errorf("second Run on the same socket = %v, want 'in use'", err)
	}
}

func TestMainFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("version: 1\ntestd: {greeting: hi}\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\ntestd:\n  greting: hi\n"), 0o600)
	invalid := filepath.Join(dir, "invalid.yaml")
	os.WriteFile(invalid, []byte("version: 1\nsite: {networks: {lan: [10.0.0.1/8]}}\ntestd:\n  greeting: \"\"\n  shutdown_timeout: 0s\n"), 0o600)

	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{"version", []string{"-version"}, ExitOK, "edge-testd ", ""},
		{"check good", []string{"-check", "-config", good}, ExitOK, "greeting: hi\n", ""},
		{"check prints defaults", []string{"-check", "-config", good}, ExitOK, "socket_dir: /run/edge", ""},
		{"check bad", []string{"-check", "-config", bad}, ExitConfig, "", "bad.yaml:3:3: testd.greting: unknown key \"greting\" (did you mean \"greeting\"?)\n"},
		{"check reports every error", []string{"-check", "-config", invalid}, ExitConfig, "", "invalid.yaml:2:25: site.networks.lan[0]: prefix 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?\ninvalid.yaml:4:13: testd.greeting: required\ninvalid.yaml:5:21: testd.shutdown_timeout: must be positive\nedge-testd: config has 3 error(s)\n"},
		{"check missing", []string{"-check", "-config", filepath.Join(dir, "nope.yaml")}, ExitConfig, "", "nope.yaml: read config: no such file or directory"},
		{"bad flag", []string{"-bogus"}, ExitUsage, "", "flag provided but not defined: -bogus"},
		{"extra arg", []string{"run"}, ExitUsage, "", `unexpected argument "run"`},
		{"no cleanup flag without Cleanup", []string{"-cleanup"}, ExitUsage, "", "flag provided but not defined: -cleanup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(testSpec(), tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.wantStdout) || !strings.Contains(errb.String(), tc.wantStderr) {
				t.Errorf("Main(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q", tc.args, code, out.String(), errb.String(), tc.code, tc.wantStdout, tc.wantStderr)
			}
		})
	}

	var out, errb bytes.Buffer

	// -cleanup appears with a Cleanup func, and runs even on a broken config.
	spec := testSpec()
	var cleaned *config.File[section]
	called := false
	spec.Cleanup = func(_ context.Context, _ *slog.Logger, cfg *config.File[section]) error {
		called, cleaned = true, cfg
		return nil
	}
	out.Reset()
	errb.Reset()
	if code := Main(spec, []string{"-cleanup", "-config", bad}, &out, &errb); code != ExitOK || !called || cleaned != nil {
		t.Errorf("Main(-cleanup, broken config) = %d, called %v, cfg %v; want 0, called with nil\n%s", code, called, cleaned, errb.String())
	}

	// -check runs the spec's Check after validation: its config errors
	// are exit 78, others exit 1, and nothing is printed on either.
	spec = testSpec()
	spec.Check = func(cfg *config.File[section]) error {
		switch cfg.Section.Greeting {
		case "hi":
			return nil
		case "file":
			return config.Errors{cfg.ErrorAt("testd.greeting", "cannot read it")}
		}
		return errors.New("cannot build it")
	}
	checkFile := filepath.Join(dir, "check-file.yaml")
	os.WriteFile(checkFile, []byte("version: 1\ntestd:\n  greeting: file\n"), 0o600)
	checkOther := filepath.Join(dir, "check-other.yaml")
	os.WriteFile(checkOther, []byte("version: 1\ntestd:\n  greeting: other\n"), 0o600)
	for _, tc := range []struct {
		cfg            string
		code           int
		stdout, stderr string
	}{
		{good, ExitOK, "greeting: hi\n", ""},
		{bad, ExitConfig, "", `testd.greting: unknown key "greting"`},
		{checkFile, ExitConfig, "", "check-file.yaml:3:13: testd.greeting: cannot read it\nedge-testd: config has 1 error(s)\n"},
		{checkOther, ExitFailure, "", "edge-testd: cannot build it\n"},
	} {
		out.Reset()
		errb.Reset()
		code := Main(spec, []string{"-check", "-config", tc.cfg}, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || tc.stdout == "" && out.Len() > 0 || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("Main(-check, %s) with Check = %d\nstdout %q\nstderr %q\nwant %d, %q, %q", filepath.Base(tc.cfg), code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
		}
	}

	// -render appears with a Render func: it writes to stdout, a broken
	// config is exit 78, and a render error exit 1.
	spec = testSpec()
	spec.Render = func(w io.Writer, cfg *config.File[section]) error {
		if cfg.Section.Greeting == "fail" {
			return errors.New("cannot render this")
		}
		fmt.Fprintf(w, "rendered %s\n", cfg.Section.Greeting)
		return nil
	}
	failing := filepath.Join(dir, "failing.yaml")
	os.WriteFile(failing, []byte("version: 1\ntestd:\n  greeting: fail\n"), 0o600)
	for _, tc := range []struct {
		cfg            string
		code           int
		stdout, stderr string
	}{
		{good, ExitOK, "rendered hi\n", ""},
		{bad, ExitConfig, "", `testd.greting: unknown key "greting"`},
		{failing, ExitFailure, "", "edge-testd: render: cannot render this\n"},
	} {
		out.Reset()
		errb.Reset()
		if code := Main(spec, []string{"-render", "-config", tc.cfg}, &out, &errb); code != tc.code || out.String() != tc.stdout || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("Main(-render, %s) = %d\nstdout %q\nstderr %q\nwant %d, %q, %q", filepath.Base(tc.cfg), code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
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

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestNewFails checks that a service that cannot be built leaves no socket
// or listener behind.
func TestNewFails(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "edge.yaml")
	metrics := freePort(t)
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("version: 1\nadmin: {socket_dir: %s/run}\nstate_dir: %s/state\ntestd: {metrics: {listen: %q}}\n", dir, dir, metrics)), 0o600)
	spec := testSpec()
	spec.New = func(Env, *config.File[section]) (Service[section], error) {
		return nil, errors.New("zone file missing")
	}
	err := Run(context.Background(), spec, Options{ConfigPath: cfgPath, LogOutput: io.Discard})
	if err == nil || err.Error() != "start testd: zone file missing" {
		t.Errorf("Run() with a failing New = %v, want the service's error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "testd.sock")); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind: %v", err)
	}
	ln, err := net.Listen("tcp", metrics)
	if err != nil {
		t.Errorf("metrics port still taken: %v", err)
	} else {
		ln.Close()
	}
}
