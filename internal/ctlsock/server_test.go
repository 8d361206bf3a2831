package ctlsock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/nettest"
)

type echo struct {
	Name string `json:"name"`
}

// startServer serves a status route and a write route on a socket in dir.
func startServer(t *testing.T, dir string, adminGID int, mode os.FileMode) (*Server, string) {
	t.Helper()
	path := filepath.Join(dir, "testd.sock")
	ln, _, err := Listen(path, "", mode)
	if err != nil {
		t.Fatalf("Listen(%s) error: %v", path, err)
	}
	s := New(Options{Daemon: "testd", Version: "v-test", Log: slog.New(slog.DiscardHandler), AdminGID: adminGID})
	s.Handle(
		Route{Method: "GET", Path: ctlapi.PathStatus, Handle: func(r *http.Request) (any, error) {
			return ctlapi.Status{Daemon: "testd", Version: "v-test"}, nil
		}},
		Route{Method: "POST", Path: ctlapi.PathReload, Write: true, Handle: func(r *http.Request) (any, error) {
			return ctlapi.ReloadResult{Generation: 2}, nil
		}},
		Route{Method: "POST", Path: "/v1/echo", Write: true, Handle: func(r *http.Request) (any, error) {
			var e echo
			if err := DecodeBody(r, &e); err != nil {
				return nil, err
			}
			if e.Name == "boom" {
				return nil, errors.New("internal trouble")
			}
			if e.Name == "" {
				return nil, ctlapi.Errorf(http.StatusUnprocessableEntity, "name is required")
			}
			return e, nil
		}},
	)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, path
}

func TestServeAndClient(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir, -1, 0o660)
	c := ctlapi.NewClient(dir, "testd")
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil || st.Daemon != "testd" {
		t.Fatalf("Status() = %+v, %v; want daemon testd", st, err)
	}
	// The test runs as the socket's owner, which may write.
	if rr, err := c.Reload(ctx); err != nil || rr.Generation != 2 {
		t.Errorf("Reload() = %+v, %v; want generation 2", rr, err)
	}

	tests := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
		wantMsg    string
	}{
		{"echo", "POST", "/v1/echo", echo{"x"}, 0, ""},
		{"handler error", "POST", "/v1/echo", echo{""}, 422, "name is required"},
		{"internal error", "POST", "/v1/echo", echo{"boom"}, 500, "internal trouble"},
		{"unknown field", "POST", "/v1/echo", map[string]string{"nmae": "x"}, 400, `invalid request body: json: unknown field "nmae"`},
		{"empty body", "POST", "/v1/echo", nil, 400, "request body is empty"},
		{"not found", "GET", "/v1/nope", nil, 404, "no such endpoint /v1/nope"},
		{"wrong method", "DELETE", ctlapi.PathStatus, nil, 405, "/v1/status does not take DELETE; use GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out echo
			_, err := c.Do(ctx, tc.method, tc.path, tc.body, &out)
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatalf("Do(%s %s) error: %v", tc.method, tc.path, err)
				}
				return
			}
			var ae *ctlapi.Error
			if !errors.As(err, &ae) || ae.Status != tc.wantStatus || !strings.Contains(ae.Message, tc.wantMsg) {
				t.Errorf("Do(%s %s) error = %v, want status %d with %q", tc.method, tc.path, err, tc.wantStatus, tc.wantMsg)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	dir := t.TempDir()
	c := ctlapi.NewClient(dir, "testd")
	if _, err := c.Status(context.Background()); !errors.Is(err, ctlapi.ErrNotRunning) {
		t.Errorf("Status() with no socket error = %v, want ErrNotRunning", err)
	}

	// A stale socket file (nobody listening) also means not running.
	path := filepath.Join(dir, "testd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := c.Status(context.Background()); !errors.Is(err, ctlapi.ErrNotRunning) {
		t.Errorf("Status() with stale socket error = %v, want ErrNotRunning", err)
	}

	// Something that is not an edge daemon answers.
	os.Remove(path)
	ln, err = net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })}
	go srv.Serve(ln)
	defer srv.Close()
	if _, err := c.Status(context.Background()); !errors.Is(err, ctlapi.ErrVersionMismatch) {
		t.Errorf("Status() from a foreign server error = %v, want ErrVersionMismatch", err)
	}
}

func TestAPIVersionMismatch(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir, -1, 0o660)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(dir, "testd.sock"))
	}}}
	req, _ := http.NewRequest("GET", "http://x/v1/status", nil)
	req.Header.Set(ctlapi.HeaderAPI, "9")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "speaks admin API v1, the client v9") {
		t.Errorf("GET with API 9 = %d %s, want 400 naming both versions", resp.StatusCode, body)
	}
}

func TestListenStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.sock")

	// A socket file whose listener died is replaced.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln2, _, err := Listen(path, "", 0o660)
	if err != nil {
		t.Fatalf("Listen over stale socket error: %v", err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want 0660", fi.Mode().Perm())
	}

	// A live one is refused.
	if _, _, err := Listen(path, "", 0o660); err == nil || !strings.Contains(err.Error(), "in use by a running process") {
		t.Errorf("Listen over live socket error = %v, want 'in use'", err)
	}
	ln2.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file still there after Close: %v", err)
	}

	// A regular file is not ours to remove.
	os.WriteFile(path, []byte("x"), 0o600)
	if _, _, err := Listen(path, "", 0o660); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file error = %v, want 'not a socket'", err)
	}
}

// childEnv marks a re-executed test binary that acts as an unprivileged
// client.
const childEnv = "EDGE_CTLSOCK_CHILD"

// TestPeerCredentials runs clients as other users (uid 65534) and checks
// what SO_PEERCRED lets them do.
func TestPeerCredentials(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		childClient(path)
		return
	}
	nettest.RequireRoot(t)
	dir := openTempDir(t)
	const adminGID = 4242
	startServer(t, dir, adminGID, 0o666)

	// The test binary sits in a private build directory; copy it where
	// another user may run it.
	bin := filepath.Join(dir, "ctlsock.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	run := func(cred *syscall.Credential) string {
		cmd := exec.Command(bin, "-test.run=^TestPeerCredentials$")
		cmd.Env = append(os.Environ(), childEnv+"="+filepath.Join(dir, "testd.sock"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child as %+v: %v\n%s", cred, err, out)
		}
		return string(out)
	}
	tests := []struct {
		name string
		cred *syscall.Credential
		want string
	}{
		{"nobody reads only", &syscall.Credential{Uid: 65534, Gid: 65534}, "status=ok reload=denied"},
		{"admin group member writes", &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{adminGID}}, "status=ok reload=ok"},
		{"admin primary group writes", &syscall.Credential{Uid: 65534, Gid: adminGID}, "status=ok reload=ok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(tc.cred); !strings.Contains(got, tc.want) {
				t.Errorf("child output = %q, want %q", got, tc.want)
			}
		})
	}

	// With the default mode 0660 and no group, another user cannot even
	// connect, and the client says how to get access.
	dir2 := openTempDir(t)
	startServer(t, dir2, adminGID, 0o660)
	cmd := exec.Command(bin, "-test.run=^TestPeerCredentials$")
	cmd.Env = append(os.Environ(), childEnv+"="+filepath.Join(dir2, "testd.sock"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "status=denied") || !strings.Contains(string(out), "join the admin group") {
		t.Errorf("child on a 0660 socket said %q, want status=denied with advice", out)
	}
}

func childClient(path string) {
	c := ctlapi.NewClient(filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), ".sock"))
	outcome := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, ctlapi.ErrAccessDenied):
			return "denied (" + err.Error() + ")"
		}
		return "error (" + err.Error() + ")"
	}
	_, err := c.Status(context.Background())
	fmt.Printf("status=%s ", outcome(err))
	_, err = c.Reload(context.Background())
	fmt.Printf("reload=%s\n", outcome(err))
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// openTempDir is a temporary directory that other users may enter.
func openTempDir(t *testing.T) string {
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// BenchmarkStatus is one admin API round trip: dial, request, answer.
func BenchmarkStatus(b *testing.B) {
	dir := b.TempDir()
	ln, _, err := Listen(filepath.Join(dir, "testd.sock"), "", 0o660)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{Daemon: "testd", Version: "v-test", Log: slog.New(slog.DiscardHandler), AdminGID: -1})
	s.Handle(Route{Method: "GET", Path: ctlapi.PathStatus, Handle: func(r *http.Request) (any, error) {
		return ctlapi.Status{Daemon: "testd"}, nil
	}})
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	c := ctlapi.NewClient(dir, "testd")
	for b.Loop() {
		if _, err := c.Status(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCallerString(t *testing.T) {
	if got := (Caller{UID: 1000, Known: true}).String(); got != "uid 1000" {
		t.Errorf("known caller = %q", got)
	}
	if got := (Caller{}).String(); got != "unknown" {
		t.Errorf("unknown caller = %q", got)
	}
}
