//go:build linux

package nft

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/homeedge/edge/internal/nettest"
)

// TestOracle applies the representative ruleset over netlink in a fresh
// namespace and compares `nft list table inet edge` with Render, exactly
// (expiry times and counter values aside). It then checks RenderScript's
// file with nft -c and loads it with nft -f into a second namespace and
// compares again, so the boot-time path and the daemon's path produce
// the same kernel state.
func TestOracle(t *testing.T) {
	r := representative()
	want := Render(r)

	ns := newTestNS(t)
	if err := Apply(ns.conn, r); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if diff := cmp.Diff(want, nettest.NFTNormalized(ns.list(t, "edge"))); diff != "" {
		t.Errorf("nft list after Apply differs from Render (-Render +nft):\n%s", diff)
	}

	// Every counter reads back by rule ID, whatever else the rule holds.
	counters, err := ReadCounters(ns.conn, "edge")
	if err != nil {
		t.Fatalf("ReadCounters: %v", err)
	}
	for _, c := range r.Chains {
		for _, rule := range c.Rules {
			if _, ok := counters[rule.ID]; ok != rule.Counter {
				t.Errorf("ReadCounters has rule %q: %v, want %v", rule.ID, ok, rule.Counter)
			}
		}
	}

	script, err := RenderScript(r)
	if err != nil {
		t.Fatalf("RenderScript: %v", err)
	}
	ns2 := newTestNS(t)
	if out, err := ns2.nftFile(t, script, "-c"); err != nil {
		t.Fatalf("nft -c -f RenderScript: %v\n%s", err, out)
	}
	if out, err := ns2.nftFile(t, script); err != nil {
		t.Fatalf("nft -f RenderScript: %v\n%s", err, out)
	}
	if diff := cmp.Diff(want, nettest.NFTNormalized(ns2.list(t, "edge"))); diff != "" {
		t.Errorf("nft list after nft -f RenderScript differs from Render (-Render +nft):\n%s", diff)
	}
}
