package ctlapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/homeedge/edge/internal/suite"
)

// maxResponse bounds how much of a response the client reads.
const maxResponse = 16 << 20

// Client talks to one daemon's admin socket.
type Client struct {
	// Daemon is the daemon's name, for messages.
	Daemon string
	// SocketPath is the unix socket to dial.
	SocketPath string
	http       *http.Client
}

// NewClient returns a client for daemon's socket in socketDir.
func NewClient(socketDir, daemon string) *Client {
	path := filepath.Join(socketDir, daemon+".sock")
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	return &Client{
		Daemon:     daemon,
		SocketPath: path,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", path)
			},
			DisableKeepAlives: true,
		}},
	}
}

// Response carries what the daemon said about itself on the last call.
type Response struct {
	// Version is the daemon's build version.
	Version string
}

// Do sends a request with in (if non-nil) as its JSON body and decodes the
// answer into out (if non-nil). Errors wrap ErrNotRunning, ErrAccessDenied
// or ErrVersionMismatch where those apply; other error answers are *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return Response{}, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://edge-"+c.Daemon+path, body)
	if err != nil {
		return Response{}, err
	}
	req.Header.Set(HeaderAPI, APIVersion)
	req.Header.Set(HeaderVersion, suite.BuildVersion())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, c.dialError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return Response{}, fmt.Errorf("%s: read answer: %w", c.Daemon, err)
	}
	r := Response{Version: resp.Header.Get(HeaderVersion)}
	api := resp.Header.Get(HeaderAPI)
	if api == "" {
		return r, fmt.Errorf("%s: %s answered, but not as an edge daemon: %w", c.Daemon, c.SocketPath, ErrVersionMismatch)
	}
	if api != APIVersion {
		return r, fmt.Errorf("%s: daemon speaks admin API v%s, this edgectl speaks v%s; use the edgectl of the same release (daemon %s): %w",
			c.Daemon, api, APIVersion, r.Version, ErrVersionMismatch)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s (%s)", http.StatusText(resp.StatusCode), bytes.TrimSpace(raw))
		}
		return r, &Error{Status: resp.StatusCode, Message: eb.Error}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return r, fmt.Errorf("%s: decode answer to %s %s: %w", c.Daemon, method, path, err)
		}
	}
	return r, nil
}

func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%s: no daemon answers on %s: %w", c.Daemon, c.SocketPath, ErrNotRunning)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s: cannot open %s (join the admin group, or run as root): %w", c.Daemon, c.SocketPath, ErrAccessDenied)
	}
	return fmt.Errorf("%s: %w", c.Daemon, err)
}

// Status asks for the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if _, err := c.Do(ctx, http.MethodGet, PathStatus, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Reload asks the daemon to reload its config and waits for the outcome.
func (c *Client) Reload(ctx context.Context) (*ReloadResult, error) {
	var rr ReloadResult
	if _, err := c.Do(ctx, http.MethodPost, PathReload, nil, &rr); err != nil {
		return nil, err
	}
	return &rr, nil
}

// SetLogLevel changes the daemon's log level until the next reload or
// restart.
func (c *Client) SetLogLevel(ctx context.Context, level string) error {
	_, err := c.Do(ctx, http.MethodPut, PathLogLevel, LogLevel{Level: level}, nil)
	return err
}
