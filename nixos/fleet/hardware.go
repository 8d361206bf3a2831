package fleet

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// hardwareNix is the least hardware-configuration.nix that boots: the
// boot loader for the firmware (five generations kept), the initrd's
// storage modules for the system and disks, the file systems by disk id.
func (g *generator) hardwareNix(h string) string {
	hw := g.inv.Hosts[h].Hardware
	system := g.inv.Hosts[h].System
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("{ config, lib, pkgs, modulesPath, ... }:\n{\n")
	mods := []string{}
	if system == "x86_64-linux" {
		mods = append(mods, "xhci_pci", "ahci", "usbhid", "usb_storage", "sd_mod")
	} else {
		mods = append(mods, "usbhid", "usb_storage")
	}
	nvme := hw.Boot.NVMe
	for _, d := range hw.Data {
		nvme = nvme || d.NVMe
	}
	if nvme {
		mods = append(mods, "nvme")
	}
	if hw.Board == "raspberry-pi-4" {
		mods = append(mods, "vc4", "pcie_brcmstb", "reset-raspberrypi")
	}
	for _, m := range hw.KernelModules {
		if !slices.Contains(mods, m) {
			mods = append(mods, m)
		}
	}
	fmt.Fprintf(&b, "  boot.initrd.availableKernelModules = %s;\n", nixList(mods))
	switch hw.Firmware {
	case "uefi":
		b.WriteString("  boot.loader.systemd-boot.enable = true;\n  boot.loader.systemd-boot.configurationLimit = 5;\n  boot.loader.efi.canTouchEfiVariables = true;\n")
	case "bios":
		fmt.Fprintf(&b, "  boot.loader.grub.enable = true;\n  boot.loader.grub.device = %s;\n  boot.loader.grub.configurationLimit = 5;\n", nixStr("/dev/disk/by-id/"+hw.Boot.ID))
	case "uboot":
		b.WriteString("  boot.loader.grub.enable = false;\n  boot.loader.generic-extlinux-compatible.enable = true;\n  boot.loader.generic-extlinux-compatible.configurationLimit = 5;\n")
	}
	// The boot disk: partition 2 is the root (partition 1 the ESP or
	// firmware partition), as the installer lays it out.
	root := "/dev/disk/by-id/" + hw.Boot.ID + "-part2"
	boot := "/dev/disk/by-id/" + hw.Boot.ID + "-part1"
	fmt.Fprintf(&b, "\n  fileSystems.\"/\" = { device = %s; fsType = %s; };\n", nixStr(root), nixStr(fsOr(hw.Boot.FS)))
	switch hw.Firmware {
	case "uefi":
		fmt.Fprintf(&b, "  fileSystems.\"/boot\" = { device = %s; fsType = \"vfat\"; options = [ \"fmask=0077\" \"dmask=0077\" ]; };\n", nixStr(boot))
	case "uboot":
		fmt.Fprintf(&b, "  fileSystems.\"/boot/firmware\" = { device = %s; fsType = \"vfat\"; options = [ \"nofail\" \"noauto\" ]; };\n", nixStr(boot))
	}
	for _, d := range hw.Data {
		opts := []string{"nofail"}
		if !d.NVMe {
			opts = append(opts, "noatime") // slow disks: no write per read
		}
		fmt.Fprintf(&b, "  fileSystems.%s = { device = %s; fsType = %s; options = %s; };\n", nixStr(d.Mount), nixStr("/dev/disk/by-id/"+d.ID), nixStr(fsOr(d.FS)), nixList(opts))
	}
	for _, n := range hw.NICs {
		fmt.Fprintf(&b, "  # %s: %s, %d Mbit/s\n", n.Name, n.MAC, n.Speed)
	}
	if len(hw.NICs) > 0 {
		b.WriteString("  services.udev.extraRules = ''\n")
		for _, n := range hw.NICs {
			fmt.Fprintf(&b, "    SUBSYSTEM==\"net\", ACTION==\"add\", ATTR{address}==\"%s\", NAME=\"%s\"\n", n.MAC, n.Name)
		}
		b.WriteString("  '';\n")
	}
	fmt.Fprintf(&b, "\n  nixpkgs.hostPlatform = %s;\n", nixStr(system))
	if hw.GPU == "nvidia" && !g.hasRole(h, "vm-host") {
		b.WriteString("  services.xserver.videoDrivers = [ \"nvidia\" ];\n  hardware.nvidia.open = true;\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func fsOr(fs string) string {
	if fs == "" {
		return "ext4"
	}
	return fs
}

// edgeConfig is the router's edge config (JSON, which the daemons read
// with the same strict parser as YAML): the site from the inventory, every
// host's name in edge-dns (split horizon: inside names for inside
// clients), a firewall with wan, lan and vpn zones, and WireGuard peers
// for the laptops.
func (g *generator) edgeConfig(router string) ([]byte, error) {
	hw := g.inv.Hosts[router].Hardware
	ifaces := map[string]string{}
	for _, n := range hw.NICs {
		if n.Role != "" {
			ifaces[n.Role] = n.Name
		}
	}
	networks := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(g.inv.Networks)) {
		n := g.inv.Networks[name]
		ps := []string{n.Prefix.String()}
		if n.IPv6.IsValid() {
			ps = append(ps, n.IPv6.String())
		}
		networks[name] = ps
	}
	type rec struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	var records []rec
	for _, h := range slices.Sorted(maps.Keys(g.inv.Hosts)) {
		f := g.facts[h]
		if a := f.Addresses["lan"]; a != "" {
			records = append(records, rec{h, "A", a})
		}
		if a := f.Addresses["lan6"]; a != "" {
			records = append(records, rec{h, "AAAA", a})
		}
		if a := f.Addresses["nebula"]; a != "" {
			records = append(records, rec{h + ".nebula", "A", a})
		}
	}
	inside := []string{}
	for _, n := range []string{"lan", "vpn", "nebula"} {
		if _, ok := g.inv.Networks[n]; ok {
			inside = append(inside, n)
		}
	}
	var peers []map[string]any
	for _, h := range g.hostsWith("laptop") {
		f := g.facts[h]
		if f.WireGuardPub == "" || f.Addresses["vpn"] == "" {
			continue
		}
		addrs := []string{f.Addresses["vpn"]}
		if a := f.Addresses["vpn6"]; a != "" {
			addrs = append(addrs, a)
		}
		peers = append(peers, map[string]any{"name": h, "public_key": f.WireGuardPub, "addresses": addrs})
	}
	zones := map[string]any{
		"wan": map[string]any{"interfaces": []string{"wan"}, "services": []string{"wireguard", "nebula"}},
		"lan": map[string]any{"interfaces": []string{"lan"}, "networks": []string{"lan"}, "input": "accept", "forward_to": []string{"wan"}},
	}
	cfg := map[string]any{
		"version": 1,
		"site": map[string]any{
			"local_domain": g.inv.LocalDomain,
			"interfaces":   ifaces,
			"networks":     networks,
		},
		"admin":     map[string]any{"socket_dir": "/run/edge", "group": "edge"},
		"state_dir": "/var/lib/edge",
		"dns": map[string]any{
			"listen": []string{"0.0.0.0:53", "[::]:53"},
			"inside": inside,
			"zones":  []any{map[string]any{"name": g.inv.LocalDomain, "records": records}},
		},
		"firewall": map[string]any{"zones": zones, "nat": map[string]any{"masquerade": []string{"wan"}}},
	}
	if g.inv.Domain != "" {
		cfg["site"].(map[string]any)["domain"] = g.inv.Domain
	}
	if _, ok := g.inv.Networks["vpn"]; ok {
		zones["vpn"] = map[string]any{"networks": []string{"vpn"}, "services": []string{"dns", "ssh"}, "forward_to": []string{"lan", "wan"}}
		zones["lan"].(map[string]any)["forward_to"] = []string{"wan", "vpn"}
		wg := map[string]any{"interface": "wg0", "pool": []string{"vpn"}, "endpoint": g.endpoint(),
			"private_key_file": "/run/credentials/edge-vpn.service/wireguard.key"}
		if len(peers) > 0 {
			wg["peers"] = peers
		}
		cfg["vpn"] = map[string]any{"wireguard": []any{wg}}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
