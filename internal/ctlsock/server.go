package ctlsock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// Caller is who is on the other end of an admin connection.
type Caller struct {
	UID, GID, PID int
	// Known reports whether the credentials could be read; unknown callers
	// may only read.
	Known bool
	// Write reports whether the caller may change things.
	Write bool
}

// String names the caller for logs and records: "uid 1000", or
// "unknown" when the credentials could not be read.
func (c Caller) String() string {
	if !c.Known {
		return "unknown"
	}
	return "uid " + strconv.Itoa(c.UID)
}

type callerKey struct{}

// CallerFrom returns the caller of a request served by Server.
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// HandlerFunc serves one admin request. It returns the value to send as
// JSON (nil for an empty object), or an error: a *ctlapi.Error sets the
// status, any other error is a 500.
type HandlerFunc func(r *http.Request) (any, error)

// Route is one endpoint of the admin API.
type Route struct {
	Method string
	// Path is exact, such as "/v1/status".
	Path string
	// Write marks a route that changes things: only privileged callers
	// may use it, and every use is logged with the caller.
	Write  bool
	Handle HandlerFunc
}

// Server is a daemon's admin API server.
type Server struct {
	daemon  string
	version string
	log     *slog.Logger
	// adminGID is the admin group's gid, or -1 when it does not exist.
	adminGID int
	selfUID  int
	routes   map[string][]Route
	srv      *http.Server
	// observe, when set, is told of every request's outcome.
	observe func(path string, status int)
}

// Options configure a Server.
type Options struct {
	Daemon  string
	Version string
	Log     *slog.Logger
	// AdminGID is the gid whose members may write; -1 for none.
	AdminGID int
	// Observe, when set, is called after every request with the route's
	// path (or "other") and the status sent.
	Observe func(path string, status int)
}

// New returns a server with no routes.
func New(o Options) *Server {
	s := &Server{
		daemon:   o.Daemon,
		version:  o.Version,
		log:      o.Log,
		adminGID: o.AdminGID,
		selfUID:  os.Getuid(),
		routes:   make(map[string][]Route),
		observe:  o.Observe,
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, callerKey{}, s.identify(c))
		},
		ErrorLog: slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
	}
	return s
}

// Handle adds routes. A second route for the same method and path panics:
// that is a programming error.
func (s *Server) Handle(routes ...Route) {
	for _, r := range routes {
		for _, have := range s.routes[r.Path] {
			if have.Method == r.Method {
				panic(fmt.Sprintf("ctlsock: duplicate route %s %s", r.Method, r.Path))
			}
		}
		s.routes[r.Path] = append(s.routes[r.Path], r)
	}
}

// Serve serves ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func (s *Server) identify(c net.Conn) Caller {
	cr, err := peerCred(c)
	if err != nil {
		s.log.Warn("admin caller unknown; read-only", "err", err)
		return Caller{}
	}
	cr.Write = s.mayWrite(cr)
	return cr
}

// mayWrite decides whether a caller may change things: root, the daemon's
// own user, or a process holding the admin group (primary or supplementary).
func (s *Server) mayWrite(c Caller) bool {
	if c.UID == 0 || c.UID == s.selfUID {
		return true
	}
	if s.adminGID < 0 {
		return false
	}
	if c.GID == s.adminGID {
		return true
	}
	groups, err := supplementaryGroups(c.PID)
	return err == nil && slices.Contains(groups, s.adminGID)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(ctlapi.HeaderAPI, ctlapi.APIVersion)
	w.Header().Set(ctlapi.HeaderVersion, s.version)
	caller := CallerFrom(r.Context())
	status, pattern := s.serve(w, r, caller)
	if s.observe != nil {
		s.observe(pattern, status)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, caller Caller) (int, string) {
	if v := r.Header.Get(ctlapi.HeaderAPI); v != "" && v != ctlapi.APIVersion {
		return s.writeError(w, ctlapi.Errorf(http.StatusBadRequest,
			"this daemon speaks admin API v%s, the client v%s; use the edgectl of the same release (daemon %s)", ctlapi.APIVersion, v, s.version)), "other"
	}
	routes, ok := s.routes[r.URL.Path]
	if !ok {
		return s.writeError(w, ctlapi.Errorf(http.StatusNotFound, "no such endpoint %s", r.URL.Path)), "other"
	}
	i := slices.IndexFunc(routes, func(rt Route) bool { return rt.Method == r.Method })
	if i < 0 {
		allowed := make([]string, len(routes))
		for j, rt := range routes {
			allowed[j] = rt.Method
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return s.writeError(w, ctlapi.Errorf(http.StatusMethodNotAllowed, "%s does not take %s; use %s", r.URL.Path, r.Method, strings.Join(allowed, " or "))), r.URL.Path
	}
	route := routes[i]
	if route.Write && !caller.Write {
		s.log.Warn("admin change refused", "method", r.Method, "path", r.URL.Path, "uid", caller.UID, "pid", caller.PID)
		why := fmt.Sprintf("uid %d may only read; changes need root or the daemon's admin group", caller.UID)
		if !caller.Known {
			why = "caller's credentials are unknown, so it may only read"
		}
		return s.writeError(w, ctlapi.Errorf(http.StatusForbidden, "%s %s refused: %s", r.Method, r.URL.Path, why)), route.Path
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	out, err := route.Handle(r)
	status := http.StatusOK
	if err != nil {
		status = s.writeError(w, err)
	} else {
		writeJSON(w, status, out)
	}
	if route.Write {
		s.log.Info("admin change", "method", r.Method, "path", r.URL.Path, "uid", caller.UID, "pid", caller.PID, "status", status)
	}
	return status, route.Path
}

func (s *Server) writeError(w http.ResponseWriter, err error) int {
	var ae *ctlapi.Error
	if !errors.As(err, &ae) {
		s.log.Error("admin request failed", "err", err)
		ae = &ctlapi.Error{Status: http.StatusInternalServerError, Message: err.Error()}
	}
	writeJSON(w, ae.Status, ctlapi.ErrorBody{Error: ae.Message})
	return ae.Status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if v == nil {
		v = struct{}{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ctlapi.ErrorBody{Error: "encode answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// DecodeBody decodes a request's JSON body into v strictly: unknown fields,
// trailing data and oversize bodies are 400 errors that say what was wrong.
func DecodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ctlapi.Errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", mbe.Limit)
		}
		if errors.Is(err, io.EOF) {
			return ctlapi.Errorf(http.StatusBadRequest, "request body is empty; send a JSON object")
		}
		return ctlapi.Errorf(http.StatusBadRequest, "invalid request body: %v", err)
	}
	if dec.More() {
		return ctlapi.Errorf(http.StatusBadRequest, "invalid request body: more than one JSON value")
	}
	return nil
}
