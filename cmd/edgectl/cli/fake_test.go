package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
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
