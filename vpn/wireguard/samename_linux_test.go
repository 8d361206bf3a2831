//go:build linux

package wireguard

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/nettest"
)

// Three namespaces use one interface name; the file system, and with it
// /var/run/wireguard, is the host's for all of them:
//
//	nsB: Debian's wireguard-go <name>   /var/run/wireguard/<name>.sock
//	nsA: embedded <name>                <dirA>/<name>.sock (wg(8) cannot see it)
//	nsC: embedded <other>               <dirC>/<other>.sock, linked from
//	                                    /var/run/wireguard/<other>.sock

func newWGNS(t *testing.T) *nettest.NS {
	return nettest.NewNS(t, "edge-wgtest", "wg", "wireguard-go")
}

// socketDirFor is a socket directory for one test: short, since a unix
// socket's path has at most 107 bytes.
func socketDirFor(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wgs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "run")
}

// TestSameNameInTwoNamespaces: an embedded device opens while a device
// of the same name in another namespace holds its name in
// /var/run/wireguard; that one keeps it, and wg(8) there still shows it.
// Where the name is free, wg(8) finds the embedded device through a link
// that goes with it.
func TestSameNameInTwoNamespaces(t *testing.T) {
	nsA, nsB, nsC := newWGNS(t), newWGNS(t), newWGNS(t)
	name := "wgsame" + randHex(t)
	startWireguardGo(t, nsB, name)
	keyB := mustKey(t, GeneratePrivateKey)
	nsB.Run(t, keyB.String(), "wg", "set", name, "private-key", "/dev/stdin", "listen-port", "51840")

	dirA := socketDirFor(t)
	hA := startHelper(t, nsA)
	keyA := mustKey(t, GeneratePrivateKey)
	resp := hA.mustCall(helperRequest{Op: "open", Opts: Options{Name: name, ListenPort: 51841, PrivateKey: keyA, Userspace: true, SocketDir: dirA}})
	if want := filepath.Join(dirA, name+".sock"); resp.Socket != want {
		t.Errorf("Socket() = %q, want %q", resp.Socket, want)
	}
	if !strings.Contains(resp.Unlisted, socketPath(name)) || !strings.Contains(resp.Unlisted, "another device serves that name") {
		t.Errorf("Unlisted() = %q; want it to say another device holds %s", resp.Unlisted, socketPath(name))
	}
	if fi, err := os.Stat(resp.Socket); err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s: %v, %v; want a socket closed to group and others", resp.Socket, fi, err)
	}
	if fi, err := os.Stat(dirA); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want a directory of mode 0700", dirA, fi, err)
	}
	// A's device is configured in A's process, not through B's socket.
	peer := Peer{PublicKey: mustKey(t, GeneratePrivateKey).PublicKey(), AllowedIPs: pfxs("10.95.0.2/32")}
	if ch := hA.mustCall(helperRequest{Op: "setpeers", Peers: []Peer{peer}}).Changes; ch != (Changes{Added: 1}) {
		t.Errorf("SetPeers in A = %+v, want one added", ch)
	}
	if ps := hA.mustCall(helperRequest{Op: "peers"}).Peers; len(ps) != 1 || ps[0].PublicKey != peer.PublicKey {
		t.Errorf("Peers() in A = %+v, want A's one peer", ps)
	}
	if got := strings.TrimSpace(nsB.Run(t, "", "wg", "show", name, "public-key")); got != keyB.PublicKey().String() {
		t.Errorf("wg show %s in B = %q, want B's own key %s", name, got, keyB.PublicKey())
	}
	if got := strings.TrimSpace(nsB.Run(t, "", "wg", "show", name, "peers")); got != "" {
		t.Errorf("B's device got peers %q, meant for A's", got)
	}

	// A name nobody holds: wg(8) finds the device through the link.
	other := "wgfree" + randHex(t)
	dirC := socketDirFor(t)
	hC := startHelper(t, nsC)
	keyC := mustKey(t, GeneratePrivateKey)
	resp = hC.mustCall(helperRequest{Op: "open", Opts: Options{Name: other, PrivateKey: keyC, Userspace: true, SocketDir: dirC}})
	if resp.Unlisted != "" {
		t.Errorf("Unlisted() of a free name = %q, want \"\"", resp.Unlisted)
	}
	if dest, err := os.Readlink(socketPath(other)); err != nil || dest != filepath.Join(dirC, other+".sock") {
		t.Errorf("%s links to %q (%v), want the device's socket", socketPath(other), dest, err)
	}
	if got := strings.TrimSpace(nsC.Run(t, "", "wg", "show", other, "public-key")); got != keyC.PublicKey().String() {
		t.Errorf("wg show %s in C = %q, want %s", other, got, keyC.PublicKey())
	}

	// Close takes the socket and the link, and leaves B's socket alone.
	hA.mustCall(helperRequest{Op: "close"})
	hC.mustCall(helperRequest{Op: "close"})
	for _, p := range []string{filepath.Join(dirA, name+".sock"), filepath.Join(dirC, other+".sock"), socketPath(other)} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after Close (%v)", p, err)
		}
	}
	if got := strings.TrimSpace(nsB.Run(t, "", "wg", "show", name, "listen-port")); got != "51840" {
		t.Errorf("after A closed, wg show %s in B listens on %q, want 51840", name, got)
	}
}

// TestSocketDirRefused: a socket directory another user owns, or others
// may write in, or a relative one, is refused before any link is made.
func TestSocketDirRefused(t *testing.T) {
	ns := newWGNS(t)
	h := startHelper(t, ns)
	key := mustKey(t, GeneratePrivateKey)
	open := socketDirFor(t)
	if err := os.MkdirAll(open, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	foreign := socketDirFor(t)
	if err := os.MkdirAll(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{open, "mode 0777: others may write in it"},
		{foreign, "belongs to uid 65534"},
		{"run/vpn", `socket directory "run/vpn" is not an absolute path`},
	} {
		resp := h.call(helperRequest{Op: "open", Opts: Options{Name: "wgedge6", PrivateKey: key, Userspace: true, SocketDir: tc.dir}})
		if !strings.Contains(resp.Err, tc.want) {
			t.Errorf("Open with SocketDir %s: error %q, want one with %q", tc.dir, resp.Err, tc.want)
		}
		if out, err := ns.Try("", "ip", "link", "show", "wgedge6"); err == nil {
			t.Errorf("wgedge6 exists after a refused Open:\n%s", out)
		}
	}
	socketGone(t, "wgedge6")
}

// TestRemoveOwnSockets: Remove with the socket directory takes a stale
// socket there and the stale link to it, and leaves another's link.
func TestRemoveOwnSockets(t *testing.T) {
	ns := newWGNS(t)
	h := startHelper(t, ns)
	dir := socketDirFor(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	name, other := "wgrm"+randHex(t), "wgrm"+randHex(t)
	ln, err := listenUAPI(filepath.Join(dir, name+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	os.MkdirAll(wgSocketDir, 0o755)
	for _, n := range []string{name, other} {
		if err := os.Symlink(filepath.Join(dir, name+".sock"), socketPath(n)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(socketPath(n)) })
	}
	h.mustCall(helperRequest{Op: "remove", Name: name, SocketDir: dir})
	socketGone(t, name)
	if _, err := os.Lstat(filepath.Join(dir, name+".sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale socket survives Remove (%v)", err)
	}
	if _, err := os.Lstat(socketPath(other)); err != nil {
		t.Errorf("Remove(%s) took %s, which is not its link: %v", name, socketPath(other), err)
	}
}
