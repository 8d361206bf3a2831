// Package fleet is edge-fleet's generator: from an inventory of the home
// fleet (fleet.yaml) it writes the flake that provisions every machine,
// with each host's identity made up front (package identity), private
// material age-encrypted in agenix's layout, and the fleet-wide wiring
// (logs, metrics, builders, known hosts, the router's edge config).
package fleet

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/homeedge/edge/internal/config"
)

// Inventory is fleet.yaml.
type Inventory struct {
	Version int `yaml:"version"`
	// Domain is the public zone; LocalDomain holds inside-only names.
	Domain      string `yaml:"domain"`
	LocalDomain string `yaml:"local_domain"`
	// Networks by name: lan, vpn, nebula, public...
	Networks map[string]Network `yaml:"networks"`
	// Admins' SSH public keys log in everywhere and decrypt every secret.
	Admins []Admin `yaml:"admins"`
	// Hosts by name.
	Hosts map[string]Host `yaml:"hosts"`
}

// Network is a network hosts get addresses in.
type Network struct {
	Prefix netip.Prefix `yaml:"prefix"`
	// IPv6 is the network's IPv6 prefix, if any; hosts get the address
	// with the same host part as their IPv4 one.
	IPv6 netip.Prefix `yaml:"ipv6"`
	// Reserved addresses are never given to hosts (the gateway, a DHCP
	// range's addresses).
	Reserved []netip.Addr `yaml:"reserved"`
	// Ranges reserved in one go: "192.168.1.100-192.168.1.199".
	ReservedRanges []string `yaml:"reserved_ranges"`
}

// Admin is a person with keys to every host.
type Admin struct {
	Name string   `yaml:"name"`
	SSH  []string `yaml:"ssh"`
}

// Host is one machine.
type Host struct {
	// System is aarch64-linux or x86_64-linux.
	System string   `yaml:"system"`
	Roles  []string `yaml:"roles"`
	// Networks the host is in; an address is allocated in each (or given
	// in Addresses).
	Networks  []string              `yaml:"networks"`
	Addresses map[string]netip.Addr `yaml:"addresses"`
	Hardware  Hardware              `yaml:"hardware"`
	// Options are per-role settings.
	Options RoleOptions `yaml:"options"`
}

// Hardware is what hardware-configuration.nix needs.
type Hardware struct {
	// Firmware is uefi, bios or uboot (Raspberry Pi and other U-Boot
	// boards: extlinux).
	Firmware string `yaml:"firmware"`
	Boot     Disk   `yaml:"boot_disk"`
	Data     []Disk `yaml:"data_disks"`
	NICs     []NIC  `yaml:"nics"`
	// KernelModules for the initrd beyond the defaults of the system.
	KernelModules []string `yaml:"kernel_modules"`
	// Board names a known board (raspberry-pi-4) for its quirks.
	Board string `yaml:"board"`
	// GPU is nvidia or amd, for vm-host passthrough or media transcoding.
	GPU string `yaml:"gpu"`
}

// Disk is a disk by its /dev/disk/by-id name.
type Disk struct {
	ID    string `yaml:"id"`
	NVMe  bool   `yaml:"nvme"`
	Mount string `yaml:"mount"`
	// FS is ext4 (default), xfs or btrfs.
	FS string `yaml:"fs"`
}

// NIC is a network interface.
type NIC struct {
	Name  string `yaml:"name"`
	MAC   string `yaml:"mac"`
	Speed int    `yaml:"speed"` // Mbit/s
	// Role on a router: wan or lan.
	Role string `yaml:"role"`
}

// RoleOptions are per-role settings of a host.
type RoleOptions struct {
	Builder       *BuilderOptions `yaml:"builder"`
	MetricsServer *MetricsOptions `yaml:"metrics-server"`
}

// BuilderOptions tune the host as a remote builder (nix.buildMachines).
type BuilderOptions struct {
	MaxJobs     int `yaml:"max_jobs"`
	SpeedFactor int `yaml:"speed_factor"`
}

// MetricsOptions tune the metrics server.
type MetricsOptions struct {
	// Retention is how long Prometheus keeps samples (30d, 12w).
	Retention string `yaml:"retention"`
}

var durationRE = regexp.MustCompile(`^[0-9]+(s|m|h|d|w|y)$`)

// Roles a host may have.
var Roles = []string{"router", "server", "builder", "log-server", "metrics-server", "vm-host", "media", "laptop"}

// Systems a host may have.
var Systems = []string{"aarch64-linux", "x86_64-linux"}

var (
	hostNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	diskIDRE   = regexp.MustCompile(`^[A-Za-z0-9._:+-]+$`)
	macRE      = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
	// nicNameRE is what a kernel interface name may be and what is safe
	// in a udev rule and a Nix string: no space, slash, colon, quote,
	// dollar or newline.
	nicNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)
)

// LoadInventory reads and checks fleet.yaml.
func LoadInventory(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseInventory(data, path)
}

// ParseInventory decodes and checks an inventory; errors name the key
// and line.
func ParseInventory(data []byte, name string) (*Inventory, error) {
	var inv Inventory
	c, err := config.Document(data, name, &inv)
	if err != nil {
		return nil, err
	}
	inv.validate(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return &inv, nil
}

func (inv *Inventory) validate(c *config.Checker) {
	if inv.Version != 1 {
		c.Key("version").Errorf("want version: 1, got %d", inv.Version)
	}
	if inv.LocalDomain == "" {
		c.Key("local_domain").Errorf("missing; the inside domain, such as home.arpa")
	} else if err := config.CheckDomainName(inv.LocalDomain); err != nil {
		c.Key("local_domain").Errorf("%v", err)
	}
	if inv.Domain != "" {
		if err := config.CheckDomainName(inv.Domain); err != nil {
			c.Key("domain").Errorf("%v", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(inv.Networks)) {
		n := inv.Networks[name]
		nc := c.Key("networks").Key(name)
		if !hostNameRE.MatchString(name) {
			nc.Errorf("invalid network name %q", name)
		}
		if !n.Prefix.IsValid() || !n.Prefix.Addr().Is4() {
			nc.Key("prefix").Errorf("missing or not IPv4; write a prefix such as 192.168.1.0/24")
		} else if n.Prefix != n.Prefix.Masked() {
			nc.Key("prefix").Errorf("%s has host bits set; did you mean %s?", n.Prefix, n.Prefix.Masked())
		}
		if n.IPv6.IsValid() && (n.IPv6.Addr().Is4() || n.IPv6.Bits() > 120 || n.IPv6 != n.IPv6.Masked()) {
			nc.Key("ipv6").Errorf("%s: want an IPv6 prefix of at most /120 without host bits", n.IPv6)
		}
		for i, a := range n.Reserved {
			if !n.Prefix.Contains(a) {
				nc.Key("reserved").Index(i).Errorf("%s is not in %s", a, n.Prefix)
			}
		}
		for i, r := range n.ReservedRanges {
			if _, err := parseRange(r, n.Prefix); err != nil {
				nc.Key("reserved_ranges").Index(i).Errorf("%v", err)
			}
		}
		for _, other := range slices.Sorted(maps.Keys(inv.Networks)) {
			if other < name && inv.Networks[other].Prefix.Overlaps(n.Prefix) {
				nc.Key("prefix").Errorf("%s overlaps network %s (%s)", n.Prefix, other, inv.Networks[other].Prefix)
			}
		}
	}
	if len(inv.Admins) == 0 {
		c.Key("admins").Errorf("missing; at least one admin's SSH key opens every host and decrypts every secret")
	}
	for i, a := range inv.Admins {
		ac := c.Key("admins").Index(i)
		if a.Name == "" {
			ac.Key("name").Errorf("missing")
		}
		if len(a.SSH) == 0 {
			ac.Key("ssh").Errorf("missing; give the admin's SSH public key (ssh-ed25519 AAAA...)")
		}
		for j, k := range a.SSH {
			if err := checkSSHPublic(k); err != nil {
				ac.Key("ssh").Index(j).Errorf("%v", err)
			}
		}
	}
	if len(inv.Hosts) == 0 {
		c.Key("hosts").Errorf("missing; list the fleet's machines")
	}
	routers := 0
	macs, fixed := map[string]string{}, map[netip.Addr]string{}
	for _, name := range slices.Sorted(maps.Keys(inv.Hosts)) {
		h := inv.Hosts[name]
		hc := c.Key("hosts").Key(name)
		if !hostNameRE.MatchString(name) {
			hc.Errorf("invalid host name %q; use lowercase letters, digits and hyphens (it is the hostname)", name)
		}
		if !slices.Contains(Systems, h.System) {
			hc.Key("system").Errorf("unknown system %q; use %s", h.System, strings.Join(Systems, " or "))
		}
		if len(h.Roles) == 0 {
			hc.Key("roles").Errorf("missing; give at least one of %s", strings.Join(Roles, ", "))
		}
		for i, r := range h.Roles {
			if !slices.Contains(Roles, r) {
				hc.Key("roles").Index(i).Errorf("unknown role %q%s; roles are %s", r, config.DidYouMean(r, Roles), strings.Join(Roles, ", "))
			}
			if r == "router" {
				routers++
			}
		}
		for i, n := range h.Networks {
			if _, ok := inv.Networks[n]; !ok {
				hc.Key("networks").Index(i).Errorf("unknown network %q; networks has %s", n, strings.Join(slices.Sorted(maps.Keys(inv.Networks)), ", "))
			}
		}
		for n, a := range h.Addresses {
			net, ok := inv.Networks[n]
			switch {
			case !ok:
				hc.Key("addresses").Key(n).Errorf("unknown network %q", n)
			case !slices.Contains(h.Networks, n):
				hc.Key("addresses").Key(n).Errorf("the host is not in network %s; add it to networks", n)
			case !net.Prefix.Contains(a):
				hc.Key("addresses").Key(n).Errorf("%s is not in %s (%s)", a, n, net.Prefix)
			case fixed[a] != "":
				hc.Key("addresses").Key(n).Errorf("%s is also %s's address; give each host its own", a, fixed[a])
			default:
				fixed[a] = name
			}
		}
		hw := hc.Key("hardware")
		switch h.Hardware.Firmware {
		case "uefi", "bios", "uboot":
		default:
			hw.Key("firmware").Errorf("unknown firmware %q; use uefi, bios or uboot", h.Hardware.Firmware)
		}
		if h.Hardware.Boot.ID == "" {
			hw.Key("boot_disk").Key("id").Errorf("missing; the boot disk's name under /dev/disk/by-id")
		}
		mounts, disks := map[string]int{}, map[string]string{}
		for i, d := range append([]Disk{h.Hardware.Boot}, h.Hardware.Data...) {
			dc := hw.Key("boot_disk")
			what := "the boot disk"
			if i > 0 {
				dc = hw.Key("data_disks").Index(i - 1)
				what = fmt.Sprintf("data_disks[%d]", i-1)
				mount := path.Clean(d.Mount)
				switch {
				case !strings.HasPrefix(d.Mount, "/"):
					dc.Key("mount").Errorf("missing or relative; where the disk is mounted, such as /data")
				case mount == "/" || mount == "/boot" || strings.HasPrefix(mount, "/boot/") || mount == "/nix" || strings.HasPrefix(mount, "/nix/"):
					dc.Key("mount").Errorf("%s is the boot disk's; mount a data disk elsewhere, such as /data", d.Mount)
				case strings.ContainsAny(d.Mount, " \t\n\"'$`\\"):
					dc.Key("mount").Errorf("mount %q has a space, quote, dollar or backslash; use a plain path", d.Mount)
				default:
					if j, dup := mounts[mount]; dup {
						dc.Key("mount").Errorf("%s is also the mount of data_disks[%d]; one disk a mount point", d.Mount, j)
					}
					mounts[mount] = i - 1
				}
			}
			if d.ID != "" {
				if prev, dup := disks[d.ID]; dup {
					dc.Key("id").Errorf("disk %s is %s already; list each disk once", d.ID, prev)
				}
				disks[d.ID] = what
			}
			if d.ID != "" && !diskIDRE.MatchString(d.ID) {
				dc.Key("id").Errorf("invalid disk id %q", d.ID)
			}
			switch d.FS {
			case "", "ext4", "xfs", "btrfs":
			default:
				dc.Key("fs").Errorf("unknown file system %q; use ext4, xfs or btrfs", d.FS)
			}
		}
		names := map[string]int{}
		for i, nic := range h.Hardware.NICs {
			nc := hw.Key("nics").Index(i)
			if !nicNameRE.MatchString(nic.Name) {
				nc.Key("name").Errorf("invalid interface name %q; want 1 to 15 letters, digits, '_', '.' or '-', starting with a letter or digit", nic.Name)
			} else if j, dup := names[nic.Name]; dup {
				nc.Key("name").Errorf("%s is also the name of nics[%d]", nic.Name, j)
			} else {
				names[nic.Name] = i
			}
			if !macRE.MatchString(nic.MAC) {
				nc.Key("mac").Errorf("invalid MAC %q; write it as aa:bb:cc:dd:ee:ff", nic.MAC)
			} else if prev, dup := macs[nic.MAC]; dup {
				nc.Key("mac").Errorf("MAC %s is also %s's; every interface has its own", nic.MAC, prev)
			} else {
				macs[nic.MAC] = fmt.Sprintf("hosts.%s.hardware.nics[%d]", name, i)
			}
			if nic.Speed < 0 {
				nc.Key("speed").Errorf("want the link speed in Mbit/s (0 if unknown), got %d", nic.Speed)
			}
			switch nic.Role {
			case "", "wan", "lan":
			default:
				nc.Key("role").Errorf("unknown role %q; use wan or lan", nic.Role)
			}
		}
		if slices.Contains(h.Roles, "router") {
			if !hasNIC(h, "wan") || !hasNIC(h, "lan") {
				hw.Key("nics").Errorf("a router needs a nic with role wan and one with role lan")
			}
		}
		if o := h.Options.Builder; o != nil {
			oc := hc.Key("options").Key("builder")
			if !slices.Contains(h.Roles, "builder") {
				oc.Errorf("builder options, but the host does not have role builder")
			}
			if o.MaxJobs < 0 || o.MaxJobs > 1024 {
				oc.Key("max_jobs").Errorf("want 0 (default 4) to 1024, got %d", o.MaxJobs)
			}
			if o.SpeedFactor < 0 || o.SpeedFactor > 1024 {
				oc.Key("speed_factor").Errorf("want 0 (default 2) to 1024, got %d", o.SpeedFactor)
			}
		}
		if o := h.Options.MetricsServer; o != nil {
			oc := hc.Key("options").Key("metrics-server")
			if !slices.Contains(h.Roles, "metrics-server") {
				oc.Errorf("metrics-server options, but the host does not have role metrics-server")
			}
			if o.Retention != "" && !durationRE.MatchString(o.Retention) {
				oc.Key("retention").Errorf("want a duration such as 30d or 12w, got %q", o.Retention)
			}
		}
	}
	if routers > 1 {
		c.Key("hosts").Errorf("%d hosts have role router; the fleet has one", routers)
	}
}

func hasNIC(h Host, role string) bool {
	return slices.ContainsFunc(h.Hardware.NICs, func(n NIC) bool { return n.Role == role })
}

// parseRange reads "a-b" inside p.
func parseRange(s string, p netip.Prefix) ([2]netip.Addr, error) {
	a, b, ok := strings.Cut(s, "-")
	from, err1 := netip.ParseAddr(strings.TrimSpace(a))
	to, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || to.Less(from) {
		return [2]netip.Addr{}, fmt.Errorf("range %q: write FIRST-LAST, such as 192.168.1.100-192.168.1.199", s)
	}
	if !p.Contains(from) || !p.Contains(to) {
		return [2]netip.Addr{}, fmt.Errorf("range %s is not inside %s", s, p)
	}
	return [2]netip.Addr{from, to}, nil
}

func checkSSHPublic(k string) error {
	f := strings.Fields(k)
	if len(f) < 2 || (f[0] != "ssh-ed25519" && f[0] != "ssh-rsa") {
		return fmt.Errorf("want an SSH public key such as \"ssh-ed25519 AAAA... name\"")
	}
	return nil
}
