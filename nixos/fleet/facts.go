package fleet

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/homeedge/edge/identity"
)

// Facts are a host's public facts, machines/<host>/facts.json, read by
// its NixOS config with builtins.fromJSON. Once written they are kept:
// a second run of gen makes only what is missing.
type Facts struct {
	Hostname  string   `json:"hostname"`
	System    string   `json:"system"`
	Roles     []string `json:"roles"`
	MachineID string   `json:"machine_id"`
	HostID    string   `json:"host_id"`
	// SSHHostEd25519Pub is the host key's public half, pinned in every
	// host's known_hosts and the host's age recipient.
	SSHHostEd25519Pub string `json:"ssh_host_ed25519_pub"`
	// Addresses by network name; IPv6 ones under "<network>6".
	Addresses map[string]string `json:"addresses"`
	// WireGuardPub, for routers and laptops.
	WireGuardPub string `json:"wireguard_pub,omitempty"`
	// NebulaCert is the host's Nebula certificate (public), when the
	// fleet has a nebula network.
	NebulaCert string `json:"nebula_cert,omitempty"`
}

// Allocations are every address ever handed out, by network, with the
// host it went to. An address stays here after its host is gone, so it
// is never given to another.
type Allocations map[string]map[string]string

const allocationsFile = "allocations.json"

func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

// marshalJSON is the generator's JSON: indented, keys sorted (maps are
// sorted by encoding/json), a final newline.
func marshalJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // only plain data is marshalled
	}
	return append(b, '\n')
}

// allocate gives each host an address in each of its networks: its
// inventory address, or the one it had, or the lowest never-used one.
func (g *generator) allocate() error {
	for _, netName := range slices.Sorted(maps.Keys(g.inv.Networks)) {
		n := g.inv.Networks[netName]
		owners := g.alloc[netName]
		if owners == nil {
			owners = map[string]string{}
			g.alloc[netName] = owners
		}
		reserved := slices.Clone(n.Reserved)
		for _, r := range n.ReservedRanges {
			rr, _ := parseRange(r, n.Prefix)
			for a := rr[0]; a.IsValid() && !rr[1].Less(a); a = a.Next() {
				reserved = append(reserved, a)
			}
		}
		var taken []netip.Addr
		for a := range owners {
			ad, err := netip.ParseAddr(a)
			if err != nil || !n.Prefix.Contains(ad) {
				return fmt.Errorf("%s: network %s: address %q of %s is not in %s", allocationsFile, netName, a, owners[a], n.Prefix)
			}
			if !slices.Contains(reserved, ad) {
				taken = append(taken, ad)
			}
		}
		sort.Slice(taken, func(i, j int) bool { return taken[i].Less(taken[j]) })
		al, err := identity.NewAllocator(n.Prefix, reserved, taken)
		if err != nil {
			return fmt.Errorf("network %s: %w", netName, err)
		}
		hosts := slices.Sorted(maps.Keys(g.inv.Hosts))
		// Fixed addresses from the inventory first, so that allocation
		// never hands one of them out.
		for _, h := range hosts {
			a, ok := g.inv.Hosts[h].Addresses[netName]
			if !ok {
				continue
			}
			if owner, had := owners[a.String()]; had {
				if owner != h {
					return fmt.Errorf("hosts.%s.addresses.%s: %s belonged to %s; addresses are never reused", h, netName, a, owner)
				}
				continue
			}
			// A reserved address may be given by name (the router's own);
			// the allocator never hands it out either way.
			if !slices.Contains(reserved, a) {
				if err := al.Take(a); err != nil {
					return fmt.Errorf("hosts.%s.addresses.%s: %w", h, netName, err)
				}
			}
			owners[a.String()] = h
		}
		for _, h := range hosts {
			if !slices.Contains(g.inv.Hosts[h].Networks, netName) {
				continue
			}
			f := g.facts[h]
			if cur, ok := f.Addresses[netName]; ok && owners[cur] == h {
				continue
			}
			if a, ok := g.inv.Hosts[h].Addresses[netName]; ok {
				f.Addresses[netName] = a.String()
			} else if cur := ownedBy(owners, h); cur != "" {
				f.Addresses[netName] = cur
			} else {
				a, err := al.Next()
				if err != nil {
					return fmt.Errorf("network %s: %w", netName, err)
				}
				owners[a.String()] = h
				f.Addresses[netName] = a.String()
			}
			if n.IPv6.IsValid() {
				v4 := netip.MustParseAddr(f.Addresses[netName])
				f.Addresses[netName+"6"] = sameHost(n.Prefix, n.IPv6, v4).String()
			}
		}
	}
	return nil
}

// ownedBy is the address host holds in owners (the lowest, if several).
func ownedBy(owners map[string]string, host string) string {
	var out []string
	for a, h := range owners {
		if h == host {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return ""
	}
	slices.SortFunc(out, func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
	return out[0]
}

// sameHost is the IPv6 address with v4's host part in v6.
func sameHost(p4, p6 netip.Prefix, v4 netip.Addr) netip.Addr {
	b4 := v4.As4()
	hostBits := 32 - p4.Bits()
	var host uint32 = uint32(b4[0])<<24 | uint32(b4[1])<<16 | uint32(b4[2])<<8 | uint32(b4[3])
	if hostBits < 32 {
		host &= (1 << hostBits) - 1
	}
	b6 := p6.Masked().Addr().As16()
	b6[12] |= byte(host >> 24)
	b6[13] |= byte(host >> 16)
	b6[14] |= byte(host >> 8)
	b6[15] |= byte(host)
	return netip.AddrFrom16(b6)
}

func factsPath(dir, host string) string { return filepath.Join(dir, "machines", host, "facts.json") }
