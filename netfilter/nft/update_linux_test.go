//go:build linux

package nft

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// TestUpdateSet: elements are added, refreshed (a new timeout replaces
// the old one) and removed in the live table without a re-apply, removing
// an absent element is not an error, and the rest of the table is left
// alone.
func TestUpdateSet(t *testing.T) {
	ns := newTestNS(t)
	r := stateRuleset(false)
	if err := Apply(ns.conn, r); err != nil {
		t.Fatal(err)
	}
	ban := r.Sets[0]
	if ban.Name != "ban4" {
		t.Fatalf("fixture changed: first set is %s", ban.Name)
	}
	before := readOrFail(t, ns, "ban4")
	addrs := func(els []SetElement) map[netip.Addr]SetElement {
		m := map[netip.Addr]SetElement{}
		for _, e := range els {
			m[e.Prefix.Addr()] = e
		}
		return m
	}
	a1, a2 := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("198.51.100.8")
	el := func(a netip.Addr, d time.Duration, c string) ruleset.Element {
		return ruleset.Element{Prefix: netip.PrefixFrom(a, 32), Timeout: d, Comment: c}
	}
	if err := UpdateSet(ns.conn, "edge", ban, []ruleset.Element{el(a1, time.Hour, "first"), el(a2, 30*24*time.Hour, "long")}, nil); err != nil {
		t.Fatalf("add: %v", err)
	}
	got := addrs(readOrFail(t, ns, "ban4"))
	if e, ok := got[a1]; !ok || e.Timeout != time.Hour || e.Comment != "first" {
		t.Fatalf("after add, %v = %+v (present %v); want timeout 1h comment first", a1, e, ok)
	}
	if e := got[a2]; e.Timeout != 30*24*time.Hour {
		t.Errorf("a 30-day ban reads back with timeout %v", e.Timeout)
	}
	// Refresh: a shorter timeout replaces the longer one, the comment too.
	if err := UpdateSet(ns.conn, "edge", ban, []ruleset.Element{el(a1, 10*time.Minute, "again")}, nil); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	got = addrs(readOrFail(t, ns, "ban4"))
	if e := got[a1]; e.Timeout != 10*time.Minute || e.Comment != "again" || e.Expires > 10*time.Minute {
		t.Errorf("after refresh, %v = %+v; want timeout 10m comment again", a1, e)
	}
	// Remove one present and one absent address in one call.
	absent := netip.MustParseAddr("198.51.100.9")
	if err := UpdateSet(ns.conn, "edge", ban, nil, []ruleset.Element{el(a2, 0, ""), el(absent, 0, "")}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	got = addrs(readOrFail(t, ns, "ban4"))
	if _, ok := got[a2]; ok {
		t.Errorf("%v still in the set after removal", a2)
	}
	if _, ok := got[absent]; ok {
		t.Errorf("removing absent %v added it", absent)
	}
	if len(got) != len(before)+1 {
		t.Errorf("set holds %d elements, want %d (the fixture's and one ban)", len(got), len(before)+1)
	}
	// A wrong family is refused before anything is sent.
	err := UpdateSet(ns.conn, "edge", ban, []ruleset.Element{{Prefix: netip.MustParsePrefix("2001:db8::1/128")}}, nil)
	if err == nil || !strings.Contains(err.Error(), "ban4") {
		t.Errorf("IPv6 element into ban4: err = %v, want an error naming the set", err)
	}
	// An absent set is the kernel's refusal, naming the set.
	missing := *ban
	missing.Name = "nosuch"
	if err := UpdateSet(ns.conn, "edge", &missing, []ruleset.Element{el(a1, time.Hour, "")}, nil); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("update of an absent set: err = %v, want an error naming it", err)
	}
}

// readOrFail reads a set of table inet edge or fails the test.
func readOrFail(t *testing.T, ns *testNS, set string) []SetElement {
	t.Helper()
	els, err := ReadSetElements(ns.conn, "edge", set)
	if err != nil {
		t.Fatal(err)
	}
	return els
}
