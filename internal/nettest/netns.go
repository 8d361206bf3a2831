package nettest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// NS is a throwaway network namespace: kernel state a test creates goes
// into it (netlink sockets opened on Fd, commands run through Run), never
// into the caller's own namespace.
type NS struct {
	// Name is the namespace's name under /run/netns.
	Name string
	// Fd refers to the namespace, for sockets opened in it.
	Fd int
}

// NewNS creates the namespace "<prefix>-<8 hex digits>" with lo up and
// deletes it when t ends. Without root or the ip command it skips t, or
// fails it under EDGE_REQUIRE_ROOT=1; so do the commands the test names
// in needs ("nft") when they are missing.
func NewNS(t testing.TB, prefix string, needs ...string) *NS {
	t.Helper()
	RequireRoot(t)
	for _, cmd := range append([]string{"ip"}, needs...) {
		if _, err := exec.LookPath(cmd); err != nil {
			Unavailable(t, "needs the "+cmd+" command")
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := &NS{Name: prefix + "-" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
		}
	})
	f, err := os.Open("/run/netns/" + ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ns.Fd = int(f.Fd())
	ns.Run(t, "", "ip", "link", "set", "lo", "up")
	return ns
}

// Try runs a command in the namespace with stdin and returns its
// combined output.
func (ns *NS) Try(stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Run is Try that fails t when the command fails.
func (ns *NS) Run(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, err := ns.Try(stdin, args...)
	if err != nil {
		t.Fatalf("ip netns exec %s %s: %v: %s", ns.Name, strings.Join(args, " "), err, out)
	}
	return out
}
