package nft

import (
	"encoding/binary"
	"time"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// kelem is one element as the kernel stores it: an interval set holds a
// start element and an end element (the first key after the interval,
// flagged INTERVAL_END) per interval.
type kelem struct {
	key     []byte
	end     bool
	timeout time.Duration
	comment string
	// src is the index of the ruleset element it comes from.
	src int
}

// kernelElements encodes elements as the kernel stores them.
func kernelElements(s *ruleset.Set, elems []ruleset.Element) []kelem {
	var out []kelem
	var arena []byte
	for i, e := range elems {
		out = appendKernel(out, s, e, i, &arena)
	}
	return out
}

// appendKernel appends element i's kernel elements to dst: the key, and
// for an interval the end element (the first key after it). Keys are
// carved out of *arena.
func appendKernel(dst []kelem, s *ruleset.Set, e ruleset.Element, i int, arena *[]byte) []kelem {
	key := func(b []byte) []byte {
		*arena = append(*arena, b...)
		a := *arena
		return a[len(a)-len(b) : len(a) : len(a)]
	}
	var start, end []byte
	if s.Type == ruleset.InetService {
		start = key(binary.BigEndian.AppendUint16(nil, e.Port))
		if pe := portEnd(e); s.Interval && pe != 0xffff {
			end = key(binary.BigEndian.AppendUint16(nil, pe+1))
		}
	} else {
		n := addrBits(s) / 8
		var a [16]byte
		raw := e.Prefix.Addr().As16()
		copy(a[:], raw[16-n:])
		start = key(a[:n])
		if s.Interval {
			// The first address after the prefix: set the host bits, add
			// one.
			for b := e.Prefix.Bits(); b < n*8; b++ {
				a[b/8] |= 0x80 >> (b % 8)
			}
			if inc, ok := increment(a[:n]); ok {
				end = key(inc)
			}
		}
	}
	dst = append(dst, kelem{key: start, timeout: e.Timeout, comment: e.Comment, src: i})
	// The kernel refuses a timeout on an end element; when the start
	// expires, garbage collection takes the end with it.
	if end != nil {
		dst = append(dst, kelem{key: end, end: true, src: i})
	}
	return dst
}

// increment returns key+1; false when key is all ones (an interval that
// runs to the end of the key space has no end element).
func increment(key []byte) ([]byte, bool) {
	out := key
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, true
		}
	}
	return nil, false
}

func addrBits(s *ruleset.Set) int {
	if s.Type == ruleset.IPv6Addr {
		return 128
	}
	return 32
}
