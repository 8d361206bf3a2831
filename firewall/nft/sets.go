package nft

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/homeedge/edge/firewall/ruleset"
)

// canonElements returns the elements of s the way the kernel will hold
// them and nft lists them: sorted by key, duplicates removed (the first
// one wins), and in an interval set every prefix or port range that lies
// inside another one dropped, since the kernel refuses overlapping
// intervals. Blocklists gathered from several feeds overlap routinely.
func canonElements(s *ruleset.Set) ([]ruleset.Element, error) {
	out := make([]ruleset.Element, 0, len(s.Elements))
	for _, e := range s.Elements {
		if e.Timeout != 0 && !s.Timeout {
			return nil, fmt.Errorf("element %s has a timeout but the set has no timeout flag", elementKey(s, e))
		}
		if e.Timeout < 0 {
			return nil, fmt.Errorf("element %s: negative timeout", elementKey(s, e))
		}
		if err := checkString("element comment", e.Comment, 128); err != nil {
			return nil, err
		}
		switch s.Type {
		case ruleset.IPv4Addr, ruleset.IPv6Addr:
			p := e.Prefix
			if !p.IsValid() || p.Addr().Is4() != (s.Type == ruleset.IPv4Addr) || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				return nil, fmt.Errorf("element %v is not of type %s", p, s.Type)
			}
			if !s.Interval && p.Bits() != p.Addr().BitLen() {
				return nil, fmt.Errorf("network %v in a set without the interval flag", p)
			}
			e.Prefix = p.Masked()
			e.Port, e.PortEnd = 0, 0
		case ruleset.InetService:
			if e.PortEnd == e.Port {
				e.PortEnd = 0
			}
			if e.PortEnd != 0 && (!s.Interval || e.PortEnd < e.Port) {
				return nil, fmt.Errorf("bad port range %d-%d (ranges need an interval set)", e.Port, e.PortEnd)
			}
			e.Prefix = netip.Prefix{}
		default:
			return nil, fmt.Errorf("unknown set type %q", s.Type)
		}
		out = append(out, e)
	}
	// Sort small keys rather than the 64-byte elements; ties keep the
	// input order so that the first of duplicates wins.
	keys := make([]sortKey, len(out))
	for i, e := range out {
		k := sortKey{idx: int32(i)}
		if s.Type == ruleset.InetService {
			k.lo, k.bits = uint64(e.Port), ^uint64(portEnd(e))
		} else {
			a := e.Prefix.Addr().As16()
			k.hi, k.lo, k.bits = binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint64(e.Prefix.Bits())
		}
		keys[i] = k
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		switch {
		case a.hi != b.hi:
			return cmp.Compare(a.hi, b.hi)
		case a.lo != b.lo:
			return cmp.Compare(a.lo, b.lo)
		case a.bits != b.bits:
			return cmp.Compare(a.bits, b.bits)
		}
		return cmp.Compare(a.idx, b.idx)
	})
	sorted := make([]ruleset.Element, len(out))
	for i, k := range keys {
		sorted[i] = out[k.idx]
	}
	out = sorted
	kept := out[:0]
	for _, e := range out {
		n := len(kept)
		if n == 0 {
			kept = append(kept, e)
			continue
		}
		last := kept[n-1]
		if s.Type == ruleset.InetService {
			if e.Port == last.Port && !s.Interval {
				continue
			}
			if s.Interval && e.Port <= portEnd(last) {
				if portEnd(e) <= portEnd(last) {
					continue
				}
				return nil, fmt.Errorf("port ranges %s and %s overlap", elementKey(s, last), elementKey(s, e))
			}
		} else if last.Prefix.Overlaps(e.Prefix) {
			continue
		}
		kept = append(kept, e)
	}
	return kept, nil
}

func portEnd(e ruleset.Element) uint16 {
	if e.PortEnd == 0 {
		return e.Port
	}
	return e.PortEnd
}

// sortKey orders elements: by address (hi, lo) then prefix length, or
// by port (lo) then widest range first (bits holds the inverted end).
type sortKey struct {
	hi, lo, bits uint64
	idx          int32
}

// elementKey is an element's key as nft prints it.
func elementKey(s *ruleset.Set, e ruleset.Element) string {
	if s.Type == ruleset.InetService {
		if e.PortEnd != 0 && e.PortEnd != e.Port {
			return fmt.Sprintf("%d-%d", e.Port, e.PortEnd)
		}
		return fmt.Sprint(e.Port)
	}
	return prefixString(e.Prefix)
}

// prefixString prints an address without /32 or /128, as nft does.
func prefixString(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

// checkSet checks what Validate leaves to the nft layer.
func checkSet(s *ruleset.Set) error {
	if err := checkName("set", s.Name); err != nil {
		return err
	}
	if s.Dynamic && s.Interval {
		return fmt.Errorf("set %s: a dynamic set cannot have intervals", s.Name)
	}
	if s.Size < 0 {
		return fmt.Errorf("set %s: negative size", s.Name)
	}
	if err := checkString("set comment", s.Comment, 128); err != nil {
		return fmt.Errorf("set %s: %w", s.Name, err)
	}
	return nil
}
