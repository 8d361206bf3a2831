// Command benchapply is the Go side of bench/firewall.sh: it writes a
// blocklist ruleset of N random prefixes as an nft -f file, and applies
// the same ruleset through package nft into a network namespace, timing
// each apply.
//
//	benchapply -n 100000 -write FILE
//	benchapply -n 100000 -netns /run/netns/NAME -runs 5
//
// With -netns it prints one line per run ("apply 1 812.4ms") and then
// "median <ms>". Before every run the table is deleted (not timed), so
// each apply loads the whole set into an empty table, as nft -f does in
// the script.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

func main() {
	n := flag.Int("n", 100000, "number of prefixes")
	seed := flag.Uint64("seed", 1, "random seed (the file and the apply must use the same)")
	write := flag.String("write", "", "write the ruleset as an nft -f file to this path")
	netns := flag.String("netns", "", "apply into the network namespace at this path")
	runs := flag.Int("runs", 5, "timed applies")
	flag.Parse()
	if err := run(*n, *seed, *write, *netns, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "benchapply:", err)
		os.Exit(1)
	}
}

func run(n int, seed uint64, write, netns string, runs int) error {
	r := blocklist(n, seed)
	if write != "" {
		text, err := nft.RenderScript(r)
		if err != nil {
			return err
		}
		return os.WriteFile(write, []byte(text), 0o644)
	}
	if netns == "" {
		return fmt.Errorf("give -write FILE or -netns PATH")
	}
	f, err := os.Open(netns)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := nft.Open(int(f.Fd()))
	if err != nil {
		return err
	}
	defer c.Close()
	var times []time.Duration
	for i := range runs {
		if err := nft.Delete(c, r.Table); err != nil {
			return err
		}
		start := time.Now()
		if err := nft.Apply(c, r); err != nil {
			return err
		}
		d := time.Since(start)
		times = append(times, d)
		fmt.Printf("apply %d %.1fms\n", i+1, ms(d))
	}
	slices.Sort(times)
	fmt.Printf("median %.1f\n", ms(times[len(times)/2]))
	return nft.Delete(c, r.Table)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// blocklist is n distinct, non-overlapping prefixes, about half of them
// /24 and /32 in 10.0.0.0/8, half /56 and /128 in 2001:db8::/32. A /16
// of 10/8 (a /40 of 2001:db8::/32) holds only one of the two lengths, so
// nothing overlaps.
func blocklist(n int, seed uint64) *ruleset.Ruleset {
	rng := rand.New(rand.NewPCG(seed, seed))
	seen := map[netip.Prefix]bool{}
	var v4, v6 []ruleset.Element
	for len(v4)+len(v6) < n {
		var p netip.Prefix
		if rng.IntN(2) == 0 {
			b := byte(rng.IntN(256))
			if b%2 == 0 {
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b, byte(rng.IntN(256)), 0}), 24)
			} else {
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b, byte(rng.IntN(256)), byte(rng.IntN(256))}), 32)
			}
		} else {
			a := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}
			bits := 56
			if a[4]%2 == 1 {
				bits = 128
				for i := 7; i < 16; i++ {
					a[i] = byte(rng.IntN(256))
				}
			}
			p = netip.PrefixFrom(netip.AddrFrom16(a), bits)
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		if p.Addr().Is4() {
			v4 = append(v4, ruleset.Element{Prefix: p})
		} else {
			v6 = append(v6, ruleset.Element{Prefix: p})
		}
	}
	return &ruleset.Ruleset{
		Table: "edge",
		Sets: []*ruleset.Set{
			{Name: "blocklist4", Type: ruleset.IPv4Addr, Interval: true, Elements: v4},
			{Name: "blocklist6", Type: ruleset.IPv6Addr, Interval: true, Elements: v6},
		},
		Chains: []*ruleset.Chain{{Name: "input", Hook: ruleset.Input, Type: ruleset.Filter, Policy: ruleset.Accept, Rules: []*ruleset.Rule{
			{ID: "blocklist4", Matches: []ruleset.Match{{Kind: ruleset.SAddr, Family: ruleset.IP, Set: "blocklist4"}}, Counter: true, Verdict: ruleset.Drop},
			{ID: "blocklist6", Matches: []ruleset.Match{{Kind: ruleset.SAddr, Family: ruleset.IP6, Set: "blocklist6"}}, Counter: true, Verdict: ruleset.Drop},
		}}},
	}
}
