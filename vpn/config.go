package vpn

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/config"
)

// Section is the config file's key for edge-vpn.
const Section = "vpn"

// Config is the vpn section.
type Config struct {
	config.Common `yaml:",inline"`
	// WireGuard lists the WireGuard interfaces, each with its pool and
	// its peers.
	WireGuard []Interface `yaml:"wireguard"`
	// Names is where peers are published in DNS.
	Names Names `yaml:"names"`
	// Reconcile is how often the devices are checked against the registry
	// (and expired peers disabled) besides every change.
	Reconcile config.Duration `yaml:"reconcile"`
}

// Interface is one WireGuard interface.
type Interface struct {
	// Interface is the interface's name (wg0).
	Interface  string `yaml:"interface"`
	ListenPort int    `yaml:"listen_port"`
	// Pool is where peers' addresses come from: names of site.networks or
	// prefixes, an IPv4 and/or an IPv6 one. The router takes the first
	// address of each unless Address says otherwise.
	Pool []config.NetRef `yaml:"pool"`
	// Address is the router's addresses on the interface (default: the
	// first address of each pool prefix).
	Address []netip.Addr `yaml:"address"`
	// Endpoint is what clients dial: host:port.
	Endpoint string `yaml:"endpoint"`
	// PrivateKeyFile holds the interface's key (mode 0600); default
	// <state_dir>/vpn/<interface>.key, generated on first start.
	PrivateKeyFile string `yaml:"private_key_file"`
	MTU            int    `yaml:"mtu"`
	FirewallMark   uint32 `yaml:"fwmark"`
	// Userspace forces the embedded wireguard-go even where the kernel has
	// WireGuard.
	Userspace bool `yaml:"userspace"`
	// Client is what client configs get.
	Client Client `yaml:"client"`
	// Access limits where peers may go through the router.
	Access Access `yaml:"access"`
	// Peers are declared in the config (site links, hosts the fleet
	// generator knows); the registry holds the ones added at run time.
	Peers []StaticPeer `yaml:"peers"`
}

// Client is what a client config says.
type Client struct {
	// DNS servers pushed to clients (default: the router's addresses on
	// the interface, where edge-dns answers).
	DNS []netip.Addr `yaml:"dns"`
	// Search domains (default: site.local_domain).
	Search []string `yaml:"search"`
	// AllowedIPs of a split tunnel: networks or prefixes (default: every
	// network of site.networks). A full tunnel sends everything.
	AllowedIPs []config.NetRef `yaml:"allowed_ips"`
	// Keepalive keeps NAT mappings open (default 25s; 0 disables it).
	Keepalive config.Duration `yaml:"keepalive"`
	// MTU written into client configs (0: not written).
	MTU int `yaml:"mtu"`
}

// Access is server-side access control: what peers may reach through the
// router, enforced in nftables table inet edge_vpn whatever the client's
// AllowedIPs say.
type Access struct {
	// Default is what peers without a group may reach: access entries
	// (AccessRef: a network, prefix or address, optionally with services
	// such as "192.168.1.10 tcp/80,443"); empty means no limit here
	// (edge-firewall's vpn zone policies still apply).
	Default []AccessRef `yaml:"default"`
	// Groups name other limits; a peer in a group may reach only those.
	Groups map[string][]AccessRef `yaml:"groups"`
}

// StaticPeer is a peer declared in the config.
type StaticPeer struct {
	Name      string `yaml:"name"`
	PublicKey string `yaml:"public_key"`
	// Addresses are the peer's tunnel addresses (default: allocated from
	// the pool like any peer, and kept in the registry).
	Addresses []netip.Addr `yaml:"addresses"`
	// Routes are networks behind the peer (a site), added to its allowed
	// IPs.
	Routes []config.NetRef `yaml:"routes"`
	// Endpoint, for a peer the router dials (host:port; IP literal).
	Endpoint  string          `yaml:"endpoint"`
	Keepalive config.Duration `yaml:"keepalive"`
	Group     string          `yaml:"group"`
}

// Names publishes peers in DNS through RFC 2136 updates signed with TSIG:
// <peer>.<subdomain>.<zone>, A and AAAA (edge-dns derives the PTRs).
type Names struct {
	// Server is the DNS server to update (empty: names are not published).
	Server string `yaml:"server"`
	// Zone (default site.local_domain) and Subdomain (default vpn).
	Zone      string `yaml:"zone"`
	Subdomain string `yaml:"subdomain"`
	// Key is the TSIG key's name, Secret its base64 secret, or
	// SecretFile a file holding it; Algorithm default hmac-sha256.
	Key        string          `yaml:"key"`
	Secret     config.Secret   `yaml:"secret"`
	SecretFile string          `yaml:"secret_file"`
	Algorithm  string          `yaml:"algorithm"`
	TTL        config.Duration `yaml:"ttl"`
}

// SetDefaults implements config.Defaulter.
func (i *Interface) SetDefaults() {
	i.ListenPort, i.MTU = 51820, 1420
	i.Client.Keepalive = config.Duration(25 * time.Second)
}

// DefaultConfig is the vpn section's defaults.
func DefaultConfig() Config {
	return Config{
		Common:    config.Common{Metrics: config.Metrics{Listen: "127.0.0.1:9712"}},
		Names:     Names{Subdomain: "vpn", Algorithm: "hmac-sha256", TTL: config.Duration(time.Minute)},
		Reconcile: config.Duration(30 * time.Second),
	}
}

// ValidPeerName reports whether s can name a peer: a DNS label of
// lowercase letters, digits and inner hyphens, at most 63 characters.
func ValidPeerName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

const peerNameRule = "use lowercase letters, digits and inner hyphens, at most 63 (it becomes a DNS name)"

// Validate implements config.Validator.
func (c *Config) Validate(v *config.Checker) {
	site := v.Site()
	if site == nil {
		site = &config.Site{}
	}
	ifaces := map[string]int{}
	ports := map[int]int{}
	peerNames := map[string]string{}
	for i := range c.WireGuard {
		w := &c.WireGuard[i]
		wv := v.Key("wireguard").Index(i)
		switch {
		case w.Interface == "" || len(w.Interface) > 15 || strings.ContainsAny(w.Interface, "/ \t\n\"*"):
			wv.Key("interface").Errorf("interface name %q: 1 to 15 characters, no slashes, spaces or quotes", w.Interface)
		default:
			if j, dup := ifaces[w.Interface]; dup {
				wv.Key("interface").Errorf("interface %s is also vpn.wireguard[%d]", w.Interface, j)
			}
			ifaces[w.Interface] = i
		}
		if w.ListenPort < 1 || w.ListenPort > 65535 {
			wv.Key("listen_port").Errorf("must be a port from 1 to 65535, got %d", w.ListenPort)
		} else if j, dup := ports[w.ListenPort]; dup {
			wv.Key("listen_port").Errorf("port %d is also vpn.wireguard[%d]'s", w.ListenPort, j)
		} else {
			ports[w.ListenPort] = i
		}
		v4, v6 := w.poolPrefixes(site)
		pool := append(slices.Clip(v4), v6...)
		if len(w.Pool) == 0 {
			wv.Key("pool").Errorf("missing; name the network peers get addresses from, such as [vpn]")
		}
		for j, ref := range w.Pool {
			ps, ok := ref.Prefixes(site)
			if !ok {
				continue // unknown names are reported by the loader
			}
			for _, p := range ps {
				if p.Addr().Is4() && p.Bits() > 30 || !p.Addr().Is4() && p.Bits() > 126 {
					wv.Key("pool").Index(j).Errorf("pool %s is too small for the router and a peer", p)
				}
			}
		}
		if len(v4) > 1 || len(v6) > 1 {
			wv.Key("pool").Errorf("give at most one IPv4 and one IPv6 prefix, got %d and %d", len(v4), len(v6))
		}
		for j, a := range w.Address {
			if !slices.ContainsFunc(pool, func(p netip.Prefix) bool { return p.Contains(a) }) {
				wv.Key("address").Index(j).Errorf("%s is not in the pool", a)
			}
		}
		if w.Endpoint == "" {
			wv.Key("endpoint").Errorf("missing; write the host:port clients dial, such as vpn.example.net:%d", w.ListenPort)
		} else if err := checkHostPort(w.Endpoint); err != nil {
			wv.Key("endpoint").Errorf("%v", err)
		}
		if w.PrivateKeyFile != "" && !filepath.IsAbs(w.PrivateKeyFile) {
			wv.Key("private_key_file").Errorf("must be an absolute path, got %q", w.PrivateKeyFile)
		}
		if w.MTU < 1280 || w.MTU > 9000 {
			wv.Key("mtu").Errorf("must be from 1280 to 9000, got %d", w.MTU)
		}
		if m := w.Client.MTU; m != 0 && (m < 1280 || m > 9000) {
			wv.Key("client").Key("mtu").Errorf("must be 0 or from 1280 to 9000, got %d", m)
		}
		for j, s := range w.Client.Search {
			if s == "" || strings.ContainsAny(s, " ,\n\t") {
				wv.Key("client").Key("search").Index(j).Errorf("invalid search domain %q", s)
			}
		}
		if k := w.Client.Keepalive.D(); k != 0 && (k < time.Second || k > 65535*time.Second) {
			wv.Key("client").Key("keepalive").Errorf("must be 0 or from 1s to 18h12m15s, got %v", k)
		}
		checkAccess(wv.Key("access").Key("default"), w.Access.Default, site)
		for _, name := range slices.Sorted(maps.Keys(w.Access.Groups)) {
			if !ValidPeerName(name) {
				wv.Key("access").Key("groups").Key(name).Errorf("invalid group name %q; %s", name, peerNameRule)
			}
			checkAccess(wv.Key("access").Key("groups").Key(name), w.Access.Groups[name], site)
		}
		for j := range w.Peers {
			p := &w.Peers[j]
			pv := wv.Key("peers").Index(j)
			if !ValidPeerName(p.Name) {
				pv.Key("name").Errorf("invalid peer name %q; %s", p.Name, peerNameRule)
			} else if prev, dup := peerNames[p.Name]; dup {
				pv.Key("name").Errorf("peer name %q is also %s", p.Name, prev)
			} else {
				peerNames[p.Name] = fmt.Sprintf("vpn.wireguard[%d].peers[%d]", i, j)
			}
			if _, err := parseKey(p.PublicKey); err != nil {
				pv.Key("public_key").Errorf("%v", err)
			}
			for k, a := range p.Addresses {
				i := slices.IndexFunc(pool, func(pp netip.Prefix) bool { return pp.Contains(a) })
				switch {
				case i < 0:
					pv.Key("addresses").Index(k).Errorf("%s is not in the pool", a)
				case a == pool[i].Addr() || a.Is4() && !pool[i].Contains(a.Next()):
					pv.Key("addresses").Index(k).Errorf("%s is the pool's network or broadcast address", a)
				}
			}
			if p.Endpoint != "" {
				if _, err := netip.ParseAddrPort(p.Endpoint); err != nil {
					pv.Key("endpoint").Errorf("endpoint %q: want an IP address and port, such as 198.51.100.7:51820", p.Endpoint)
				}
			}
			if p.Group != "" {
				if _, ok := w.Access.Groups[p.Group]; !ok {
					pv.Key("group").Errorf("unknown group %q; vpn.wireguard[%d].access.groups has %s", p.Group, i, strings.Join(sortedKeys(w.Access.Groups), ", "))
				}
			}
		}
	}
	if n := &c.Names; n.Server != "" {
		nv := v.Key("names")
		if err := checkHostPort(n.Server); err != nil {
			nv.Key("server").Errorf("%v", err)
		}
		if n.Key == "" {
			nv.Key("key").Errorf("missing; name the TSIG key edge-dns accepts updates with")
		}
		if (n.Secret == "") == (n.SecretFile == "") {
			nv.Errorf("give the TSIG secret as secret or secret_file (one of them)")
		}
		if n.Zone == "" && site.LocalDomain == "" {
			nv.Key("zone").Errorf("missing, and site.local_domain is not set either")
		}
		switch strings.ToLower(n.Algorithm) {
		case "hmac-sha256", "hmac-sha512", "hmac-sha1":
		default:
			nv.Key("algorithm").Errorf("unknown algorithm %q; use hmac-sha256, hmac-sha512 or hmac-sha1", n.Algorithm)
		}
		if !ValidPeerName(n.Subdomain) {
			nv.Key("subdomain").Errorf("invalid label %q", n.Subdomain)
		}
	}
	if d := c.Reconcile.D(); d < time.Second || d > time.Hour {
		v.Key("reconcile").Errorf("must be from 1s to 1h, got %v", d)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return []string{"none"}
	}
	return slices.Sorted(maps.Keys(m))
}

// checkHostPort checks a host:port with a host name or address.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (an IPv6 address goes in brackets: [2001:db8::1]:51820)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not from 1 to 65535", s, port)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || strings.ContainsFunc(label, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
		}) {
			return fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
		}
	}
	return nil
}

// poolPrefixes returns the interface's pool, by family.
func (w *Interface) poolPrefixes(site *config.Site) (v4, v6 []netip.Prefix) {
	for _, ref := range w.Pool {
		ps, _ := ref.Prefixes(site)
		for _, p := range ps {
			if p.Addr().Is4() {
				v4 = append(v4, p.Masked())
			} else {
				v6 = append(v6, p.Masked())
			}
		}
	}
	return v4, v6
}
