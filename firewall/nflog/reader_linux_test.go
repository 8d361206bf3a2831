//go:build linux

package nflog

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/homeedge/edge/internal/nettest"
)

// These variables select a helper mode in which the test binary, run
// under `ip netns exec`, does one thing and exits: helperEnv sends the
// packets it describes (see sendPackets); openEnv opens the NFLOG group
// it names in the current namespace and prints the result.
const (
	helperEnv = "EDGE_NFLOG_TEST_SEND"
	openEnv   = "EDGE_NFLOG_TEST_OPEN"
	// helperGORACE spares a helper built with -race the race
	// detector's one-second pause at exit.
	helperGORACE = "GORACE=atexit_sleep_ms=0"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		if err := sendPackets(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if group := os.Getenv(openEnv); group != "" {
		n, err := strconv.ParseUint(group, 10, 16)
		if err == nil {
			var r *Reader
			if r, err = Open(0, uint16(n), 128); err == nil {
				r.Close()
				fmt.Println("opened")
			}
		}
		if err != nil {
			fmt.Printf("error: %v (in use: %t)\n", err, errors.Is(err, ErrGroupInUse))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sendPackets sends what spec lists, items separated by spaces:
// "udp,ADDR,COUNT" sends COUNT one-byte datagrams to ADDR from one
// unconnected socket; "tcp,ADDR" tries one connection (a SYN) to ADDR.
func sendPackets(spec string) error {
	for item := range strings.FieldsSeq(spec) {
		f := strings.Split(item, ",")
		switch {
		case f[0] == "udp" && len(f) == 3:
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return err
			}
			dst, err := net.ResolveUDPAddr("udp", f[1])
			if err != nil {
				return err
			}
			c, err := net.ListenUDP("udp", nil)
			if err != nil {
				return err
			}
			for range n {
				if _, err := c.WriteToUDP([]byte("x"), dst); err != nil {
					c.Close()
					return err
				}
			}
			c.Close()
		case f[0] == "tcp" && len(f) == 2:
			// Nothing listens: the connection is refused after the SYN.
			if c, err := net.DialTimeout("tcp", f[1], 2*time.Second); err == nil {
				c.Close()
			}
		default:
			return fmt.Errorf("bad item %q", item)
		}
	}
	return nil
}

// testNS is a throwaway network namespace "edge-nflogtest-<random>"
// (nettest.NewNS). The tests touch nothing outside it: Open gets the
// namespace's fd, and nft, ip and the sender run under `ip netns exec`.
type testNS struct {
	*nettest.NS
	name string
	fd   int
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	ns := nettest.NewNS(t, "edge-nflogtest", "nft")
	return &testNS{NS: ns, name: ns.Name, fd: ns.Fd}
}

// run runs a command in the namespace with stdin and returns its output.
func (ns *testNS) run(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	return ns.Run(t, stdin, args...)
}

// send runs the packet sender in the namespace (see sendPackets).
func (ns *testNS) send(t *testing.T, spec string) {
	t.Helper()
	if err := ns.trySend(spec); err != nil {
		t.Fatal(err)
	}
}

func (ns *testNS) trySend(spec string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command("ip", "netns", "exec", ns.name, exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+spec, helperGORACE)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sending %q: %v: %s", spec, err, out)
	}
	return nil
}

// ifindex returns the index of the namespace's interface name.
func (ns *testNS) ifindex(t *testing.T, name string) uint32 {
	t.Helper()
	out := ns.run(t, "", "ip", "-o", "link", "show", name)
	idx, _, _ := strings.Cut(out, ":")
	n, err := strconv.ParseUint(idx, 10, 32)
	if err != nil {
		t.Fatalf("ifindex of %s from %q: %v", name, out, err)
	}
	return uint32(n)
}

const testRuleset = `
table inet nflogtest {
	chain out {
		type filter hook output priority 0;
		udp dport 9999 log prefix "nflog test: " group 7
		tcp dport 9998 log prefix "tcp test: " group 7
		udp dport 9997 meta mark set 0x2a log prefix "mark test: " group 7
	}
}
`

func openReader(t *testing.T, ns *testNS, group uint16) *Reader {
	t.Helper()
	r, err := Open(ns.fd, group, 128)
	if err != nil {
		t.Fatalf("Open(%s, %d): %v", ns.name, group, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type readResult struct {
	e   Entry
	err error
}

// reads reads r until it fails, sending every result on the channel.
func reads(r *Reader) <-chan readResult {
	ch := make(chan readResult, 64)
	go func() {
		for {
			e, err := r.Read()
			ch <- readResult{e, err}
			if err != nil && !errors.Is(err, ErrMalformed) {
				close(ch)
				return
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan readResult) Entry {
	t.Helper()
	select {
	case res, ok := <-ch:
		if !ok {
			t.Fatal("reader stopped")
		}
		if res.err != nil {
			t.Fatalf("Read: %v", res.err)
		}
		return res.e
	case <-time.After(5 * time.Second):
		t.Fatal("no entry within 5s")
	}
	return Entry{}
}

func TestKernelEntries(t *testing.T) {
	ns := newTestNS(t)
	ns.run(t, testRuleset, "nft", "-f", "-")
	lo := ns.ifindex(t, "lo")
	r := openReader(t, ns, 7)
	ch := reads(r)

	ns.send(t, "udp,127.0.0.1:9999,1 tcp,[::1]:9998 udp,127.0.0.1:9997,1")

	loopback4, loopback6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")

	e := next(t, ch)
	if e.SrcPort == 0 {
		t.Errorf("UDP entry has no source port: %+v", e)
	}
	e.SrcPort = 0
	want := Entry{Prefix: "nflog test: ", Family: unix.AF_INET, OutIface: lo, HWProto: unix.ETH_P_IP,
		Src: loopback4, Dst: loopback4, Proto: unix.IPPROTO_UDP, DstPort: 9999, Length: 29}
	if e != want {
		t.Errorf("UDP entry:\n got %+v\nwant %+v", e, want)
	}

	e = next(t, ch)
	if e.SrcPort == 0 || e.Length <= 60 {
		t.Errorf("TCP entry has no source port or a short length: %+v", e)
	}
	e.SrcPort, e.Length = 0, 0
	want = Entry{Prefix: "tcp test: ", Family: unix.AF_INET6, OutIface: lo, HWProto: unix.ETH_P_IPV6,
		Src: loopback6, Dst: loopback6, Proto: unix.IPPROTO_TCP, DstPort: 9998, TCPFlags: 0x02}
	if e != want {
		t.Errorf("TCP entry:\n got %+v\nwant %+v", e, want)
	}

	e = next(t, ch)
	if e.Prefix != "mark test: " || e.Mark != 0x2a || e.DstPort != 9997 {
		t.Errorf("mark entry: %+v, want prefix \"mark test: \", mark 0x2a, port 9997", e)
	}

	if d := r.Dropped(); d != 0 {
		t.Errorf("Dropped() = %d, want 0", d)
	}
	select {
	case res := <-ch:
		t.Errorf("unexpected entry %+v, error %v", res.e, res.err)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestKernelGroupInUse(t *testing.T) {
	ns := newTestNS(t)
	r := openReader(t, ns, 7)

	r2, err := Open(ns.fd, 7, 128)
	if err == nil {
		r2.Close()
		t.Fatal("second Open of group 7 succeeded")
	}
	if !errors.Is(err, ErrGroupInUse) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Open: %v, want an error wrapping ErrGroupInUse", err)
	}
	t.Logf("second Open: %v", err)

	// Another group is free.
	openReader(t, ns, 8)

	// Closing the first reader frees its group.
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	openReader(t, ns, 7)
}

// TestKernelNoCapability checks that Open without CAP_NET_ADMIN says so
// rather than calling the group in use, although the kernel answers EPERM
// in both cases.
func TestKernelNoCapability(t *testing.T) {
	ns := newTestNS(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs the setpriv command (util-linux)")
	}
	openReader(t, ns, 7)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		group   string
		drop    bool
		wantOut string
	}{
		{"8", false, "opened"},
		{"7", false, "error: nflog: bind group 7: NFLOG group is in use by another socket (in use: true)"},
		{"8", true, "error: nflog: bind group 8: operation not permitted (CAP_NET_ADMIN is needed) (in use: false)"},
		{"7", true, "error: nflog: bind group 7: operation not permitted (CAP_NET_ADMIN is needed) (in use: false)"},
	} {
		args := []string{"netns", "exec", ns.name}
		if tt.drop {
			args = append(args, "setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin")
		}
		cmd := exec.Command("ip", append(args, exe)...)
		cmd.Env = append(os.Environ(), openEnv+"="+tt.group, helperGORACE)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tt.wantOut {
			t.Errorf("Open(group %s) without CAP_NET_ADMIN %t:\n got %s\nwant %s", tt.group, tt.drop, got, tt.wantOut)
		}
	}
}

func TestKernelCloseUnblocksRead(t *testing.T) {
	ns := newTestNS(t)
	r := openReader(t, ns, 9)

	done := make(chan error, 1)
	go func() {
		_, err := r.Read()
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Read returned before Close: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5s after Close")
	}
	if _, err := r.Read(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read on a closed Reader: %v, want net.ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestKernelOverflow fills a tiny receive buffer and checks that Read
// goes on after ENOBUFS and that Dropped counts exactly the entries that
// never arrived.
func TestKernelOverflow(t *testing.T) {
	const flood = 2000
	ns := newTestNS(t)
	ns.run(t, testRuleset, "nft", "-f", "-")
	r := openReader(t, ns, 7)
	var serr error
	if err := r.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 0)
	}); err != nil || serr != nil {
		t.Fatalf("shrinking the receive buffer: %v, %v", err, serr)
	}

	// Nothing reads while the flood arrives, and the kernel's flush
	// timer (100 ms) runs out before reading starts.
	ns.send(t, fmt.Sprintf("udp,127.0.0.1:9999,%d", flood))
	time.Sleep(300 * time.Millisecond)

	ch := reads(r)
	udp := 0
	for next(t, ch).Prefix == "nflog test: " {
		udp++
		if udp == 1 {
			// The buffer is being drained; the marker that ends the
			// test now finds room.
			go func() {
				if err := ns.trySend("tcp,[::1]:9998"); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	dropped := r.Dropped()
	t.Logf("%d entries read, %d dropped", udp, dropped)
	if dropped == 0 {
		t.Fatal("no entries dropped: the receive buffer did not overflow")
	}
	if uint64(udp)+dropped != flood {
		t.Errorf("%d entries read + %d dropped, want %d", udp, dropped, flood)
	}
}

func TestAccount(t *testing.T) {
	r := &Reader{}
	steps := []struct {
		seq        seqInfo
		overflowed bool
		want       uint64
	}{
		{seqInfo{0, true}, false, 0},
		{seqInfo{1, true}, false, 0},
		{seqInfo{5, true}, true, 3},
		{seqInfo{0, false}, true, 4},  // no sequence number: one at least
		{seqInfo{0, false}, false, 4}, // no overflow, nothing lost
		{seqInfo{3, true}, false, 4},  // going backwards counts nothing
		{seqInfo{4, true}, false, 4},
	}
	for i, s := range steps {
		r.overflowed = s.overflowed
		r.account(s.seq)
		if got := r.Dropped(); got != s.want {
			t.Fatalf("step %d: Dropped() = %d, want %d", i, got, s.want)
		}
	}
	r.nextSeq = 0xfffffffe
	r.account(seqInfo{1, true})
	if got := r.Dropped(); got != 4+3 {
		t.Errorf("across wrap-around: Dropped() = %d, want 7", got)
	}
}
