package config

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestDropCovered(t *testing.T) {
	var ps []netip.Prefix
	for _, s := range []string{"10.1.0.0/16", "10.0.0.0/8", "192.0.2.0/24", "10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "2001:db8:1::/48", "198.51.100.0/24"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	got := fmt.Sprint(DropCovered(ps))
	if want := "[10.0.0.0/8 192.0.2.0/24 198.51.100.0/24 2001:db8::/32]"; got != want {
		t.Errorf("DropCovered = %s, want %s", got, want)
	}
	if got := DropCovered(nil); len(got) != 0 {
		t.Errorf("DropCovered(nil) = %v", got)
	}
}
