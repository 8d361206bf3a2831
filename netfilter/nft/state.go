package nft

import (
	"slices"
	"time"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// Counter is a rule's packet and byte count.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// SetElement is a set element as the kernel holds it.
type SetElement struct {
	ruleset.Element
	// Expires is the time the element has left; 0 when it does not
	// expire (Timeout is then 0 too).
	Expires time.Duration
}

// State is what a whole-table replace would lose, read from the live
// table so that Apply can carry it into the new one (see the package
// documentation for exactly what survives).
type State struct {
	// Counters are rule counters by rule ID.
	Counters map[string]Counter
	// Elements are the elements of the live table's timeout sets (ban
	// sets), by set name.
	Elements map[string][]SetElement
}

// carriedElements returns the live elements of set s that Apply re-adds:
// those of a timeout set that the ruleset does not declare itself (the
// ruleset wins for keys it declares) and that have not expired, each
// with the time it has left as its timeout. declared are s's canonical
// elements.
func carriedElements(s *ruleset.Set, declared []ruleset.Element, live []SetElement) []ruleset.Element {
	if !s.Timeout || s.Dynamic || len(live) == 0 {
		return nil
	}
	var out []ruleset.Element
	for _, le := range live {
		e := le.Element
		if e.Timeout != 0 {
			if le.Expires <= 0 {
				continue // expired, not yet collected
			}
			e.Timeout = le.Expires
		}
		switch s.Type {
		case ruleset.IPv4Addr, ruleset.IPv6Addr:
			p := e.Prefix
			if !p.IsValid() || p.Addr().Is4() != (s.Type == ruleset.IPv4Addr) {
				continue
			}
			if !s.Interval && p.Bits() != p.Addr().BitLen() {
				continue
			}
		case ruleset.InetService:
			if e.Prefix.IsValid() || (e.PortEnd != 0 && e.PortEnd != e.Port && !s.Interval) {
				continue
			}
		}
		if overlapsAny(s, declared, e) {
			continue
		}
		out = append(out, e)
	}
	// Live elements never overlap each other, but be safe: the kernel
	// refuses overlapping intervals.
	tmp := *s
	tmp.Elements = out
	canon, err := canonElements(&tmp)
	if err != nil {
		return nil
	}
	return canon
}

// overlapsAny reports whether e overlaps one of elems, which are sorted
// and disjoint (canonElements' output).
func overlapsAny(s *ruleset.Set, elems []ruleset.Element, e ruleset.Element) bool {
	// i is the first element that starts after e.
	i, _ := slices.BinarySearchFunc(elems, e, func(d, e ruleset.Element) int {
		if s.Type == ruleset.InetService {
			if d.Port <= e.Port {
				return -1
			}
			return 1
		}
		if d.Prefix.Addr().Compare(e.Prefix.Addr()) <= 0 {
			return -1
		}
		return 1
	})
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(elems) {
			continue
		}
		d := elems[j]
		if s.Type == ruleset.InetService {
			if e.Port <= portEnd(d) && d.Port <= portEnd(e) {
				return true
			}
		} else if d.Prefix.Overlaps(e.Prefix) {
			return true
		}
	}
	return false
}
