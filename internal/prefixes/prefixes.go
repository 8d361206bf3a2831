// Package prefixes orders IP prefixes and drops those another one covers:
// the one order the firewall's compiler, its config checks, the nftables
// library and WireGuard's allowed IPs sort prefixes in, and the filter an
// nft interval set needs (it refuses overlapping elements).
package prefixes

import (
	"net/netip"
	"slices"
)

// Compare orders prefixes by address, then shorter first, so that a
// prefix comes before the prefixes it contains.
func Compare(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// DropCovered sorts ps with Compare, in place, and returns those no
// other prefix contains, each once: what an nft interval set accepts (it
// refuses overlapping elements). Prefixes nest or are disjoint, so
// comparing with the last one kept is enough.
func DropCovered(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, Compare)
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Overlaps(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}
