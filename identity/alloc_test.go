package identity

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func nextN(t *testing.T, a *Allocator, n int) []string {
	t.Helper()
	var out []string
	for range n {
		addr, err := a.Next()
		if err != nil {
			t.Fatalf("Next after %v: %v", out, err)
		}
		out = append(out, addr.String())
	}
	return out
}

func TestAllocatorLowestFree(t *testing.T) {
	a, err := NewAllocator(netip.MustParsePrefix("10.100.0.0/24"), addrs("10.100.0.1", "10.100.0.4"), addrs("10.100.0.2", "10.100.0.6"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := nextN(t, a, 3), []string{"10.100.0.3", "10.100.0.5", "10.100.0.7"}; !slices.Equal(got, want) {
		t.Errorf("Next = %v, want %v", got, want)
	}
	if err := a.Take(netip.MustParseAddr("10.100.0.8")); err != nil {
		t.Fatal(err)
	}
	if got, want := nextN(t, a, 1), []string{"10.100.0.9"}; !slices.Equal(got, want) {
		t.Errorf("Next after Take(.8) = %v, want %v", got, want)
	}
	if got, want := a.Taken(), addrs("10.100.0.2", "10.100.0.3", "10.100.0.5", "10.100.0.6", "10.100.0.7", "10.100.0.8", "10.100.0.9"); !slices.Equal(got, want) {
		t.Errorf("Taken = %v, want %v", got, want)
	}
	if a.Prefix() != netip.MustParsePrefix("10.100.0.0/24") {
		t.Errorf("Prefix = %v", a.Prefix())
	}
}

func TestAllocatorNeverReuses(t *testing.T) {
	p := netip.MustParsePrefix("10.100.0.0/24")
	a, _ := NewAllocator(p, nil, nil)
	first := nextN(t, a, 5)
	// A later run starts from the stored Taken list: a host removed from
	// the inventory (10.100.0.2) keeps its address out of circulation.
	taken := a.Taken()
	b, err := NewAllocator(p, nil, taken)
	if err != nil {
		t.Fatal(err)
	}
	next := nextN(t, b, 1)
	if slices.Contains(first, next[0]) || next[0] != "10.100.0.6" {
		t.Errorf("second run handed out %v after %v", next, first)
	}
	// A fresh Allocator only knows what it is told: without the history
	// it would start again at .1.
	c, _ := NewAllocator(p, nil, nil)
	if got := nextN(t, c, 1); got[0] != "10.100.0.1" {
		t.Errorf("fresh allocator starts at %v", got)
	}
}

func TestAllocatorFull(t *testing.T) {
	a, err := NewAllocator(netip.MustParsePrefix("10.100.0.0/29"), addrs("10.100.0.1"), addrs("10.100.0.3"))
	if err != nil {
		t.Fatal(err)
	}
	// Usable: .1-.6; .1 reserved, .3 taken.
	if got, want := nextN(t, a, 4), []string{"10.100.0.2", "10.100.0.4", "10.100.0.5", "10.100.0.6"}; !slices.Equal(got, want) {
		t.Errorf("Next = %v, want %v", got, want)
	}
	for range 2 {
		_, err := a.Next()
		if err == nil || err.Error() != "network 10.100.0.0/29 is full" {
			t.Errorf("Next on a full network: %v", err)
		}
	}
	if err := a.Take(netip.MustParseAddr("10.100.0.7")); err == nil {
		t.Error("Take of the broadcast address succeeded")
	}
}

func TestAllocatorTakeErrors(t *testing.T) {
	a, err := NewAllocator(netip.MustParsePrefix("10.100.0.0/24"), addrs("10.100.0.1"), addrs("10.100.0.10"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, want string }{
		{"10.100.1.5", "outside"},
		{"192.168.0.5", "outside"},
		{"::ffff:10.100.0.5", "outside"},
		{"10.100.0.0", "network or broadcast"},
		{"10.100.0.255", "network or broadcast"},
		{"10.100.0.1", "reserved"},
		{"10.100.0.10", "already taken"},
	} {
		err := a.Take(netip.MustParseAddr(tc.addr))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.addr) {
			t.Errorf("Take(%s) = %v, want an error naming it, with %q", tc.addr, err, tc.want)
		}
	}
	if err := a.Take(netip.Addr{}); err == nil {
		t.Error("Take of the zero Addr succeeded")
	}
	if err := a.Take(netip.MustParseAddr("10.100.0.20")); err != nil {
		t.Fatal(err)
	}
	if err := a.Take(netip.MustParseAddr("10.100.0.20")); err == nil {
		t.Error("second Take of the same address succeeded")
	}
}

func TestNewAllocatorErrors(t *testing.T) {
	p := netip.MustParsePrefix("10.100.0.0/24")
	for _, tc := range []struct {
		name      string
		prefix    netip.Prefix
		reserved  []netip.Addr
		taken     []netip.Addr
		mentioned string
	}{
		{"invalid prefix", netip.Prefix{}, nil, nil, "invalid"},
		{"host bits", netip.MustParsePrefix("10.100.0.1/24"), nil, nil, "10.100.0.0/24"},
		{"taken outside", p, nil, addrs("10.100.1.1"), "10.100.1.1"},
		{"taken twice", p, nil, addrs("10.100.0.5", "10.100.0.7", "10.100.0.5"), "10.100.0.5"},
		{"taken network address", p, nil, addrs("10.100.0.0"), "10.100.0.0"},
		{"taken broadcast", p, nil, addrs("10.100.0.255"), "10.100.0.255"},
		{"taken and reserved", p, addrs("10.100.0.9"), addrs("10.100.0.9"), "10.100.0.9"},
		{"reserved outside", p, addrs("10.101.0.1"), nil, "10.101.0.1"},
		{"taken ipv6 in ipv4 net", p, nil, addrs("fd00::1"), "fd00::1"},
	} {
		_, err := NewAllocator(tc.prefix, tc.reserved, tc.taken)
		if err == nil || !strings.Contains(err.Error(), tc.mentioned) {
			t.Errorf("%s: err = %v, want one naming %s", tc.name, err, tc.mentioned)
		}
	}
	// Reserved duplicates and the network and broadcast addresses are fine.
	if _, err := NewAllocator(p, addrs("10.100.0.1", "10.100.0.1", "10.100.0.0", "10.100.0.255"), nil); err != nil {
		t.Error(err)
	}
}

func TestAllocatorSmallIPv4(t *testing.T) {
	// /31: both addresses usable (RFC 3021).
	a, _ := NewAllocator(netip.MustParsePrefix("10.0.0.0/31"), nil, nil)
	if got, want := nextN(t, a, 2), []string{"10.0.0.0", "10.0.0.1"}; !slices.Equal(got, want) {
		t.Errorf("/31: %v, want %v", got, want)
	}
	if _, err := a.Next(); err == nil || err.Error() != "network 10.0.0.0/31 is full" {
		t.Errorf("/31 full: %v", err)
	}
	// /32: the one address.
	b, _ := NewAllocator(netip.MustParsePrefix("10.0.0.7/32"), nil, nil)
	if got := nextN(t, b, 1); got[0] != "10.0.0.7" {
		t.Errorf("/32: %v", got)
	}
	if _, err := b.Next(); err == nil {
		t.Error("/32 handed out two addresses")
	}
	// /30: two usable.
	c, _ := NewAllocator(netip.MustParsePrefix("10.0.0.4/30"), nil, nil)
	if got, want := nextN(t, c, 2), []string{"10.0.0.5", "10.0.0.6"}; !slices.Equal(got, want) {
		t.Errorf("/30: %v, want %v", got, want)
	}
	if _, err := c.Next(); err == nil {
		t.Error("/30 handed out a third address")
	}
}

func TestAllocatorIPv6(t *testing.T) {
	a, err := NewAllocator(netip.MustParsePrefix("fd00:100::/64"), addrs("fd00:100::1"), addrs("fd00:100::3"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := nextN(t, a, 3), []string{"fd00:100::2", "fd00:100::4", "fd00:100::5"}; !slices.Equal(got, want) {
		t.Errorf("IPv6 /64: %v, want %v", got, want)
	}
	if err := a.Take(netip.MustParseAddr("fd00:100::")); err == nil {
		t.Error("Take of the subnet-router anycast address succeeded")
	}
	// The all-ones address is an ordinary address in IPv6.
	if err := a.Take(netip.MustParseAddr("fd00:100::ffff:ffff:ffff:ffff")); err != nil {
		t.Error(err)
	}
	// /126: no broadcast, so three usable.
	b, _ := NewAllocator(netip.MustParsePrefix("fd00::/126"), nil, nil)
	if got, want := nextN(t, b, 3), []string{"fd00::1", "fd00::2", "fd00::3"}; !slices.Equal(got, want) {
		t.Errorf("IPv6 /126: %v, want %v", got, want)
	}
	if _, err := b.Next(); err == nil || err.Error() != "network fd00::/126 is full" {
		t.Errorf("IPv6 /126 full: %v", err)
	}
	// /127: both (RFC 6164).
	c, _ := NewAllocator(netip.MustParsePrefix("fd00::/127"), nil, nil)
	if got, want := nextN(t, c, 2), []string{"fd00::", "fd00::1"}; !slices.Equal(got, want) {
		t.Errorf("IPv6 /127: %v, want %v", got, want)
	}
	// An IPv4 address is outside an IPv6 network.
	if err := a.Take(netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("IPv4 address taken in an IPv6 network")
	}
}

func TestAllocatorConcurrent(t *testing.T) {
	a, _ := NewAllocator(netip.MustParsePrefix("10.100.0.0/24"), nil, nil)
	var mu sync.Mutex
	seen := map[netip.Addr]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 30 {
				addr, err := a.Next()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[addr] {
					t.Errorf("%v handed out twice", addr)
				}
				seen[addr] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 240 {
		t.Errorf("%d addresses", len(seen))
	}
}
