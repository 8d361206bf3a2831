//go:build linux

package nft

import (
	"os"
	"testing"

	"github.com/homeedge/edge/internal/nettest"
)

// testNS is a throwaway network namespace "edge-nfttest-<random>" with a
// Conn opened on it (nettest.NewNS). Nothing in these tests touches the
// host's own namespace: kernel state goes through the Conn, and nft runs
// under `ip netns exec`.
type testNS struct {
	*nettest.NS
	conn *Conn
}

func newTestNS(t testing.TB) *testNS {
	t.Helper()
	ns := &testNS{NS: nettest.NewNS(t, "edge-nfttest", "nft")}
	var err error
	if ns.conn, err = Open(ns.Fd); err != nil {
		t.Fatalf("Open(%s): %v", ns.Name, err)
	}
	t.Cleanup(func() { ns.conn.Close() })
	return ns
}

// run runs a command in the namespace and returns its output.
func (ns *testNS) run(t testing.TB, args ...string) string {
	t.Helper()
	return ns.Run(t, "", args...)
}

func (ns *testNS) try(args ...string) (string, error) { return ns.Try("", args...) }

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
