package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/ctlsock"
)

// recorder notes each request a fake daemon gets: method, path with
// query, and the decoded body as JSON.
type recorder struct{ seen []string }

func (rec *recorder) note(r *http.Request, body any) {
	line := r.Method + " " + r.URL.RequestURI()
	if body != nil {
		b, _ := json.Marshal(body)
		line += " " + string(b)
	}
	rec.seen = append(rec.seen, line)
}

// serveFake serves routes as daemon name of version on <dir>/<name>.sock
// until the test ends.
func serveFake(t *testing.T, dir, name, version string, routes ...ctlsock.Route) {
	t.Helper()
	ln, _, err := ctlsock.Listen(filepath.Join(dir, name+".sock"), "", 0o660)
	if err != nil {
		t.Fatal(err)
	}
	s := ctlsock.New(ctlsock.Options{Daemon: name, Version: version, Log: slog.New(slog.DiscardHandler), AdminGID: -1})
	s.Handle(routes...)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
}

// cliCase is one edgectl command line against a fake daemon: its exit
// code, the one request it must send ("" for none), and text its stdout
// and stderr must contain.
type cliCase struct {
	args    []string
	code    int
	request string
	stdout  string
	stderr  string
}

// runCases runs each case with --socket-dir dir, checking what the fake
// daemon recorded in *seen.
func runCases(t *testing.T, dir string, seen *[]string, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			*seen = nil
			code, out, errb := run(append([]string{"--socket-dir", dir}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errb)
			}
			if tc.request == "" && len(*seen) > 0 || tc.request != "" && (len(*seen) != 1 || (*seen)[0] != tc.request) {
				t.Errorf("requests %q, want %q", *seen, tc.request)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout %q lacks %q", out, tc.stdout)
			}
			if !strings.Contains(errb, tc.stderr) {
				t.Errorf("stderr %q lacks %q", errb, tc.stderr)
			}
		})
	}
}
