// Package ctlsock serves a daemon's admin API: HTTP/JSON on a unix socket,
// with the caller identified by SO_PEERCRED. Root, the daemon's own user
// and members of the admin group may change things; everyone else may only
// read.
package ctlsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Listen opens the admin socket at path. A socket file left by a dead
// process is removed; one that still answers is an error, so two daemons
// never share a socket. The socket gets mode (0660 or 0666) and, when group
// names an existing group, that group. It returns the group's gid, or -1.
func Listen(path, group string, mode os.FileMode) (net.Listener, int, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, -1, fmt.Errorf("create socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, -1, fmt.Errorf("%s exists and is not a socket; remove it if it is stale", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, -1, fmt.Errorf("%s is in use by a running process (is the daemon already running?)", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, -1, fmt.Errorf("check stale socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, -1, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, -1, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	gid := -1
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, -1, fmt.Errorf("give socket to group %s: %w", group, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, -1, fmt.Errorf("chmod socket: %w", err)
	}
	return ln, gid, nil
}
