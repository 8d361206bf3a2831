// Package ctlapi holds the types of the daemons' admin API and the typed
// client that edgectl uses to speak it over a unix socket. It imports only
// the standard library and internal/suite, so that edgectl stays small and
// never depends on a daemon's code.
package ctlapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// APIVersion is the version of the admin API this build speaks; it is the
// "v1" in every path.
const APIVersion = "1"

// Headers sent on every request and response.
const (
	// HeaderAPI carries the API version the sender speaks.
	HeaderAPI = "Edge-Api"
	// HeaderVersion carries the sender's build version.
	HeaderVersion = "Edge-Version"
)

// Paths served by every daemon.
const (
	PathStatus   = "/v1/status"
	PathReload   = "/v1/reload"
	PathLogLevel = "/v1/log/level"
)

// ErrorBody is the one shape of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// Status is what GET /v1/status answers.
type Status struct {
	Daemon  string    `json:"daemon"`
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Uptime is in seconds, as of the answer.
	Uptime float64 `json:"uptime_seconds"`
	Ready  bool    `json:"ready"`
	Config Config  `json:"config"`
	// LogLevel is the current log level.
	LogLevel string `json:"log_level"`
	// Notes are what the daemon says an operator should know now, one
	// line each: the generation that runs when it is not the config's, an
	// apply waiting for its confirm.
	Notes []string `json:"notes,omitempty"`
	// Detail is the daemon's own status, if it has one.
	Detail json.RawMessage `json:"detail,omitempty"`
}

// Config describes the config a daemon runs and its reload history.
type Config struct {
	Path string `json:"path"`
	// Generation counts the configs applied since start: 1 for the first,
	// +1 for every successful reload.
	Generation int64     `json:"generation"`
	Loaded     time.Time `json:"loaded"`
	// ReloadFailures counts failed reloads since start.
	ReloadFailures int64 `json:"reload_failures"`
	// LastError is why the last reload failed, when it did; it is cleared
	// by the next successful one.
	LastError string `json:"last_error,omitempty"`
}

// ReloadResult is what POST /v1/reload answers on success.
type ReloadResult struct {
	Generation int64 `json:"generation"`
}

// LogLevel is the body of PUT /v1/log/level and its answer.
type LogLevel struct {
	Level string `json:"level"`
}

// Sentinel errors the client returns (wrapped), for callers to test with
// errors.Is.
var (
	// ErrNotRunning means nothing listens on the daemon's socket.
	ErrNotRunning = errors.New("daemon not running")
	// ErrAccessDenied means the daemon refused a change from this caller.
	ErrAccessDenied = errors.New("permission denied")
	// ErrVersionMismatch means the two ends speak different API versions,
	// or the socket is not an edge daemon's.
	ErrVersionMismatch = errors.New("version mismatch")
)

// Error is an error response from a daemon.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the daemon's explanation.
	Message string
}

func (e *Error) Error() string {
	return e.Message
}

// Unwrap lets errors.Is match ErrAccessDenied for a 403.
func (e *Error) Unwrap() error {
	if e.Status == 403 {
		return ErrAccessDenied
	}
	return nil
}

// Errorf returns an *Error with status and a formatted message, for
// handlers to return.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}
