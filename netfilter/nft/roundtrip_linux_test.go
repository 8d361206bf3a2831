//go:build linux

package nft

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/homeedge/edge/netfilter/ruleset"

	"github.com/homeedge/edge/internal/nettest"
)

// TestRoundTrip generates random rules from every match kind and
// statement (EDGE_NFT_SEED picks another seed), keeps those Check
// accepts, and checks that nft parses RenderScript's text (nft -c), that
// the applied table lists exactly as Render prints it, and that the text
// loaded with nft -f lists as itself.
func TestRoundTrip(t *testing.T) {
	seed := uint64(1)
	if s := os.Getenv("EDGE_NFT_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	r, refused := randomRuleset(rand.New(rand.NewPCG(seed, 42)), 300)
	t.Logf("seed %d: %d rules kept, %d refused by Check", seed, countRules(r), refused)
	if err := Check(r); err != nil {
		t.Fatalf("Check: %v", err)
	}
	ns := newTestNS(t)
	script, _ := RenderScript(r)
	if out, err := ns.nftFile(t, script, "-c"); err != nil {
		t.Fatalf("nft -c -f RenderScript: %v\n%s", err, out)
	}
	if err := Apply(ns.conn, r); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := strings.Split(Render(r), "\n")
	got := strings.Split(nettest.NFTNormalized(ns.list(t, "edge")), "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nft list after Apply differs from Render (-Render +nft):\n%s", diff)
	}
	// Render's text is a fixed point of nft: loaded with nft -f, it lists
	// as itself (the boot-time path).
	if out, err := ns.nftFile(t, script); err != nil {
		t.Fatalf("nft -f RenderScript: %v\n%s", err, out)
	}
	got = strings.Split(nettest.NFTNormalized(ns.list(t, "edge")), "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nft list after nft -f RenderScript differs from Render (-Render +nft):\n%s", diff)
	}

	// The empty table, and a table of empty sets and chains.
	for _, r := range []*ruleset.Ruleset{{Table: "edge"}, {Table: "edge",
		Sets:   []*ruleset.Set{{Name: "s", Type: ruleset.InetService, Interval: true}},
		Chains: []*ruleset.Chain{{Name: "c"}, {Name: "in", Hook: ruleset.Input, Policy: ruleset.Drop}}}} {
		if err := Apply(ns.conn, r); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Render(r), ns.list(t, "edge")); diff != "" {
			t.Errorf("nft list differs from Render (-Render +nft):\n%s", diff)
		}
	}
}

func countRules(r *ruleset.Ruleset) int {
	n := 0
	for _, c := range r.Chains {
		n += len(c.Rules)
	}
	return n
}

// TestReadRuleIDs reads back every rule's ID, and sees a rule deleted by
// hand and the table deleted.
func TestReadRuleIDs(t *testing.T) {
	r, _ := randomRuleset(rand.New(rand.NewPCG(7, 42)), 40)
	ns := newTestNS(t)
	if err := Apply(ns.conn, r); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := map[string]int{}
	for _, c := range r.Chains {
		for _, rule := range c.Rules {
			want[rule.ID]++
		}
	}
	got, err := ReadRuleIDs(ns.conn, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadRuleIDs after Apply (-want +got):\n%s", diff)
	}
	ns.run(t, "nft", "flush", "table", "inet", "edge")
	if got, err := ReadRuleIDs(ns.conn, "edge"); err != nil || len(got) != 0 {
		t.Errorf("ReadRuleIDs of a flushed table = %v, %v; want none", got, err)
	}
	ns.run(t, "nft", "delete", "table", "inet", "edge")
	if got, err := ReadRuleIDs(ns.conn, "edge"); err != nil || len(got) != 0 {
		t.Errorf("ReadRuleIDs without the table = %v, %v; want none", got, err)
	}
}
