//go:build linux

package nft

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/homeedge/edge/netfilter/ruleset"

	"github.com/homeedge/edge/internal/nettest"
)

// Every test here runs in its own throwaway namespace (newTestNS):
//
//	host namespace (untouched)
//	  edge-nfttest-<random>: lo up, table inet edge under test,
//	                         sometimes table ip foreign beside it

const foreignTable = `table ip foreign {
	chain fw {
		type filter hook forward priority filter; policy drop;
		ip saddr 10.0.0.1 counter packets 0 bytes 0 accept
	}
}
`

// TestForeignTableSurvives: applies, re-applies and a Delete never touch
// another table, and Delete of an absent table is not an error.
func TestForeignTableSurvives(t *testing.T) {
	ns := newTestNS(t)
	if out, err := ns.nftFile(t, foreignTable); err != nil {
		t.Fatalf("nft -f foreign table: %v\n%s", err, out)
	}
	check := func(step string) {
		t.Helper()
		if diff := cmp.Diff(foreignTable, nettest.NFTNormalized(ns.run(t, "nft", "list", "table", "ip", "foreign"))); diff != "" {
			t.Fatalf("after %s, table ip foreign changed (-want +got):\n%s", step, diff)
		}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"Apply(representative)", func() error { return Apply(ns.conn, representative()) }},
		{"Apply(blocklist)", func() error { return Apply(ns.conn, blocklistRuleset(2000)) }},
		{"Apply(representative, KeepState)", func() error { return Apply(ns.conn, representative(), KeepState()) }},
		{"Delete", func() error { return Delete(ns.conn, "edge") }},
		{"Delete of the absent table", func() error { return Delete(ns.conn, "edge") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		check(s.name)
	}
	if got := ns.run(t, "nft", "list", "tables"); got != "table ip foreign\n" {
		t.Errorf("after Delete, nft list tables = %q, want only the foreign table", got)
	}
}

// TestRefusedBatchChangesNothing: a ruleset the kernel refuses (each
// passes Validate, or is sent past it) fails with an error that names the
// refused rule, and leaves the previous ruleset exactly in place.
func TestRefusedBatchChangesNothing(t *testing.T) {
	ns := newTestNS(t)
	if err := Apply(ns.conn, representative()); err != nil {
		t.Fatal(err)
	}
	// Element expiry times tick; everything else must stay as it was.
	before := nettest.NFTWithoutExpiry(ns.list(t, "edge"))
	broken := func(edit func(r *ruleset.Ruleset) *ruleset.Chain) *ruleset.Ruleset {
		r := representative()
		r.Chains = append(r.Chains, &ruleset.Chain{Name: "extra_a"}, &ruleset.Chain{Name: "extra_b"})
		edit(r)
		return r
	}
	chain := func(r *ruleset.Ruleset, name string) *ruleset.Chain {
		for _, c := range r.Chains {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no chain %s", name)
		return nil
	}
	for _, tc := range []struct {
		name     string
		r        *ruleset.Ruleset
		validate bool // whether it passes Validate and Check
		want     string
	}{
		{"jump to a base chain", broken(func(r *ruleset.Ruleset) *ruleset.Chain {
			c := chain(r, "extra_a")
			c.Rules = []*ruleset.Rule{{ID: "jump to input", Verdict: ruleset.Jump, Target: "input"}}
			return c
		}), true, `rule "jump to input" (chain extra_a): operation not supported`},
		{"jump loop", broken(func(r *ruleset.Ruleset) *ruleset.Chain {
			chain(r, "wan_in").Rules = append(chain(r, "wan_in").Rules, &ruleset.Rule{ID: "to a", Verdict: ruleset.Jump, Target: "extra_a"})
			chain(r, "extra_a").Rules = []*ruleset.Rule{{ID: "to b", Verdict: ruleset.Jump, Target: "extra_b"}}
			chain(r, "extra_b").Rules = []*ruleset.Rule{{ID: "back to a", Verdict: ruleset.Jump, Target: "extra_a"}}
			return nil
		}), false, `rule "back to a" (chain extra_b)`},
		{"dnat in a filter chain", broken(func(r *ruleset.Ruleset) *ruleset.Chain {
			c := chain(r, "forward")
			c.Rules = append(c.Rules, &ruleset.Rule{ID: "misplaced dnat", NAT: &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.168.1.10")}})
			return c
		}), false, `rule "misplaced dnat" (chain forward): operation not supported`},
		{"goto an undefined chain", broken(func(r *ruleset.Ruleset) *ruleset.Chain {
			c := chain(r, "extra_b")
			c.Rules = []*ruleset.Rule{{ID: "ok", Counter: true}, {ID: "to nowhere", Verdict: ruleset.Goto, Target: "nowhere"}}
			return c
		}), false, `rule "to nowhere" (chain extra_b): no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check(tc.r); (err == nil) != tc.validate {
				t.Fatalf("Check = %v, want passing %v", err, tc.validate)
			}
			err := apply(ns.conn, tc.r, nil)
			var be *BatchError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("apply = %v, want a *BatchError containing %q", err, tc.want)
			}
			if diff := cmp.Diff(before, nettest.NFTWithoutExpiry(ns.list(t, "edge"))); diff != "" {
				t.Errorf("refused batch changed the ruleset (-before +after):\n%s", diff)
			}
		})
	}
}

// stateRuleset counts echo requests on output, meters them per source
// and drops banned sources on input.
func stateRuleset(extra bool) *ruleset.Ruleset {
	r := &ruleset.Ruleset{Table: "edge",
		Sets: []*ruleset.Set{
			{Name: "ban4", Type: ruleset.IPv4Addr, Timeout: true, Elements: []ruleset.Element{{Prefix: pfx("192.0.2.1"), Timeout: time.Hour, Comment: "config"}}},
			{Name: "tempnets", Type: ruleset.IPv4Addr, Interval: true, Timeout: true},
			{Name: "ping_meter", Type: ruleset.IPv4Addr, Dynamic: true, Timeout: true, Size: 1024},
		},
		Chains: []*ruleset.Chain{
			{Name: "input", Hook: ruleset.Input, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
				{ID: "bans", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP, false, "ban4")}, Counter: true, Verdict: ruleset.Drop},
			}},
			{Name: "output", Hook: ruleset.Output, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
				{ID: "pings", Matches: []ruleset.Match{values(ruleset.ICMPType, false, "echo-request")}, Counter: true,
					Meter: &ruleset.Meter{Set: "ping_meter", Family: ruleset.IP, Limit: ruleset.Limit{Rate: 100, Unit: "second"}}},
			}},
		},
	}
	if extra {
		r.Chains[0].Rules = append(r.Chains[0].Rules, &ruleset.Rule{ID: "new rule", Counter: true})
	}
	return r
}

// TestStateSurvivesReapply: with KeepState, rule counters and the
// elements of timeout sets added at run time survive a re-apply (with
// the time they had left); the ruleset's own elements are as declared;
// meters start empty. Without it, all of that is gone.
func TestStateSurvivesReapply(t *testing.T) {
	ns := newTestNS(t)
	if err := Apply(ns.conn, stateRuleset(false)); err != nil {
		t.Fatal(err)
	}
	ns.run(t, "ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1")
	ns.run(t, "nft", "add", "element", "inet", "edge", "ban4", `{ 203.0.113.9 timeout 1h comment "api", 203.0.113.10 }`)
	ns.run(t, "nft", "add", "element", "inet", "edge", "tempnets", `{ 198.51.100.0/24 timeout 2h }`)
	counters, err := ReadCounters(ns.conn, "edge")
	if err != nil {
		t.Fatal(err)
	}
	before := counters["pings"]
	if before.Packets != 3 || before.Bytes == 0 {
		t.Fatalf("counter of rule pings = %+v, want 3 packets", before)
	}
	if n, _ := ns.conn.countElements("edge", "ping_meter"); n != 1 {
		t.Fatalf("ping_meter holds %d elements before the re-apply, want 1 (127.0.0.1)", n)
	}

	if err := Apply(ns.conn, stateRuleset(true), KeepState()); err != nil {
		t.Fatalf("Apply(KeepState): %v", err)
	}
	counters, err = ReadCounters(ns.conn, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if got := counters["pings"]; got.Packets != 3 || got.Bytes != before.Bytes {
		t.Errorf("after a re-apply with KeepState, counter of pings = %+v, want %+v", got, before)
	}
	if got := counters["new rule"]; got != (Counter{}) {
		t.Errorf("counter of the new rule = %+v, want zero", got)
	}
	bans, err := ReadSetElements(ns.conn, "edge", "ban4")
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]SetElement{}
	for _, e := range bans {
		byAddr[e.Prefix.String()] = e
	}
	if e, ok := byAddr["203.0.113.9/32"]; !ok || e.Comment != "api" || e.Timeout > time.Hour || e.Timeout < 59*time.Minute || e.Expires > e.Timeout {
		t.Errorf("run-time ban 203.0.113.9 after the re-apply = %+v (present %v), want it with its remaining time (<= 1h) and comment", e, ok)
	}
	if e, ok := byAddr["203.0.113.10/32"]; !ok || e.Timeout != 0 {
		t.Errorf("permanent run-time ban 203.0.113.10 = %+v (present %v), want it without timeout", e, ok)
	}
	if e, ok := byAddr["192.0.2.1/32"]; !ok || e.Timeout != time.Hour || e.Comment != "config" {
		t.Errorf("declared ban 192.0.2.1 = %+v (present %v), want it as declared", e, ok)
	}
	nets, err := ReadSetElements(ns.conn, "edge", "tempnets")
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 1 || nets[0].Prefix != pfx("198.51.100.0/24") || nets[0].Timeout > 2*time.Hour || nets[0].Timeout < time.Hour {
		t.Errorf("tempnets after the re-apply = %+v, want 198.51.100.0/24 with its remaining time", nets)
	}
	if n, _ := ns.conn.countElements("edge", "ping_meter"); n != 0 {
		t.Errorf("ping_meter holds %d elements after the re-apply, want 0 (meters are not carried)", n)
	}

	// A rollback: state read, table gone, re-applied from the snapshot.
	st, err := ReadState(ns.conn, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if err := Delete(ns.conn, "edge"); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ns.conn, stateRuleset(false), WithState(st)); err != nil {
		t.Fatalf("Apply(WithState): %v", err)
	}
	if counters, _ := ReadCounters(ns.conn, "edge"); counters["pings"].Packets != 3 {
		t.Errorf("after Apply(WithState(snapshot)), pings = %+v, want 3 packets", counters["pings"])
	}

	// Without carrying state, a replace starts from the ruleset alone.
	if err := Apply(ns.conn, stateRuleset(false)); err != nil {
		t.Fatal(err)
	}
	if counters, _ := ReadCounters(ns.conn, "edge"); counters["pings"] != (Counter{}) {
		t.Errorf("after a plain re-apply, pings = %+v, want zero", counters["pings"])
	}
	if bans, _ := ReadSetElements(ns.conn, "edge", "ban4"); len(bans) != 1 {
		t.Errorf("after a plain re-apply, ban4 = %+v, want only the declared element", bans)
	}
}

// TestFlowtableSupported agrees with nft itself about flowtable support
// (this CI kernel has none) and leaves no table behind.
func TestFlowtableSupported(t *testing.T) {
	ns := newTestNS(t)
	_, nftErr := ns.nftFile(t, "table inet probe {\n\tflowtable f {\n\t\thook ingress priority filter\n\t}\n}\ndelete table inet probe\n")
	got := FlowtableSupported(ns.conn)
	if want := nftErr == nil; got != want {
		t.Errorf("FlowtableSupported = %v, nft -f of a flowtable says %v", got, want)
	}
	t.Logf("flowtable support: %v (ProbeFlowtable: %v)", got, ProbeFlowtable(ns.conn))
	if tables := ns.run(t, "nft", "list", "tables"); tables != "" {
		t.Errorf("tables left behind by the probe: %q", tables)
	}
}
