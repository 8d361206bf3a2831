//go:build linux

package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// blocklist returns n distinct, non-overlapping prefixes: about half /24
// and /32 in 10.0.0.0/8, half /56 and /128 in 2001:db8::/32 (v4 and v6
// in separate sets). Each /16 of 10/8 (each /40 of 2001:db8::/32) holds
// either the shorter prefixes or /32s (/128s), never both, so nothing
// overlaps.
func blocklist(n int, seed uint64) (v4, v6 []ruleset.Element) {
	rng := rand.New(rand.NewPCG(seed, seed))
	seen := map[netip.Prefix]bool{}
	for len(v4)+len(v6) < n {
		if rng.IntN(2) == 0 {
			b := rng.IntN(256)
			var p netip.Prefix
			if b%2 == 0 {
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), byte(rng.IntN(256)), 0}), 24)
			} else {
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), byte(rng.IntN(256)), byte(rng.IntN(256))}), 32)
			}
			if !seen[p] {
				seen[p] = true
				v4 = append(v4, ruleset.Element{Prefix: p})
			}
			continue
		}
		var a [16]byte
		a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
		a[4] = byte(rng.IntN(256))
		a[5], a[6] = byte(rng.IntN(256)), byte(rng.IntN(256))
		bits := 56
		if a[4]%2 == 1 {
			bits = 128
			for i := 7; i < 16; i++ {
				a[i] = byte(rng.IntN(256))
			}
		}
		p := netip.PrefixFrom(netip.AddrFrom16(a), bits)
		if !seen[p] {
			seen[p] = true
			v6 = append(v6, ruleset.Element{Prefix: p})
		}
	}
	return v4, v6
}

func blocklistRuleset(n int) *ruleset.Ruleset {
	v4, v6 := blocklist(n, uint64(n))
	return &ruleset.Ruleset{
		Table: "edge",
		Sets: []*ruleset.Set{
			{Name: "block4", Type: ruleset.IPv4Addr, Interval: true, Elements: v4},
			{Name: "block6", Type: ruleset.IPv6Addr, Interval: true, Elements: v6},
		},
		Chains: []*ruleset.Chain{{Name: "input", Hook: ruleset.Input, Type: ruleset.Filter, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
			{ID: "block4", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP, false, "block4")}, Verdict: ruleset.Drop},
			{ID: "block6", Matches: []ruleset.Match{addrSet(ruleset.SAddr, ruleset.IP6, false, "block6")}, Verdict: ruleset.Drop},
		}}},
	}
}

// TestLargeSets applies 10k- and 100k-prefix blocklists and checks that
// the kernel holds every prefix: Apply verifies the counts itself; the
// test also counts the kernel elements by dump and reads every prefix
// back. It then removes one element behind Apply's back to see the
// count check name the set.
func TestLargeSets(t *testing.T) {
	for _, n := range []int{10_000, 100_000} {
		t.Run(fmt.Sprintf("%dk", n/1000), func(t *testing.T) {
			ns := newTestNS(t)
			r := blocklistRuleset(n)
			start := time.Now()
			if err := Apply(ns.conn, r); err != nil {
				t.Fatalf("Apply(%d prefixes): %v", n, err)
			}
			t.Logf("Apply of %d prefixes (%d v4, %d v6) with count check: %v", n, len(r.Sets[0].Elements), len(r.Sets[1].Elements), time.Since(start))
			p, err := prepare(r)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range r.Sets {
				want := p.elems[s.Name]
				if len(want) != len(s.Elements) {
					t.Fatalf("set %s: the generator made %d prefixes, %d distinct", s.Name, len(s.Elements), len(want))
				}
				count, err := ns.conn.countElements("edge", s.Name)
				if err != nil {
					t.Fatal(err)
				}
				if k := len(kernelElements(s, want)); count != k {
					t.Errorf("set %s: %d kernel elements by dump, want %d", s.Name, count, k)
				}
				got, err := ReadSetElements(ns.conn, "edge", s.Name)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("set %s: read back %d prefixes, want %d", s.Name, len(got), len(want))
				}
				for i, e := range got {
					if e.Prefix != want[i].Prefix {
						t.Fatalf("set %s: prefix %d read back as %v, want %v", s.Name, i, e.Prefix, want[i].Prefix)
					}
				}
			}
			if n != 10_000 {
				return
			}
			b, err := build(r, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			victim := r.Sets[1].Elements[0].Prefix
			ns.run(t, "nft", "delete", "element", "inet", "edge", "block6", "{ "+prefixString(victim)+" }")
			if err := ns.conn.verifyCounts(r, b.counts); err == nil || !strings.Contains(err.Error(), "set block6 holds") {
				t.Errorf("verifyCounts after deleting %v = %v, want an error naming set block6", victim, err)
			}
		})
	}
}
