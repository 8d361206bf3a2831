package vpn

import (
	"net/netip"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestAllocate(t *testing.T) {
	pool := []netip.Prefix{netip.MustParsePrefix("10.100.0.0/29"), netip.MustParsePrefix("fd00:100::/64")}
	router := routerAddrs(pool, nil)
	if want := addrs("10.100.0.1", "fd00:100::1"); len(router) != 2 || router[0] != want[0] || router[1] != want[1] {
		t.Fatalf("routerAddrs = %v, want %v", router, want)
	}
	used := map[netip.Addr]string{}
	var got []string
	for i := 0; i < 5; i++ {
		a, err := allocate(pool, router, used)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		for _, x := range a {
			used[x] = "p"
		}
		got = append(got, a[0].String()+" "+a[1].String())
	}
	want := []string{"10.100.0.2 fd00:100::2", "10.100.0.3 fd00:100::3", "10.100.0.4 fd00:100::4", "10.100.0.5 fd00:100::5", "10.100.0.6 fd00:100::6"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("allocations = %v, want %v", got, want)
	}
	// .7 is the broadcast address: the /29 is full.
	if _, err := allocate(pool, router, used); err == nil || !strings.Contains(err.Error(), "address pool 10.100.0.0/29 is full: 5 peers hold its addresses") {
		t.Errorf("allocation from a full pool: %v", err)
	}
	// A freed address is given out again, lowest first.
	delete(used, netip.MustParseAddr("10.100.0.3"))
	if a, err := allocate(pool[:1], router, used); err != nil || a[0].String() != "10.100.0.3" {
		t.Errorf("after freeing .3: %v, %v", a, err)
	}
	// Configured router addresses are skipped wherever they are.
	if a, _ := allocate(pool[:1], addrs("10.100.0.2"), map[netip.Addr]string{}); a[0].String() != "10.100.0.1" {
		t.Errorf("with the router at .2, first peer = %v", a)
	}
}

func TestValidPeerName(t *testing.T) {
	for name, ok := range map[string]bool{
		"laptop": true, "phone-2": true, "a": true, "9lives": true,
		"": false, "-x": false, "x-": false, "Laptop": false, "my_phone": false, "a.b": false, strings.Repeat("a", 64): false,
	} {
		if ValidPeerName(name) != ok {
			t.Errorf("ValidPeerName(%q) = %v, want %v", name, !ok, ok)
		}
	}
}
