//go:build linux

package nft

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/nettest"
)

// testNS is a throwaway network namespace, "edge-nfttest-<random>",
// created with `ip netns add` and deleted when the test ends. Nothing in
// these tests touches the host's own namespace: kernel state goes through
// a Conn opened on the namespace's fd, and nft runs under
// `ip netns exec`.
type testNS struct {
	name string
	fd   int
	conn *Conn
}

func newTestNS(t testing.TB) *testNS {
	t.Helper()
	nettest.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		nettest.Unavailable(t, "needs the nft command (Debian package nftables)")
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := &testNS{name: "edge-nfttest-" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
		}
	})
	f, err := os.Open("/run/netns/" + ns.name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ns.fd = int(f.Fd())
	ns.run(t, "ip", "link", "set", "lo", "up")
	if ns.conn, err = Open(ns.fd); err != nil {
		t.Fatalf("Open(%s): %v", ns.name, err)
	}
	t.Cleanup(func() { ns.conn.Close() })
	return ns
}

// run runs a command in the namespace and returns its output.
func (ns *testNS) run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.try(args...)
	if err != nil {
		t.Fatalf("ip netns exec %s %s: %v: %s", ns.name, strings.Join(args, " "), err, out)
	}
	return out
}

func (ns *testNS) try(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...).CombinedOutput()
	return string(out), err
}

// nftFile runs nft -f (with more flags) on text in the namespace.
func (ns *testNS) nftFile(t testing.TB, text string, flags ...string) (string, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.nft")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return ns.try(append(append([]string{"nft"}, flags...), "-f", f.Name())...)
}

// list is `nft list table inet <table>` in the namespace.
func (ns *testNS) list(t testing.TB, table string) string {
	t.Helper()
	return ns.run(t, "nft", "list", "table", "inet", table)
}

var (
	expiresRe = regexp.MustCompile(` expires [0-9dhms]+`)
	counterRe = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)
)

// normalize removes what changes between listings of the same ruleset:
// element expiry times and counter values (handles are not listed
// without -a).
func normalize(listing string) string {
	listing = expiresRe.ReplaceAllString(listing, "")
	return counterRe.ReplaceAllString(listing, "counter packets 0 bytes 0")
}
