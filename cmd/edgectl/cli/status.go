package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/suite"
)

// daemonState is one row of `edgectl status`.
type daemonState struct {
	Daemon string `json:"daemon"`
	// State is up, down or error.
	State  string         `json:"state"`
	Error  string         `json:"error,omitempty"`
	Status *ctlapi.Status `json:"status,omitempty"`
	err    error
}

// daemonStatus asks one daemon, with a timeout of its own so that a slow
// daemon does not eat the next one's. A daemon without a socket file is
// down without a dial.
func (e *env) daemonStatus(n string) daemonState {
	row := daemonState{Daemon: n, State: "up"}
	if _, err := os.Stat(filepath.Join(e.opts.socketDir, n+".sock")); errors.Is(err, os.ErrNotExist) {
		row.State, row.Error = "down", "not running"
		return row
	}
	ctx, cancel := e.context()
	defer cancel()
	var st ctlapi.Status
	resp, err := e.client(n).Do(ctx, http.MethodGet, ctlapi.PathStatus, nil, &st)
	switch {
	case err == nil:
		row.Status = &st
		e.warnSkew(n, resp.Version)
	case errors.Is(err, ctlapi.ErrNotRunning):
		row.State, row.Error = "down", "not running"
	default:
		row.State, row.Error, row.err = "error", errorText(err), err
	}
	return row
}

// noSocketsHint says why nothing answers when the socket directory has no
// socket at all: most often --socket-dir or $EDGE_SOCKET_DIR is wrong.
func (e *env) noSocketsHint() {
	why := "has no daemon socket"
	if _, err := os.Stat(e.opts.socketDir); errors.Is(err, os.ErrNotExist) {
		why = "does not exist"
	}
	fmt.Fprintf(e.stderr, "edgectl: %s %s; is any daemon running? (the sockets are <dir>/<daemon>.sock; set --socket-dir or $%s)\n",
		e.opts.socketDir, why, SocketDirEnv)
}

func (e *env) status(args []string) int {
	if err := checkNames(args); err != nil {
		return e.usageError("%v", err)
	}
	names, explicit := args, len(args) > 0
	known := e.knownDaemons()
	if !explicit {
		names = known
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			return e.usageError("unknown daemon %q: no such daemon in the suite (%s) and no socket %s",
				n, strings.Join(suite.Daemons, ", "), filepath.Join(e.opts.socketDir, n+".sock"))
		}
	}
	code := ExitOK
	rows := make([]daemonState, 0, len(names))
	for _, n := range names {
		row := e.daemonStatus(n)
		switch {
		case row.State == "down":
			// Listing everything, a daemon that is not installed here is
			// no failure; one asked for by name, or one that left a
			// socket behind, is.
			if _, statErr := os.Stat(filepath.Join(e.opts.socketDir, n+".sock")); explicit || statErr == nil {
				code = worst(code, ExitNotRunning)
			}
		case row.err != nil:
			code = worst(code, exitFor(row.err))
		}
		rows = append(rows, row)
	}
	if !explicit && len(e.runningDaemons()) == 0 {
		defer e.noSocketsHint()
		code = worst(code, ExitNotRunning)
	}
	if e.opts.output == "json" {
		e.writeJSON(rows)
		return code
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DAEMON\tSTATE\tVERSION\tCONFIG\tUPTIME\tPID\tNOTE")
	for _, r := range rows {
		if r.Status == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t%s\n", r.Daemon, r.State, r.Error)
			continue
		}
		st := r.Status
		state := r.State
		if !st.Ready {
			state = "starting"
		}
		notes := append([]string(nil), st.Notes...)
		if st.Config.LastError != "" {
			notes = append(notes, "last reload failed: "+firstLine(st.Config.LastError))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\tgen %d\t%s\t%d\t%s\n", r.Daemon, state, st.Version, st.Config.Generation,
			formatUptime(time.Duration(st.Uptime*float64(time.Second))), st.PID, strings.Join(notes, "; "))
	}
	tw.Flush()
	return code
}

func (e *env) reload(args []string) int {
	if err := checkNames(args); err != nil {
		return e.usageError("%v", err)
	}
	names := args
	if len(names) == 0 {
		if names = e.runningDaemons(); len(names) == 0 {
			fmt.Fprintf(e.stderr, "edgectl: no daemon sockets in %s; is any daemon running? (set --socket-dir)\n", e.opts.socketDir)
			return ExitNotRunning
		}
	}
	ctx, cancel := e.context()
	defer cancel()
	type result struct {
		Daemon     string `json:"daemon"`
		Generation int64  `json:"generation,omitempty"`
		Error      string `json:"error,omitempty"`
		err        error
	}
	var results []result
	code := ExitOK
	for _, n := range names {
		rr, err := e.client(n).Reload(ctx)
		if err != nil {
			results = append(results, result{Daemon: n, Error: errorText(err), err: err})
			code = worst(code, exitFor(err))
			continue
		}
		results = append(results, result{Daemon: n, Generation: rr.Generation})
	}
	if e.opts.output == "json" {
		e.writeJSON(results)
		return code
	}
	for _, r := range results {
		if r.err != nil {
			e.failure(r.Daemon, r.err)
			continue
		}
		fmt.Fprintf(e.stdout, "%s: reloaded, config generation %d\n", r.Daemon, r.Generation)
	}
	return code
}

func (e *env) logLevel(args []string) int {
	if len(args) < 1 || len(args) > 2 {
		return e.usageError("usage: edgectl log-level DAEMON [debug|info|warn|error]")
	}
	if err := checkNames(args[:1]); err != nil {
		return e.usageError("%v", err)
	}
	ctx, cancel := e.context()
	defer cancel()
	c := e.client(args[0])
	var ll ctlapi.LogLevel
	var err error
	if len(args) == 2 {
		_, err = c.Do(ctx, http.MethodPut, ctlapi.PathLogLevel, ctlapi.LogLevel{Level: args[1]}, &ll)
	} else {
		_, err = c.Do(ctx, http.MethodGet, ctlapi.PathLogLevel, nil, &ll)
	}
	if err != nil {
		e.failure(args[0], err)
		return exitFor(err)
	}
	if e.opts.output == "json" {
		e.writeJSON(ll)
		return ExitOK
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", args[0], ll.Level)
	return ExitOK
}

// failure prints a daemon's error once, prefixed with its name (client
// errors other than the daemon's own answers carry the name already).
func (e *env) failure(daemon string, err error) {
	var ae *ctlapi.Error
	if errors.As(err, &ae) {
		fmt.Fprintf(e.stderr, "%s: %s\n", daemon, errorText(err))
		return
	}
	fmt.Fprintln(e.stderr, errorText(err))
}

// errorText explains an error from the client in the operator's terms.
func errorText(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, ctlapi.ErrAccessDenied):
		if !strings.Contains(msg, "admin group") {
			msg += " (changes need root or membership in the admin group)"
		}
	case errors.Is(err, ctlapi.ErrNotRunning):
		msg += "; start it (systemctl start edge-<daemon>) or set --socket-dir"
	}
	return msg
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// formatUptime prints a duration to the second, at most three units:
// 45s, 12m5s, 3h4m, 2d5h.
func formatUptime(d time.Duration) string {
	d = d.Truncate(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	s := (d - m*time.Minute) / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
