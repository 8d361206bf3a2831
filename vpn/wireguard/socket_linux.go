package wireguard

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// wgSocketDir is where wireguard-go and wg(8) keep UAPI sockets, and the
// only place wg(8) looks for them (its path is compiled in; no variable
// of its environment moves it). It is one directory for all network
// namespaces: a device name in use in one namespace is taken there for
// all of them.
const wgSocketDir = "/var/run/wireguard"

// socketPath is the path of the interface name's UAPI socket in
// wgSocketDir, where wg(8) looks for it.
func socketPath(name string) string {
	return wgSocketDir + "/" + name + ".sock"
}

// prepareSocketDir makes dir, where an embedded device serves its UAPI
// socket. The socket configures the device, private key included, so a
// directory of the caller's own (not shared) must belong to this
// process's user and be closed to others' writes: whoever can write in
// it could put a socket of their own in the device's place.
func prepareSocketDir(dir string, shared bool) error {
	if shared {
		return os.MkdirAll(dir, 0o755)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("directory %s belongs to uid %d, not to this process's uid %d; remove it, or give the process a directory of its own", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("directory %s has mode %#o: others may write in it; make it 0700", dir, fi.Mode().Perm())
	}
	return nil
}

// listenUAPI listens on the unix socket path, closed to group and others,
// replacing a socket file that no process serves (left by one that died);
// the socket file goes when the listener is closed.
func listenUAPI(path string) (*net.UnixListener, error) {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("the path is longer than the %d bytes a unix socket's may be", len(unix.RawSockaddrUnix{}.Path)-1)
	}
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	// As wireguard-go does: the umask, not a chmod after the bind, so the
	// socket is never open to others, even for a moment.
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	ln, err := net.ListenUnix("unix", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		if served(path) {
			return nil, errors.New("in use by a running process")
		}
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s is not a socket; not replacing it", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		ln, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// served reports whether a process accepts connections on the socket at
// path (following a link).
func served(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// linkWG makes socketPath(name) a symbolic link to the device's socket,
// for wg(8), which looks nowhere else, when that name is free there:
// absent, a socket nobody serves, or a link to a socket nobody serves. A
// name another device serves (a device of that name in another network
// namespace, or another program's) is left alone, and unlisted says so.
func (e *embedded) linkWG() {
	link := socketPath(e.name)
	err := os.MkdirAll(wgSocketDir, 0o755)
	if err == nil {
		err = claimLink(link, e.socket)
	}
	if err != nil {
		e.unlisted = fmt.Sprintf("not linked as %s, where wg(8) looks: %v", link, err)
		return
	}
	e.wgLink = link
}

// claimLink makes link a symbolic link to target, replacing a stale
// socket or link; one that a process serves is another device's.
func claimLink(link, target string) error {
	for range 3 {
		err := os.Symlink(target, link)
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if dest, err := os.Readlink(link); err == nil && dest == target {
			return nil // ours, left by an earlier run
		}
		if served(link) {
			return errors.New("another device serves that name (one in another network namespace, or another program's)")
		}
		fi, err := os.Lstat(link)
		if err != nil {
			continue // gone meanwhile
		}
		if t := fi.Mode().Type(); t != fs.ModeSocket && t != fs.ModeSymlink {
			return fmt.Errorf("%s is neither a socket nor a link; not replacing it", link)
		}
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return errors.New("taken and freed again while edge-vpn linked it; try again")
}

// unlinkWG removes the link linkWG made, if it still points to the
// device's socket.
func (e *embedded) unlinkWG() {
	if e.wgLink == "" {
		return
	}
	if dest, err := os.Readlink(e.wgLink); err == nil && dest == e.socket {
		os.Remove(e.wgLink)
	}
}

// removeStaleSocket removes the socket at path unless a process accepts
// connections on it. The socket directory is shared by all network
// namespaces, so a served socket may belong to another namespace's device.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return nil
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("check socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// removeSockets removes what an embedded device name left behind after
// a crash: its socket in socketDir (wgSocketDir when empty) and its link
// in wgSocketDir, where nobody serves them.
func removeSockets(name, socketDir string) error {
	link := socketPath(name)
	if socketDir == "" {
		return removeStaleSocket(link)
	}
	own := filepath.Join(socketDir, name+".sock")
	if err := removeStaleSocket(own); err != nil {
		return err
	}
	if dest, err := os.Readlink(link); err == nil {
		if dest == own && !served(link) {
			if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil // another's link: not ours to remove
	}
	// A socket of that name in wgSocketDir is not this device's: it may
	// be another namespace's, or left by wireguard-go; only a stale one
	// goes, as before edge-vpn kept its sockets elsewhere.
	return removeStaleSocket(link)
}
