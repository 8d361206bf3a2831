package fleet

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// fleetNix is the module every host imports: admins' keys, pinned host
// keys, node exporter everywhere, the metrics server's scrape list, logs
// to the log server, remote builders, and the garbage collection that
// matches the boot loader's five generations.
func (g *generator) fleetNix() string {
	hosts := slices.Sorted(maps.Keys(g.inv.Hosts))
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("{ config, lib, pkgs, ... }:\nlet\n  hosts = {\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "    %s = builtins.fromJSON (builtins.readFile ./machines/%s/facts.json);\n", nixStr(h), h)
	}
	b.WriteString("  };\n  me = hosts.${config.networking.hostName};\n  has = role: builtins.elem role me.roles;\n")
	logServers := g.hostsWith("log-server")
	builders := g.hostsWith("builder")
	b.WriteString("in\n{\n")
	b.WriteString("  services.openssh.enable = true;\n")
	b.WriteString("  services.openssh.settings.PasswordAuthentication = false;\n")
	fmt.Fprintf(&b, "  users.users.root.openssh.authorizedKeys.keys = %s;\n\n", nixList(g.adminKeys()))
	b.WriteString("  # Every host's key, pinned: no trust on first use inside the fleet.\n  programs.ssh.knownHosts = {\n")
	for _, h := range hosts {
		names := []string{h, h + "." + g.inv.LocalDomain}
		for _, n := range slices.Sorted(maps.Keys(g.facts[h].Addresses)) {
			names = append(names, g.facts[h].Addresses[n])
		}
		fmt.Fprintf(&b, "    %s = { hostNames = %s; publicKey = hosts.%s.ssh_host_ed25519_pub; };\n", nixStr(h), nixList(names), nixStr(h))
	}
	b.WriteString("  };\n\n")
	b.WriteString("  services.prometheus.exporters.node = { enable = true; enabledCollectors = [ \"systemd\" ]; };\n")
	var targets []string
	for _, h := range hosts {
		targets = append(targets, hostPort(g.addr(h), 9100))
	}
	b.WriteString("  services.prometheus.enable = has \"metrics-server\";\n")
	if ms := g.hostsWith("metrics-server"); len(ms) > 0 {
		if o := g.inv.Hosts[ms[0]].Options.MetricsServer; o != nil && o.Retention != "" {
			fmt.Fprintf(&b, "  services.prometheus.retentionTime = %s;\n", nixStr(o.Retention))
		}
	}
	fmt.Fprintf(&b, "  services.prometheus.scrapeConfigs = lib.mkIf (has \"metrics-server\") [\n    { job_name = \"node\"; static_configs = [ { targets = %s; } ]; }\n  ];\n\n", nixList(targets))
	if len(logServers) > 0 {
		fmt.Fprintf(&b, "  services.journald.remote = lib.mkIf (has \"log-server\") { enable = true; listen = \"http\"; };\n")
		fmt.Fprintf(&b, "  services.journald.upload = lib.mkIf (!(has \"log-server\")) {\n    enable = true;\n    settings.Upload.URL = %s;\n  };\n\n", nixStr("http://"+hostPort(g.addr(logServers[0]), 19532)))
	}
	if len(builders) > 0 {
		b.WriteString("  nix.distributedBuilds = !(has \"builder\");\n  nix.buildMachines = lib.optionals (!(has \"builder\")) [\n")
		for _, h := range builders {
			pub := base64.StdEncoding.EncodeToString([]byte(g.facts[h].SSHHostEd25519Pub + "\n"))
			jobs, speed := 4, 2
			if o := g.inv.Hosts[h].Options.Builder; o != nil {
				jobs, speed = cmp.Or(o.MaxJobs, jobs), cmp.Or(o.SpeedFactor, speed)
			}
			fmt.Fprintf(&b, "    { hostName = %s; protocol = \"ssh-ng\"; systems = %s; sshUser = \"root\"; sshKey = \"/etc/ssh/ssh_host_ed25519_key\"; maxJobs = %d; speedFactor = %d; supportedFeatures = [ \"big-parallel\" \"kvm\" ]; publicHostKey = %s; }\n",
				nixStr(g.addr(h)), nixList(builderSystems(g.inv.Hosts[h].System)), jobs, speed, nixStr(pub))
		}
		b.WriteString("  ];\n\n")
	}
	b.WriteString("  # Five generations in the boot menu (hardware-configuration.nix), and no\n  # store paths older than a month, so /boot and the store do not fill up.\n")
	b.WriteString("  nix.gc = { automatic = true; dates = \"weekly\"; options = \"--delete-older-than 30d\"; };\n")
	b.WriteString("  nix.settings.experimental-features = [ \"nix-command\" \"flakes\" ];\n")
	b.WriteString("}\n")
	return b.String()
}

func builderSystems(system string) []string {
	if system == "x86_64-linux" {
		return []string{"x86_64-linux", "i686-linux"}
	}
	return []string{system}
}

func hostPort(addr string, port int) string {
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// machineNix is machines/<host>/default.nix.
func (g *generator) machineNix(h string) string {
	host := g.inv.Hosts[h]
	f := g.facts[h]
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("{ config, lib, pkgs, ... }:\nlet\n  facts = builtins.fromJSON (builtins.readFile ./facts.json);\nin\n{\n")
	b.WriteString("  imports = [ ./hardware-configuration.nix ];\n\n")
	b.WriteString("  networking.hostName = facts.hostname;\n  networking.hostId = facts.host_id;\n")
	fmt.Fprintf(&b, "  networking.domain = %s;\n", nixStr(g.inv.LocalDomain))
	b.WriteString("  environment.etc.\"machine-id\".text = facts.machine_id + \"\\n\";\n")
	params := "\"systemd.machine_id=${facts.machine_id}\""
	if g.hasRole(h, "vm-host") {
		params += " \"intel_iommu=on\" \"amd_iommu=on\" \"iommu=pt\""
	}
	b.WriteString("  boot.kernelParams = [ " + params + " ];\n\n")
	b.WriteString("  # The host key comes with the install (edge-fleet bundle); agenix\n  # decrypts this host's secrets with it.\n")
	b.WriteString("  services.openssh.hostKeys = [ { type = \"ed25519\"; path = \"/etc/ssh/ssh_host_ed25519_key\"; } ];\n")
	b.WriteString("  age.identityPaths = [ \"/etc/ssh/ssh_host_ed25519_key\" ];\n")
	for _, s := range g.secretNames(h)[1:] {
		if s == "nebula.key" {
			// services.nebula runs nebula@fleet as user and group
			// nebula-fleet (the module's nameToId), which must read its key.
			fmt.Fprintf(&b, "  age.secrets.%s = { file = ../../secrets/%s/%s.age; owner = \"nebula-fleet\"; group = \"nebula-fleet\"; mode = \"0400\"; };\n", nixStr(s), h, s)
			continue
		}
		fmt.Fprintf(&b, "  age.secrets.%s.file = ../../secrets/%s/%s.age;\n", nixStr(s), h, s)
	}
	// Static addresses on the lan for everything but the router (whose
	// lan address is its edge config's) and laptops (DHCP).
	if a := f.Addresses["lan"]; a != "" && !g.hasRole(h, "router") && !g.hasRole(h, "laptop") {
		if nic := lanNIC(host); nic != "" {
			lan := g.inv.Networks["lan"]
			fmt.Fprintf(&b, "\n  networking.interfaces.%s.ipv4.addresses = [ { address = facts.addresses.lan; prefixLength = %d; } ];\n", nixStr(nic), lan.Prefix.Bits())
			if gw := g.routerLAN(); gw != "" {
				fmt.Fprintf(&b, "  networking.defaultGateway = %s;\n  networking.nameservers = [ %s ];\n", nixStr(gw), nixStr(gw))
			}
		}
	}
	if g.hasRole(h, "router") {
		b.WriteString(`
  # The router runs the edge daemons with the config edge-fleet wrote.
  services.edge = let edge = builtins.fromJSON (builtins.readFile ./edge.json); in {
    settings = builtins.removeAttrs edge [ "dns" "firewall" "vpn" ];
    dns = { enable = true; settings = edge.dns; };
    firewall = { enable = true; settings = edge.firewall; };
    # The daemon runs as a dynamic user: agenix's file reaches it through
    # systemd's LoadCredential, where edge.json's private_key_file points.
    vpn = { enable = true; settings = edge.vpn; credentials."wireguard.key" = config.age.secrets."wireguard.key".path; };
  };
`)
	}
	if g.hasRole(h, "laptop") && f.Addresses["vpn"] != "" {
		if r := g.hostsWith("router"); len(r) == 1 && g.facts[r[0]].WireGuardPub != "" {
			var allowed []string
			for _, n := range []string{"lan", "vpn"} {
				if net, ok := g.inv.Networks[n]; ok {
					allowed = append(allowed, net.Prefix.String())
				}
			}
			fmt.Fprintf(&b, `
  # Home over WireGuard, through the router.
  networking.wireguard.interfaces.wg0 = {
    ips = [ "${facts.addresses.vpn}/32" ];
    privateKeyFile = config.age.secrets."wireguard.key".path;
    peers = [ {
      publicKey = %s;
      endpoint = %s;
      allowedIPs = %s;
      persistentKeepalive = 25;
    } ];
  };
`, nixStr(g.facts[r[0]].WireGuardPub), nixStr(g.endpoint()), nixList(allowed))
		}
	}
	if f.NebulaCert != "" {
		g.nebulaNix(&b, h)
	}
	g.roleNix(&b, h)
	b.WriteString("\n  system.stateVersion = \"25.05\";\n}\n")
	return b.String()
}

// endpoint is what clients dial to reach the router's WireGuard.
func (g *generator) endpoint() string {
	if g.inv.Domain != "" {
		return "vpn." + g.inv.Domain + ":51820"
	}
	return g.routerLAN() + ":51820"
}

func (g *generator) routerLAN() string {
	if r := g.hostsWith("router"); len(r) == 1 {
		return g.facts[r[0]].Addresses["lan"]
	}
	return ""
}

func lanNIC(h Host) string {
	for _, n := range h.Hardware.NICs {
		if n.Role == "lan" || n.Role == "" {
			return n.Name
		}
	}
	return ""
}

// nebulaNix joins the host to the fleet's Nebula network, the router
// being its lighthouse.
func (g *generator) nebulaNix(b *strings.Builder, h string) {
	routers := g.hostsWith("router")
	lighthouse := ""
	if len(routers) == 1 {
		lighthouse = g.facts[routers[0]].Addresses["nebula"]
	}
	fmt.Fprintf(b, "\n  services.nebula.networks.fleet = {\n    enable = true;\n    ca = ../../nebula/ca.crt;\n    cert = pkgs.writeText \"%s.crt\" facts.nebula_cert;\n    key = config.age.secrets.\"nebula.key\".path;\n", h)
	if g.hasRole(h, "router") {
		b.WriteString("    isLighthouse = true;\n")
	} else if lighthouse != "" {
		public := g.routerLAN()
		if g.inv.Domain != "" {
			public = "vpn." + g.inv.Domain
		}
		fmt.Fprintf(b, "    lighthouses = [ %s ];\n    staticHostMap = { %s = [ %s ]; };\n", nixStr(lighthouse), nixStr(lighthouse), nixStr(public+":4242"))
	}
	b.WriteString("    firewall.outbound = [ { port = \"any\"; proto = \"any\"; host = \"any\"; } ];\n")
	b.WriteString("    firewall.inbound = [ { port = \"any\"; proto = \"icmp\"; host = \"any\"; } { port = 22; proto = \"tcp\"; group = \"laptop\"; } ];\n  };\n")
}

// roleNix adds what each role needs beyond the fleet-wide module.
func (g *generator) roleNix(b *strings.Builder, h string) {
	host := g.inv.Hosts[h]
	for _, r := range host.Roles {
		switch r {
		case "vm-host":
			b.WriteString("\n  virtualisation.libvirtd.enable = true;\n")
			if host.Hardware.GPU != "" {
				fmt.Fprintf(b, "  # The %s GPU goes to guests: keep the host's drivers off it.\n  boot.blacklistedKernelModules = %s;\n", host.Hardware.GPU, nixList(gpuDrivers(host.Hardware.GPU)))
			}
		case "media":
			b.WriteString("\n  services.jellyfin = { enable = true; openFirewall = true; };\n")
		case "builder":
			b.WriteString("\n  nix.settings.trusted-users = [ \"root\" ];\n  nix.settings.system-features = [ \"big-parallel\" \"kvm\" \"nixos-test\" ];\n")
		case "laptop":
			b.WriteString("\n  networking.networkmanager.enable = true;\n")
		}
	}
}

func gpuDrivers(gpu string) []string {
	if gpu == "amd" {
		return []string{"amdgpu", "radeon"}
	}
	return []string{"nouveau", "nvidia", "nvidia_drm", "nvidia_modeset"}
}
