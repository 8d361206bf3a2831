// Package cli is edgectl: it parses a command line and talks to the
// daemons' admin sockets through the typed client. It must stay small: it
// imports internal/ctlapi and internal/suite and never a daemon's package
// (a repository test enforces that).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/suite"
)

// Exit codes, for scripts.
const (
	ExitOK = 0
	// ExitFailure is any other failure, such as a rejected reload.
	ExitFailure = 1
	// ExitUsage is a bad command line.
	ExitUsage = 2
	// ExitNotRunning means a daemon asked for does not answer.
	ExitNotRunning = 3
	// ExitDenied means the daemon refused the change for this user.
	ExitDenied = 4
	// ExitVersion means edgectl and the daemon speak different API versions.
	ExitVersion = 5
)

// SocketDirEnv overrides the default socket directory.
const SocketDirEnv = "EDGE_SOCKET_DIR"

// options are the global flags.
type options struct {
	socketDir string
	output    string
	timeout   time.Duration
	// help is set by -h or --help anywhere before "--": the command
	// line then asks for help and nothing runs.
	help bool
}

// env is one invocation.
type env struct {
	opts   options
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	name    string
	args    string
	summary string
	run     func(e *env, args []string) int
}

var commands []command

func init() {
	commands = []command{
		{"status", "[DAEMON...]", "show each daemon: up or down, version, config generation, uptime", (*env).status},
		{"reload", "[DAEMON...]", "reload the config of the given daemons (default: every running one)", (*env).reload},
		{"log-level", "DAEMON [LEVEL]", "show or set a daemon's log level (debug, info, warn, error)", (*env).logLevel},
		{"record", "COMMAND ...", "edge-dns's run-time records: ls, add, rm", (*env).record},
		{"peer", "COMMAND ...", "edge-vpn's WireGuard peers: add, ls, show, config, rm, enable, disable, rename", (*env).peer},
		{"fw", "COMMAND ...", "edge-firewall: apply, confirm, diff, show, bans, ban, unban", (*env).fw},
		{"version", "", "print edgectl's version", (*env).version},
		{"completion", "bash|zsh|fish", "print a shell completion script", (*env).completion},
		{"help", "[COMMAND [SUBCOMMAND]]", "show this help, or a command's", (*env).help},
	}
}

// Run runs edgectl with args (without the program name) and returns the
// exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, opts: options{socketDir: suite.DefaultSocketDir, output: "table", timeout: 10 * time.Second}}
	if d := os.Getenv(SocketDirEnv); d != "" {
		e.opts.socketDir = d
	}
	rest, err := e.parseGlobal(args)
	if err != nil {
		fmt.Fprintf(stderr, "edgectl: %v\n", err)
		fmt.Fprintln(stderr, "run 'edgectl help' for usage")
		return ExitUsage
	}
	if e.opts.help || len(rest) > 1 && rest[1] == "help" {
		return e.helpFor(rest)
	}
	if len(rest) == 0 {
		e.usage(stderr)
		return ExitUsage
	}
	if strings.HasPrefix(rest[0], "-") {
		fmt.Fprintf(stderr, "edgectl: unknown flag %s\n", rest[0])
		fmt.Fprintln(stderr, "run 'edgectl help' for usage")
		return ExitUsage
	}
	for _, c := range commands {
		if c.name == rest[0] {
			return c.run(e, rest[1:])
		}
	}
	fmt.Fprintf(stderr, "edgectl: unknown command %q\n", rest[0])
	e.usage(stderr)
	return ExitUsage
}

// parseGlobal takes the global flags out of args, wherever they stand, and
// returns the rest in order.
func (e *env) parseGlobal(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			// The rest is the command's; it sees the "--" too, so that a
			// value may start with "-" (record add ... TXT -- -x).
			if len(rest) > 0 {
				rest = append(rest, args[i:]...)
			} else {
				rest = append(rest, args[i+1:]...)
			}
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		switch name {
		case "--socket-dir", "-socket-dir", "-o", "--output", "-output", "--timeout", "-timeout":
		case "-h", "--help", "-help":
			e.opts.help = true
			continue
		default:
			// Anything else, flags included, belongs to the command.
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag %s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch strings.TrimLeft(name, "-") {
		case "socket-dir":
			e.opts.socketDir = value
		case "o", "output":
			if value != "table" && value != "json" && value != "conf" {
				return nil, fmt.Errorf("unknown output %q; use table, json or conf (peer add and peer config)", value)
			}
			e.opts.output = value
		case "timeout":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("invalid --timeout %q; write a duration such as 5s", value)
			}
			e.opts.timeout = d
		}
	}
	return rest, nil
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: edgectl [--socket-dir DIR] [-o table|json|conf] [--timeout 10s] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-28s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "\nRun 'edgectl COMMAND --help' for a command's own commands and flags.\n")
	fmt.Fprintf(w, "The sockets are <socket-dir>/<daemon>.sock (default %s, or $%s).\n", suite.DefaultSocketDir, SocketDirEnv)
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 failure, 2 usage, 3 daemon not running, 4 permission denied, 5 version mismatch.")
}

func (e *env) help(args []string) int {
	return e.helpFor(args)
}

func (e *env) version(args []string) int {
	if len(args) > 0 {
		return e.usageError("version takes no arguments")
	}
	if e.opts.output == "json" {
		e.writeJSON(map[string]string{"version": suite.BuildVersion(), "api": ctlapi.APIVersion})
		return ExitOK
	}
	fmt.Fprintf(e.stdout, "edgectl %s (admin API v%s)\n", suite.BuildVersion(), ctlapi.APIVersion)
	return ExitOK
}

func (e *env) usageError(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "edgectl: "+format+"\n", args...)
	return ExitUsage
}

func (e *env) client(daemon string) *ctlapi.Client {
	return ctlapi.NewClient(e.opts.socketDir, daemon)
}

func (e *env) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.opts.timeout)
}

// knownDaemons is the suite's daemons plus any other socket in the socket
// directory, sorted suite-first.
func (e *env) knownDaemons() []string {
	names := slices.Clone(suite.Daemons)
	matches, _ := filepath.Glob(filepath.Join(e.opts.socketDir, "*.sock"))
	for _, m := range matches {
		n := strings.TrimSuffix(filepath.Base(m), ".sock")
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// runningDaemons are the daemons with a socket file.
func (e *env) runningDaemons() []string {
	var names []string
	for _, n := range e.knownDaemons() {
		if _, err := os.Stat(filepath.Join(e.opts.socketDir, n+".sock")); err == nil {
			names = append(names, n)
		}
	}
	return names
}

func checkNames(names []string) error {
	for _, n := range names {
		if strings.HasPrefix(n, "-") {
			return fmt.Errorf("unknown flag %s", n)
		}
		if n == "" || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
			return fmt.Errorf("invalid daemon name %q", n)
		}
	}
	return nil
}

// exitFor maps an error from the client to an exit code.
func exitFor(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ctlapi.ErrNotRunning):
		return ExitNotRunning
	case errors.Is(err, ctlapi.ErrAccessDenied):
		return ExitDenied
	case errors.Is(err, ctlapi.ErrVersionMismatch):
		return ExitVersion
	}
	return ExitFailure
}

// worst keeps the first non-zero exit code.
func worst(a, b int) int {
	if a != ExitOK {
		return a
	}
	return b
}

// call sends one request to a daemon and decodes the answer into res. It
// is done (and returns the exit code) when the request failed, which it
// reports, or when the output is JSON, which it prints; otherwise the
// caller prints res as a table or text.
func (e *env) call(daemon, method, path string, req, res any) (code int, done bool) {
	if code, done := e.callQuiet(daemon, method, path, req, res); done {
		return code, done
	}
	if e.opts.output == "json" {
		e.writeJSON(res)
		return ExitOK, true
	}
	return ExitOK, false
}

// callQuiet is call for a caller that prints the answer itself, JSON
// included.
func (e *env) callQuiet(daemon, method, path string, req, res any) (code int, done bool) {
	ctx, cancel := e.context()
	defer cancel()
	if _, err := e.client(daemon).Do(ctx, method, path, req, res); err != nil {
		e.failure(daemon, err)
		return exitFor(err), true
	}
	return ExitOK, false
}

func (e *env) writeJSON(v any) {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// warnSkew tells the operator when a daemon runs another build.
func (e *env) warnSkew(daemon, version string) {
	if version != "" && version != suite.BuildVersion() {
		fmt.Fprintf(e.stderr, "edgectl: note: %s runs %s, this edgectl is %s\n", daemon, version, suite.BuildVersion())
	}
}
