package nft

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// canonElements returns the elements of s the way the kernel will hold
// them and nft lists them: sorted by key, duplicates removed (the first
// one wins), and in an interval set every prefix or port range that lies
// inside another one dropped, since the kernel refuses overlapping
// intervals. Blocklists gathered from several feeds overlap routinely.
func canonElements(s *ruleset.Set) ([]ruleset.Element, error) {
	// Check every element and sort small keys rather than the 64-byte
	// elements (a blocklist has 100k of them); ties keep the input order
	// so that the first of duplicates wins.
	keys := make([]sortKey, 0, len(s.Elements))
	for i := range s.Elements {
		e := &s.Elements[i]
		if e.Timeout != 0 && !s.Timeout {
			return nil, fmt.Errorf("element %s has a timeout but the set has no timeout flag", elementKey(s, *e))
		}
		if e.Timeout < 0 {
			return nil, fmt.Errorf("element %s: negative timeout", elementKey(s, *e))
		}
		if e.Comment != "" {
			if err := checkString("element comment", e.Comment, 128); err != nil {
				return nil, err
			}
		}
		k := sortKey{idx: int32(i)}
		switch s.Type {
		case ruleset.IPv4Addr, ruleset.IPv6Addr:
			p := e.Prefix
			if !p.IsValid() || p.Addr().Is4() != (s.Type == ruleset.IPv4Addr) || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				return nil, fmt.Errorf("element %v is not of type %s", p, s.Type)
			}
			if !s.Interval && p.Bits() != p.Addr().BitLen() {
				return nil, fmt.Errorf("network %v in a set without the interval flag", p)
			}
			a := p.Masked().Addr().As16()
			k.hi, k.lo, k.bits = binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint64(p.Bits())
		case ruleset.InetService:
			if e.PortEnd != 0 && e.PortEnd != e.Port && (!s.Interval || e.PortEnd < e.Port) {
				return nil, fmt.Errorf("bad port range %d-%d (ranges need an interval set)", e.Port, e.PortEnd)
			}
			k.lo, k.bits = uint64(e.Port), ^uint64(portEnd(*e))
		default:
			return nil, fmt.Errorf("unknown set type %q", s.Type)
		}
		keys = append(keys, k)
	}
	order := sortOrder(s.Type, keys)
	kept := make([]ruleset.Element, 0, len(keys))
	for _, idx := range order {
		e := s.Elements[idx]
		if s.Type == ruleset.InetService {
			if e.PortEnd == e.Port {
				e.PortEnd = 0
			}
			e.Prefix = netip.Prefix{}
		} else {
			e.Prefix = e.Prefix.Masked()
			e.Port, e.PortEnd = 0, 0
		}
		if n := len(kept); n > 0 {
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

// sortOrder returns the element indexes in key order. IPv4 addresses
// and ports pack into one uint64 with their index, which sorts several
// times faster than a comparison function.
func sortOrder(t ruleset.SetType, keys []sortKey) []int32 {
	order := make([]int32, len(keys))
	if t != ruleset.IPv6Addr && len(keys) < 1<<26 {
		packed := make([]uint64, len(keys))
		for i, k := range keys {
			if t == ruleset.InetService {
				// port, then the widest range first (bits is ^end).
				packed[i] = k.lo<<48 | (k.bits&0xffff)<<32 | uint64(k.idx)
			} else {
				// address (the low 32 bits of lo), then prefix length.
				packed[i] = (k.lo&0xffffffff)<<32 | k.bits<<26 | uint64(k.idx)
			}
		}
		slices.Sort(packed)
		for i, p := range packed {
			order[i] = int32(p & (1<<26 - 1))
		}
		return order
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
	for i, k := range keys {
		order[i] = k.idx
	}
	return order
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

// SetKeys returns the keys of s's elements as the kernel will hold them
// and nft prints them ("10.0.0.0/8", "2001:db8::1", "8000-8010"): sorted,
// without duplicates or intervals that others cover.
func SetKeys(s *ruleset.Set) ([]string, error) {
	elems, err := canonElements(s)
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", s.Name, err)
	}
	keys := make([]string, len(elems))
	for i, e := range elems {
		keys[i] = elementKey(s, e)
	}
	return keys, nil
}
