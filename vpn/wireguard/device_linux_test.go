//go:build linux

package wireguard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/nettest"
)

// The Device acts on the current network namespace, so the tests run it
// in a child process (this test binary, in TestHelperProcess) started
// under "ip netns exec", and drive it with JSON lines over stdin and
// stdout.

const helperEnv = "EDGE_WGTEST_HELPER"

type helperRequest struct {
	Op    string // open, reconfigure, setpeers, peers, close, detach, remove
	Opts  Options
	Peers []Peer
	Name  string
	// SocketDir is Remove's.
	SocketDir string
}

type helperResponse struct {
	Err       string
	Kind      string
	Fallback  string
	Adopted   bool
	Port      int
	PublicKey Key
	Changes   Changes
	Peers     []PeerStatus
	Socket    string
	Unlisted  string
}

// TestHelperProcess is the child process; it does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	var d *Device
	var abandoned []*Device
	defer func() {
		if d != nil {
			d.Close()
		}
		for _, d := range abandoned {
			d.Close()
		}
	}()
	for {
		var req helperRequest
		if err := dec.Decode(&req); err != nil {
			return // stdin closed: the test is over
		}
		var resp helperResponse
		var err error
		switch req.Op {
		case "open":
			req.Opts.Log = log
			var nd *Device
			nd, err = Open(req.Opts)
			if err == nil {
				if d != nil {
					// A second Open of the same name, as after a restart.
					abandoned = append(abandoned, d)
				}
				d = nd
			}
		case "reconfigure":
			req.Opts.Log = log
			err = d.Reconfigure(req.Opts)
		case "setpeers":
			resp.Changes, err = d.SetPeers(req.Peers)
		case "peers":
			resp.Peers, err = d.Peers()
		case "close":
			err = d.Close()
		case "detach":
			err = d.Detach()
		case "remove":
			err = Remove(req.Name, req.SocketDir)
		default:
			err = errors.New("unknown op " + req.Op)
		}
		if err != nil {
			resp.Err = err.Error()
		}
		if d != nil {
			resp.Kind, resp.Fallback, resp.Adopted = d.Kind(), d.Fallback(), d.Adopted()
			resp.Port, resp.PublicKey = d.ListenPort(), d.PublicKey()
			resp.Socket, resp.Unlisted = d.Socket(), d.Unlisted()
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// helper is a child process holding a Device in a namespace.
type helper struct {
	t      *testing.T
	stdin  io.WriteCloser
	lines  chan []byte
	done   chan error
	stderr syncBuffer
}

// startHelper starts the child process in ns and stops it (closing its
// device) when t ends.
func startHelper(t *testing.T, ns *nettest.NS) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "GORACE=atexit_sleep_ms=0")
	h := &helper{t: t, lines: make(chan []byte), done: make(chan error, 1)}
	cmd.Stderr = &h.stderr
	h.stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- bytes.Clone(sc.Bytes())
		}
		close(h.lines)
		h.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		timeout := time.After(20 * time.Second)
	drain:
		for {
			select {
			case _, ok := <-h.lines:
				if !ok {
					break drain
				}
			case <-timeout:
				t.Errorf("helper did not exit; killing it")
				cmd.Process.Kill()
				timeout = nil
			}
		}
		if err := <-h.done; err != nil {
			t.Errorf("helper: %v", err)
		}
		if t.Failed() {
			t.Logf("helper stderr:\n%s", h.stderr.String())
		}
	})
	return h
}

// call sends req and returns the response.
func (h *helper) call(req helperRequest) helperResponse {
	h.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.stdin.Write(append(b, '\n')); err != nil {
		h.t.Fatalf("write to helper: %v", err)
	}
	select {
	case line, ok := <-h.lines:
		if !ok {
			h.t.Fatalf("helper exited during %s", req.Op)
		}
		var resp helperResponse
		if err := json.Unmarshal(line, &resp); err != nil {
			h.t.Fatalf("helper said %q: %v", line, err)
		}
		return resp
	case <-time.After(30 * time.Second):
		h.t.Fatalf("helper did not answer %s", req.Op)
	}
	panic("unreachable")
}

// mustCall is call that fails the test when the operation fails.
func (h *helper) mustCall(req helperRequest) helperResponse {
	h.t.Helper()
	resp := h.call(req)
	if resp.Err != "" {
		h.t.Fatalf("%s: %s", req.Op, resp.Err)
	}
	return resp
}

// startWireguardGo runs Debian's wireguard-go in the foreground in ns and
// stops it when t ends.
func startWireguardGo(t *testing.T, ns *nettest.NS, name string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "wireguard-go", "-f", name)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LOG_LEVEL=verbose")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("wireguard-go did not stop on SIGTERM; killing it")
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("wireguard-go output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := ns.Try("", "wg", "show", name); err == nil {
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("wireguard-go exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go %s did not come up:\n%s", name, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping reports whether one ping from ns to addr is answered within a second.
func ping(ns *nettest.NS, addr string) bool {
	_, err := ns.Try("", "ping", "-n", "-c1", "-W1", addr)
	return err == nil
}

// pingWithin pings from ns until addr answers or d has passed.
func pingWithin(ns *nettest.NS, addr string, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; {
		if ping(ns, addr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func mustKey(t *testing.T, gen func() (Key, error)) Key {
	t.Helper()
	k, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func socketGone(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Lstat(socketPath(name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists (stat: %v)", socketPath(name), err)
	}
}

func TestUserspaceTunnel(t *testing.T) {
	nsA := nettest.NewNS(t, "edge-wgtest", "wg", "wireguard-go", "ping")
	nsB := nettest.NewNS(t, "edge-wgtest", "wg", "wireguard-go", "ping")

	// The underlay: a veth pair from A to B.
	nsA.Run(t, "", "ip", "link", "add", "wgtveth0", "type", "veth", "peer", "name", "wgtveth1", "netns", nsB.Name)
	nsA.Run(t, "", "ip", "addr", "add", "10.99.0.1/24", "dev", "wgtveth0")
	nsA.Run(t, "", "ip", "link", "set", "wgtveth0", "up")
	nsB.Run(t, "", "ip", "addr", "add", "10.99.0.2/24", "dev", "wgtveth1")
	nsB.Run(t, "", "ip", "link", "set", "wgtveth1", "up")

	keyA := mustKey(t, GeneratePrivateKey)
	keyB := mustKey(t, GeneratePrivateKey)
	psk := mustKey(t, GeneratePresharedKey)

	// A: the embedded device.
	h := startHelper(t, nsA)
	opts := Options{
		Name:       "wgedge0",
		ListenPort: 51820,
		PrivateKey: keyA,
		Addresses:  pfxs("10.98.0.1/24", "fd98::1/64"),
		Userspace:  true,
		SocketDir:  socketDirFor(t),
	}
	resp := h.mustCall(helperRequest{Op: "open", Opts: opts})
	if resp.Kind != KindUserspace || resp.Fallback != "" {
		t.Errorf("Kind, Fallback = %q, %q; want %q, \"\"", resp.Kind, resp.Fallback, KindUserspace)
	}
	if resp.Port != 51820 {
		t.Errorf("ListenPort() = %d; want 51820", resp.Port)
	}
	if resp.PublicKey != keyA.PublicKey() {
		t.Errorf("PublicKey() = %s; want %s", resp.PublicKey, keyA.PublicKey())
	}
	out := nsA.Run(t, "", "wg", "show", "wgedge0", "public-key")
	if got := strings.TrimSpace(out); got != keyA.PublicKey().String() {
		t.Errorf("wg show wgedge0 public-key = %q; want %s", got, keyA.PublicKey())
	}
	out = nsA.Run(t, "", "ip", "-o", "addr", "show", "dev", "wgedge0")
	for _, want := range []string{"10.98.0.1/24", "fd98::1/64"} {
		if !strings.Contains(out, want) {
			t.Errorf("ip addr show wgedge0 lacks %s:\n%s", want, out)
		}
	}
	if out := nsA.Run(t, "", "ip", "-o", "link", "show", "wgedge0"); !strings.Contains(out, "mtu 1420") || !strings.Contains(out, ",UP") {
		t.Errorf("wgedge0 is not up with MTU 1420:\n%s", out)
	}

	// B: Debian's wireguard-go, configured with wg and ip.
	startWireguardGo(t, nsB, "wgpeer0")
	nsB.Run(t, keyB.String(), "wg", "set", "wgpeer0", "private-key", "/dev/stdin", "listen-port", "51821")
	nsB.Run(t, psk.String(), "wg", "set", "wgpeer0", "peer", keyA.PublicKey().String(),
		"preshared-key", "/dev/stdin", "endpoint", "10.99.0.1:51820", "allowed-ips", "10.98.0.0/24,fd98::/64")
	nsB.Run(t, "", "ip", "addr", "add", "10.98.0.2/24", "dev", "wgpeer0")
	nsB.Run(t, "", "ip", "addr", "add", "fd98::2/64", "dev", "wgpeer0", "nodad")
	nsB.Run(t, "", "ip", "link", "set", "wgpeer0", "up")

	peerB := Peer{PublicKey: keyB.PublicKey(), PresharedKey: psk, AllowedIPs: pfxs("10.98.0.2/32", "fd98::2/128")}
	resp = h.mustCall(helperRequest{Op: "setpeers", Peers: []Peer{peerB}})
	if want := (Changes{Added: 1}); resp.Changes != want {
		t.Errorf("SetPeers(B) = %+v; want %+v", resp.Changes, want)
	}
	if !pingWithin(nsB, "10.98.0.1", 10*time.Second) {
		t.Fatalf("no ping from B to 10.98.0.1 over the tunnel\nwg show in B:\n%s", nsB.Run(t, "", "wg", "show"))
	}
	if !pingWithin(nsB, "fd98::1", 5*time.Second) {
		t.Errorf("no ping from B to fd98::1 over the tunnel")
	}

	peers := h.mustCall(helperRequest{Op: "peers"}).Peers
	if len(peers) != 1 {
		t.Fatalf("Peers() = %+v; want one peer", peers)
	}
	st := peers[0]
	if since := time.Since(st.LastHandshake); since < 0 || since > time.Minute {
		t.Errorf("LastHandshake = %v; want within the last minute", st.LastHandshake)
	}
	if st.RxBytes == 0 || st.TxBytes == 0 {
		t.Errorf("RxBytes, TxBytes = %d, %d; want both non-zero", st.RxBytes, st.TxBytes)
	}
	if st.PublicKey != peerB.PublicKey || st.PresharedKey != psk {
		t.Errorf("peer keys = %s, psk set %v; want %s with the psk", st.PublicKey, st.PresharedKey == psk, peerB.PublicKey)
	}
	if got, want := st.AllowedIPs, peerB.AllowedIPs; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("AllowedIPs = %v; want %v", got, want)
	}
	if want := netip.MustParseAddrPort("10.99.0.2:51821"); st.Endpoint != want {
		t.Errorf("learned Endpoint = %v; want %v", st.Endpoint, want)
	}

	// The same peer again, its allowed IPs in another order and unmasked
	// form: nothing to do, and the session stays.
	same := peerB
	same.AllowedIPs = pfxs("fd98::2/128", "10.98.0.2/32")
	resp = h.mustCall(helperRequest{Op: "setpeers", Peers: []Peer{same}})
	if resp.Changes != (Changes{}) {
		t.Errorf("SetPeers(same) = %+v; want no changes", resp.Changes)
	}
	peers = h.mustCall(helperRequest{Op: "peers"}).Peers
	if len(peers) != 1 || !peers[0].LastHandshake.Equal(st.LastHandshake) {
		t.Errorf("after SetPeers(same) peers = %+v; want the same handshake time %v", peers, st.LastHandshake)
	}

	// An allowed IP claimed by two peers: an error, and no change.
	other := Peer{PublicKey: mustKey(t, GeneratePrivateKey).PublicKey(), AllowedIPs: pfxs("10.98.0.2/32")}
	resp = h.call(helperRequest{Op: "setpeers", Peers: []Peer{peerB, other}})
	if resp.Err == "" {
		t.Errorf("SetPeers with a shared allowed IP succeeded")
	} else if !strings.Contains(resp.Err, peerB.PublicKey.String()) || !strings.Contains(resp.Err, other.PublicKey.String()) {
		t.Errorf("SetPeers error %q does not name both peers", resp.Err)
	}
	resp = h.call(helperRequest{Op: "setpeers", Peers: []Peer{peerB, other, peerB}})
	if resp.Err == "" || !strings.Contains(resp.Err, peerB.PublicKey.String()) {
		t.Errorf("SetPeers with a duplicate key: error %q; want one naming %s", resp.Err, peerB.PublicKey)
	}
	peers = h.mustCall(helperRequest{Op: "peers"}).Peers
	if len(peers) != 1 || peers[0].PublicKey != peerB.PublicKey || !peers[0].LastHandshake.Equal(st.LastHandshake) {
		t.Errorf("after failed SetPeers peers = %+v; want B unchanged", peers)
	}
	if !ping(nsB, "10.98.0.1") {
		t.Errorf("ping from B failed after a rejected SetPeers")
	}

	// Without the peer, B's packets are dropped.
	resp = h.mustCall(helperRequest{Op: "setpeers", Peers: nil})
	if want := (Changes{Removed: 1}); resp.Changes != want {
		t.Errorf("SetPeers(nil) = %+v; want %+v", resp.Changes, want)
	}
	for try := range 2 {
		if ping(nsB, "10.98.0.1") {
			t.Errorf("ping %d from B to 10.98.0.1 works after the peer was removed", try+1)
		}
	}
	if peers := h.mustCall(helperRequest{Op: "peers"}).Peers; len(peers) != 0 {
		t.Errorf("Peers() = %+v; want none", peers)
	}

	// Reconfigure: port, MTU and addresses.
	opts.ListenPort = 51822
	opts.MTU = 1380
	opts.Addresses = pfxs("10.98.0.1/24", "10.97.0.1/24")
	resp = h.mustCall(helperRequest{Op: "reconfigure", Opts: opts})
	if resp.Port != 51822 {
		t.Errorf("ListenPort() = %d after Reconfigure; want 51822", resp.Port)
	}
	if out := strings.TrimSpace(nsA.Run(t, "", "wg", "show", "wgedge0", "listen-port")); out != "51822" {
		t.Errorf("wg show wgedge0 listen-port = %q; want 51822", out)
	}
	out = nsA.Run(t, "", "ip", "-o", "addr", "show", "dev", "wgedge0")
	if !strings.Contains(out, "10.97.0.1/24") || !strings.Contains(out, "10.98.0.1/24") || strings.Contains(out, "fd98::1") {
		t.Errorf("addresses after Reconfigure:\n%s\nwant 10.97.0.1/24 and 10.98.0.1/24 only", out)
	}
	if out := nsA.Run(t, "", "ip", "-o", "link", "show", "wgedge0"); !strings.Contains(out, "mtu 1380") {
		t.Errorf("MTU after Reconfigure:\n%s\nwant 1380", out)
	}
	bad := opts
	bad.Name = "wgedge9"
	if resp := h.call(helperRequest{Op: "reconfigure", Opts: bad}); resp.Err == "" {
		t.Errorf("Reconfigure with another name succeeded")
	}
	bad = opts
	bad.Userspace = false
	if resp := h.call(helperRequest{Op: "reconfigure", Opts: bad}); resp.Err == "" {
		t.Errorf("Reconfigure with another Userspace succeeded")
	}

	// Close removes the TUN and the socket.
	h.mustCall(helperRequest{Op: "close"})
	if out, err := nsA.Try("", "ip", "link", "show", "wgedge0"); err == nil {
		t.Errorf("wgedge0 still exists after Close:\n%s", out)
	}
	socketGone(t, "wgedge0")
}

func TestOpenNonWireGuardLink(t *testing.T) {
	ns := nettest.NewNS(t, "edge-wgtest", "wg", "wireguard-go")
	// A dummy link, or a bridge where the kernel has no dummy driver.
	kind := "dummy"
	if _, err := ns.Try("", "ip", "link", "add", "wgedge1", "type", kind); err != nil {
		kind = "bridge"
		ns.Run(t, "", "ip", "link", "add", "wgedge1", "type", kind)
	}
	h := startHelper(t, ns)
	key := mustKey(t, GeneratePrivateKey)
	for _, userspace := range []bool{false, true} {
		resp := h.call(helperRequest{Op: "open", Opts: Options{Name: "wgedge1", PrivateKey: key, Userspace: userspace}})
		if resp.Err == "" || !strings.Contains(resp.Err, "wgedge1") || !strings.Contains(resp.Err, kind) {
			t.Errorf("Open(Userspace %v) on a %s link: error %q; want one naming wgedge1 and %s", userspace, kind, resp.Err, kind)
		} else {
			t.Logf("Open(Userspace %v): %s", userspace, resp.Err)
		}
	}
	if resp := h.call(helperRequest{Op: "remove", Name: "wgedge1"}); resp.Err == "" {
		t.Errorf("Remove of a %s link succeeded", kind)
	}
	ns.Run(t, "", "ip", "link", "show", "wgedge1")
	socketGone(t, "wgedge1")
}

func TestRemove(t *testing.T) {
	ns := nettest.NewNS(t, "edge-wgtest", "wg", "wireguard-go")
	h := startHelper(t, ns)

	h.mustCall(helperRequest{Op: "remove", Name: "wgedge9"})

	// A TUN left behind.
	ns.Run(t, "", "ip", "tuntap", "add", "dev", "wgedge8", "mode", "tun")
	h.mustCall(helperRequest{Op: "remove", Name: "wgedge8"})
	if out, err := ns.Try("", "ip", "link", "show", "wgedge8"); err == nil {
		t.Errorf("wgedge8 still exists after Remove:\n%s", out)
	}

	// A socket nobody serves is removed; a served one is kept, since it
	// may belong to a device in another namespace.
	if err := os.MkdirAll(wgSocketDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale, served := "wgstale"+randHex(t), "wgserved"+randHex(t)
	ln, err := net.Listen("unix", socketPath(stale))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	t.Cleanup(func() { os.Remove(socketPath(stale)) })
	ln, err = net.Listen("unix", socketPath(served))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	h.mustCall(helperRequest{Op: "remove", Name: stale})
	socketGone(t, stale)
	h.mustCall(helperRequest{Op: "remove", Name: served})
	if _, err := os.Lstat(socketPath(served)); err != nil {
		t.Errorf("Remove deleted a served socket: %v", err)
	}
}

func randHex(t *testing.T) string {
	t.Helper()
	k := mustKey(t, GeneratePresharedKey)
	const digits = "0123456789abcdef"
	return string([]byte{digits[k[0]>>4], digits[k[0]&15], digits[k[1]>>4], digits[k[1]&15]})
}

func TestKernelFallback(t *testing.T) {
	ns := nettest.NewNS(t, "edge-wgtest", "wg", "wireguard-go")
	_, probeErr := ns.Try("", "ip", "link", "add", "wgprobe0", "type", "wireguard")
	kernelHas := probeErr == nil
	if kernelHas {
		ns.Run(t, "", "ip", "link", "del", "wgprobe0")
	}
	h := startHelper(t, ns)
	opts := Options{Name: "wgedge2", PrivateKey: mustKey(t, GeneratePrivateKey), Addresses: pfxs("10.96.0.1/24")}
	resp := h.mustCall(helperRequest{Op: "open", Opts: opts})
	if kernelHas {
		if resp.Kind != KindKernel || resp.Fallback != "" {
			t.Errorf("Kind, Fallback = %q, %q; want kernel with no fallback", resp.Kind, resp.Fallback)
		}
		// Opening it again adopts the link and keeps the random port.
		again := h.mustCall(helperRequest{Op: "open", Opts: opts})
		if again.Kind != KindKernel || again.Port != resp.Port || again.PublicKey != resp.PublicKey {
			t.Errorf("second Open = %+v; want the kernel link with port %d", again, resp.Port)
		}
	} else {
		t.Logf("kernel has no WireGuard (ip link add: %v); Fallback() = %q", probeErr, resp.Fallback)
		if resp.Kind != KindUserspace || resp.Fallback == "" || strings.Contains(resp.Fallback, "\n") {
			t.Errorf("Kind, Fallback = %q, %q; want userspace with a one-line reason", resp.Kind, resp.Fallback)
		}
	}
	if resp.Port == 0 {
		t.Errorf("ListenPort() = 0; want the picked random port")
	}
	out := strings.TrimSpace(ns.Run(t, "", "wg", "show", "wgedge2", "listen-port"))
	if out != strconv.Itoa(resp.Port) {
		t.Errorf("wg show wgedge2 listen-port = %q; want %d", out, resp.Port)
	}
	if out := ns.Run(t, "", "ip", "-o", "addr", "show", "dev", "wgedge2"); !strings.Contains(out, "10.96.0.1/24") {
		t.Errorf("wgedge2 lacks 10.96.0.1/24:\n%s", out)
	}
	h.mustCall(helperRequest{Op: "close"})
	if out, err := ns.Try("", "ip", "link", "show", "wgedge2"); err == nil {
		t.Errorf("wgedge2 still exists after Close:\n%s", out)
	}
	socketGone(t, "wgedge2")
}

// TestDetachUserspace: an embedded device cannot outlive its process, so
// Detach removes it as Close does; it was created, not adopted.
func TestDetachUserspace(t *testing.T) {
	ns := nettest.NewNS(t, "edge-wgtest", "wg", "wireguard-go")
	h := startHelper(t, ns)
	key := mustKey(t, GeneratePrivateKey)
	resp := h.mustCall(helperRequest{Op: "open", Opts: Options{Name: "wgedge5", PrivateKey: key, Userspace: true}})
	if resp.Adopted {
		t.Errorf("a new userspace device says it was adopted")
	}
	h.mustCall(helperRequest{Op: "detach"})
	if out, err := ns.Try("", "ip", "link", "show", "wgedge5"); err == nil {
		t.Errorf("wgedge5 exists after Detach:\n%s", out)
	}
	socketGone(t, "wgedge5")
	h.mustCall(helperRequest{Op: "detach"}) // a second Detach does nothing
}

func TestOpenPortInUse(t *testing.T) {
	ns := nettest.NewNS(t, "edge-wgtest", "wg", "wireguard-go")
	h := startHelper(t, ns)
	key := mustKey(t, GeneratePrivateKey)
	h.mustCall(helperRequest{Op: "open", Opts: Options{Name: "wgedge3", ListenPort: 51830, PrivateKey: key, Userspace: true}})
	resp := h.call(helperRequest{Op: "open", Opts: Options{Name: "wgedge4", ListenPort: 51830, PrivateKey: key, Userspace: true}})
	// Depending on whether wireguard-go's TUN watcher has already brought
	// the device up, setting the port or bringing it up fails.
	if resp.Err == "" || !strings.Contains(resp.Err, "listen port 51830") {
		t.Errorf("Open on a used port: error %q; want one about listen port 51830", resp.Err)
	} else {
		t.Logf("Open on a used port: %s", resp.Err)
	}
	// The failed Open leaves nothing behind.
	if out, err := ns.Try("", "ip", "link", "show", "wgedge4"); err == nil {
		t.Errorf("wgedge4 exists after a failed Open:\n%s", out)
	}
	socketGone(t, "wgedge4")
	// The first device is untouched.
	if out := strings.TrimSpace(ns.Run(t, "", "wg", "show", "wgedge3", "listen-port")); out != "51830" {
		t.Errorf("wg show wgedge3 listen-port = %q; want 51830", out)
	}
}
