//go:build linux

package vpn

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/homeedge/edge/internal/nettest"
	"github.com/homeedge/edge/netfilter/nft"
)

// The access table goes into a throwaway namespace:
//
//	host namespace (untouched)
//	  edge-vpntest-<random>: lo up, table ip foreign,
//	                         table inet edge_vpn under test

// TestACLKernel applies each rule set of aclCases through prepare and
// commit and compares `nft list table inet edge_vpn` with the rendered
// text, which nft also reads back (nft -c). prepare changes nothing,
// with or without a table in place; no rules remove the table; the
// foreign table is never touched.
func TestACLKernel(t *testing.T) {
	ns := nettest.NewNS(t, "edge-vpntest", "nft")
	tbl := newACLTable(slog.New(slog.DiscardHandler))
	tbl.open = func() (*nft.Conn, error) { return nft.Open(ns.Fd) }
	const foreign = "table ip foreign {\n\tchain fw {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n"
	ns.Run(t, foreign, "nft", "-f", "-")
	list := func() string { return ns.Run(t, "", "nft", "list", "ruleset") }

	for _, tc := range aclCases {
		t.Run(tc.name, func(t *testing.T) {
			before := list()
			p, err := tbl.prepare(tc.rules)
			if err != nil || p == nil {
				t.Fatalf("prepare = %+v, %v; want a plan", p, err)
			}
			if diff := cmp.Diff(before, list()); diff != "" {
				t.Fatalf("prepare changed the rulesets (-before +after):\n%s", diff)
			}
			if err := tbl.commit(p); err != nil {
				t.Fatalf("commit: %v", err)
			}
			want := nft.Render(aclRuleset(tc.rules))
			got := nettest.NFTNormalized(ns.Run(t, "", "nft", "list", "table", "inet", aclTableName))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("nft list table inet %s differs from Render (-Render +nft):\n%s", aclTableName, diff)
			}
			script := "table inet " + aclTableName + " {\n}\ndelete table inet " + aclTableName + "\n" + want
			if out, err := ns.Try(script, "nft", "-c", "-f", "-"); err != nil {
				t.Errorf("nft -c -f of the rendered table: %v\n%s", err, out)
			}
			if p, err := tbl.prepare(tc.rules); p != nil || err != nil {
				t.Errorf("prepare(the same rules) = %+v, %v; want nothing to do", p, err)
			}
		})
	}

	// Drift: the table deleted, then a rule deleted, by someone else;
	// apply with the same rules puts it back and says why.
	last := aclCases[len(aclCases)-1].rules
	if _, err := tbl.apply(last); err != nil {
		t.Fatal(err)
	}
	want := ns.Run(t, "", "nft", "list", "table", "inet", aclTableName)
	for _, tc := range []struct{ name, cmd, why string }{
		{"table deleted", "delete table inet " + aclTableName, "table gone"},
		{"rule deleted", "flush chain inet " + aclTableName + " forward", "rules changed"},
	} {
		ns.Run(t, tc.cmd+"\n", "nft", "-f", "-")
		why, err := tbl.apply(last)
		if err != nil || why != tc.why {
			t.Errorf("%s: apply(same rules) = %q, %v; want %q", tc.name, why, err, tc.why)
		}
		if got := ns.Run(t, "", "nft", "list", "table", "inet", aclTableName); nettest.NFTNormalized(got) != nettest.NFTNormalized(want) {
			t.Errorf("%s: not restored:\n%s", tc.name, got)
		}
	}
	if why, err := tbl.apply(last); why != "" || err != nil {
		t.Errorf("apply(same rules) without drift = %q, %v", why, err)
	}

	if _, err := tbl.apply(nil); err != nil {
		t.Fatalf("apply(no rules): %v", err)
	}
	if got := ns.Run(t, "", "nft", "list", "tables"); got != "table ip foreign\n" {
		t.Errorf("after apply(no rules), nft list tables = %q, want only the foreign table", got)
	}
	if got := ns.Run(t, "", "nft", "list", "table", "ip", "foreign"); got != foreign {
		t.Errorf("table ip foreign changed:\n%s", got)
	}
}
