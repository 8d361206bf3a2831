package prefixes

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

func parse(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"10.0.0.0/8", "10.0.0.0/8", 0},
		{"10.0.0.0/8", "10.0.0.0/16", -1},
		{"10.0.0.0/16", "10.0.0.0/8", 1},
		{"10.0.0.0/8", "9.255.255.255/32", 1},
		{"192.0.2.0/24", "2001:db8::/32", -1},
	} {
		a, b := netip.MustParsePrefix(tc.a), netip.MustParsePrefix(tc.b)
		if got := Compare(a, b); got < 0 != (tc.want < 0) || got > 0 != (tc.want > 0) {
			t.Errorf("Compare(%s, %s) = %d, want the sign of %d", tc.a, tc.b, got, tc.want)
		}
	}
	ps := parse(t, "10.1.0.0/16", "2001:db8::/32", "10.0.0.0/8", "10.1.0.0/24")
	slices.SortFunc(ps, Compare)
	if got, want := fmt.Sprint(ps), "[10.0.0.0/8 10.1.0.0/16 10.1.0.0/24 2001:db8::/32]"; got != want {
		t.Errorf("sorted with Compare = %s, want %s", got, want)
	}
}

func TestDropCovered(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want string
	}{
		{"nested, repeated and disjoint", []string{"10.1.0.0/16", "10.0.0.0/8", "192.0.2.0/24", "10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "2001:db8:1::/48", "198.51.100.0/24"},
			"[10.0.0.0/8 192.0.2.0/24 198.51.100.0/24 2001:db8::/32]"},
		{"none", nil, "[]"},
		{"adjacent stay apart", []string{"10.0.1.0/24", "10.0.0.0/24"}, "[10.0.0.0/24 10.0.1.0/24]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(DropCovered(parse(t, tc.in...))); got != tc.want {
				t.Errorf("DropCovered(%v) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
