package identity

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Allocator hands out the addresses of one network deterministically: Next
// returns the lowest address that is usable, not reserved and never handed
// out before. An address once handed out stays taken for good, so an
// address is never reused for another host. Its methods are safe for
// concurrent use; make one with NewAllocator.
//
// Usable means every address of the prefix except the network address and,
// for IPv4, the broadcast address. IPv4 /31 and /32 and IPv6 /127 and /128
// have no such exceptions (RFC 3021, RFC 6164). For IPv6 the excluded
// network address is the subnet-router anycast address; IPv6 has no
// broadcast address.
type Allocator struct {
	mu       sync.Mutex
	prefix   netip.Prefix
	first    netip.Addr // lowest usable address
	last     netip.Addr // highest usable address
	reserved map[netip.Addr]bool
	taken    map[netip.Addr]bool
	cursor   netip.Addr // no free address below it
	full     bool       // cursor went past last
}

// NewAllocator makes an Allocator for prefix, which must have no host bits
// set (10.100.0.0/24, not 10.100.0.1/24). reserved are addresses Next must
// not hand out and Take must refuse (the router's, a DHCP range);
// duplicates and the network and broadcast addresses are allowed among
// them. taken is every address ever handed out. An address outside prefix,
// a duplicate in taken, a taken address that is also reserved or that is
// the network or broadcast address is an error naming it.
func NewAllocator(prefix netip.Prefix, reserved []netip.Addr, taken []netip.Addr) (*Allocator, error) {
	if !prefix.IsValid() {
		return nil, fmt.Errorf("allocator: invalid network %v", prefix)
	}
	if prefix.Addr().Zone() != "" || prefix.Addr().Is4In6() {
		return nil, fmt.Errorf("allocator: network %v: use a plain IPv4 or IPv6 prefix", prefix)
	}
	if m := prefix.Masked(); m != prefix {
		return nil, fmt.Errorf("allocator: network %v has host bits set (the network is %v)", prefix, m)
	}
	a := &Allocator{
		prefix:   prefix,
		first:    prefix.Addr(),
		last:     lastAddr(prefix),
		reserved: make(map[netip.Addr]bool, len(reserved)),
		taken:    make(map[netip.Addr]bool, len(taken)),
	}
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	if hostBits >= 2 {
		a.first = a.first.Next()
		if prefix.Addr().Is4() {
			a.last = a.last.Prev()
		}
	}
	for _, r := range reserved {
		if !prefix.Contains(r) {
			return nil, fmt.Errorf("allocator: reserved address %v is outside the network %v", r, prefix)
		}
		a.reserved[r] = true
	}
	for _, t := range taken {
		switch {
		case !prefix.Contains(t):
			return nil, fmt.Errorf("allocator: taken address %v is outside the network %v", t, prefix)
		case a.taken[t]:
			return nil, fmt.Errorf("allocator: taken address %v is listed twice", t)
		case !a.usable(t):
			return nil, fmt.Errorf("allocator: taken address %v is the network or broadcast address of %v", t, prefix)
		case a.reserved[t]:
			return nil, fmt.Errorf("allocator: taken address %v is also reserved", t)
		}
		a.taken[t] = true
	}
	a.cursor = a.first
	return a, nil
}

// Prefix returns the network the Allocator hands out addresses of.
func (a *Allocator) Prefix() netip.Prefix { return a.prefix }

// usable reports whether addr, inside the prefix, may be handed out at all.
func (a *Allocator) usable(addr netip.Addr) bool {
	return addr.Compare(a.first) >= 0 && addr.Compare(a.last) <= 0
}

// Next hands out the lowest free address and marks it taken. When none is
// left the error says "network <prefix> is full".
func (a *Allocator) Next() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for !a.full {
		c := a.cursor
		if c == a.last {
			a.full = true
		} else {
			a.cursor = c.Next()
		}
		if !a.taken[c] && !a.reserved[c] {
			a.taken[c] = true
			return c, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("network %v is full", a.prefix)
}

// Take claims addr, a static address from the inventory, and marks it
// taken. It fails when addr is outside the network, is its network or
// broadcast address, is reserved, or is already taken; naming the owner is
// the caller's job.
func (a *Allocator) Take(addr netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case !a.prefix.Contains(addr):
		return fmt.Errorf("address %v is outside the network %v", addr, a.prefix)
	case !a.usable(addr):
		return fmt.Errorf("address %v is the network or broadcast address of %v", addr, a.prefix)
	case a.reserved[addr]:
		return fmt.Errorf("address %v is reserved", addr)
	case a.taken[addr]:
		return fmt.Errorf("address %v is already taken", addr)
	}
	a.taken[addr] = true
	return nil
}

// Taken returns every address handed out so far, the initial taken ones
// included, in ascending order: what a caller stores to make the next run
// continue where this one stopped.
func (a *Allocator) Taken() []netip.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]netip.Addr, 0, len(a.taken))
	for t := range a.taken {
		out = append(out, t)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// lastAddr returns the highest address of p (for IPv4, the broadcast
// address).
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.Addr().Is4() {
		b := p.Addr().As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

func setHostBits(b []byte, bits int) {
	for i := range b {
		switch {
		case bits >= 8:
			bits -= 8
		case bits > 0:
			b[i] |= 0xff >> bits
			bits = 0
		default:
			b[i] = 0xff
		}
	}
}
