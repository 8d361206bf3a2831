// Package dns is edge-dns: authoritative DNS with GeoIP-chosen answers and
// split-horizon views for the site's zones, a forwarding and caching
// resolver for inside clients, RFC 2136 updates and zone transfers. It is
// a library: cmd/edge-dns runs it on internal/daemon.
package dns

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/dns/forward"
	"github.com/homeedge/edge/dns/geoip"
	"github.com/homeedge/edge/dns/rrl"
	"github.com/homeedge/edge/dns/zone"
	"github.com/homeedge/edge/internal/config"
)

// Config is the dns section of the suite's config.
type Config struct {
	config.Common `yaml:",inline"`
	// Listen are the addresses served over UDP and TCP.
	Listen []string `yaml:"listen"`
	// Inside are the networks whose clients may recurse and see inside
	// zones; default every network of site.networks.
	Inside []config.NetRef `yaml:"inside"`
	// Zones are served authoritatively.
	Zones []zone.ZoneConfig `yaml:"zones"`
	// Views override names for the clients they match, in order.
	Views []zone.ViewConfig `yaml:"views"`
	// GeoIP names the MMDB files that geo answers consult.
	GeoIP *geoip.Config `yaml:"geoip"`
	// Upstreams are the resolvers inside clients' other questions go to;
	// without servers, edge-dns answers only its own zones.
	Upstreams forward.Config `yaml:"upstreams"`
	// Cache is the resolver's cache, shared across reloads.
	Cache forward.CacheConfig `yaml:"cache"`
	// Updates configures RFC 2136 dynamic updates.
	Updates UpdatesConfig `yaml:"updates"`
	// Transfers configures zone transfers to secondaries.
	Transfers TransfersConfig `yaml:"transfers"`
	// Limits bound what one client or connection may use.
	Limits LimitsConfig `yaml:"limits"`
	// RRL limits answers to outside clients over UDP (response rate
	// limiting) and their queries per second.
	RRL rrl.Config `yaml:"rrl"`
	// QueryLog logs queries as JSON lines.
	QueryLog QueryLogConfig `yaml:"query_log"`
}

// UpdatesConfig lists the TSIG keys that may change records and where.
type UpdatesConfig struct {
	Keys []KeyConfig `yaml:"keys"`
}

// KeyConfig is a TSIG key (RFC 8945) and what it may update.
type KeyConfig struct {
	// Name is the key's name as clients send it, such as edge-vpn.
	Name string `yaml:"name"`
	// Algorithm is hmac-sha256 (default), hmac-sha384 or hmac-sha512.
	Algorithm string `yaml:"algorithm"`
	// Secret is the base64 secret; SecretFile reads it from a file (the
	// NixOS module passes secrets that way, keeping them out of the store).
	Secret     config.Secret `yaml:"secret"`
	SecretFile string        `yaml:"secret_file"`
	// Zones the key may update; names outside them are refused.
	Zones []string `yaml:"zones"`
}

// TransfersConfig names the secondaries that may transfer zones.
type TransfersConfig struct {
	Secondaries []SecondaryConfig `yaml:"secondaries"`
}

// SecondaryConfig is one secondary server.
type SecondaryConfig struct {
	// Address is where NOTIFY goes, such as 192.0.2.53:53.
	Address string `yaml:"address"`
	// Key is the TSIG key (from updates.keys or transfer-only keys) the
	// secondary signs its requests with; required.
	Key string `yaml:"key"`
	// Zones it may transfer; default every zone.
	Zones []string `yaml:"zones"`
	// Notify sends NOTIFY on every change (default true).
	Notify *bool `yaml:"notify"`
}

// LimitsConfig bounds resource use per client and connection.
type LimitsConfig struct {
	// TCPConnections caps concurrent TCP connections; when they are all
	// open, the one idle longest is closed for a new one.
	TCPConnections int `yaml:"tcp_connections"`
	// TCPPerClient caps the TCP connections of one address; 0 means 16,
	// or TCPConnections when that is fewer.
	TCPPerClient int `yaml:"tcp_per_client"`
	// TCPIdle closes idle TCP connections.
	TCPIdle config.Duration `yaml:"tcp_idle"`
}

// perClient is the TCP connections one address may hold.
func (l LimitsConfig) perClient() int {
	if l.TCPPerClient > 0 {
		return l.TCPPerClient
	}
	return min(16, l.TCPConnections)
}

// DefaultConfig is the dns section's defaults.
func DefaultConfig() Config {
	c := Config{
		Common: config.Common{Metrics: config.Metrics{Listen: "127.0.0.1:9710"}},
		Listen: []string{"0.0.0.0:53", "[::]:53"},
		Limits: LimitsConfig{TCPConnections: 256, TCPIdle: config.Duration(10 * time.Second)},
	}
	c.RRL.SetDefaults()
	c.Upstreams = forward.DefaultConfig()
	c.Cache = forward.DefaultCacheConfig()
	return c
}

// Validate implements config.Validator.
func (c *Config) Validate(v *config.Checker) {
	if len(c.Listen) == 0 {
		v.Key("listen").Errorf("give at least one address to serve")
	}
	for i, l := range c.Listen {
		if _, err := netip.ParseAddrPort(l); err != nil {
			v.Key("listen").Index(i).Errorf("invalid address %q; write host:port such as 0.0.0.0:53 or [::]:53", l)
		}
	}
	for i := range c.Zones {
		c.Zones[i].Validate(v.Key("zones").Index(i))
	}
	for i := range c.Views {
		c.Views[i].Validate(v.Key("views").Index(i))
	}
	keys := map[string]bool{}
	for i := range c.Updates.Keys {
		k := &c.Updates.Keys[i]
		kc := v.Key("updates").Key("keys").Index(i)
		k.validate(kc, c)
		if keys[mdns.Fqdn(k.Name)] {
			kc.Key("name").Errorf("key %q is declared twice", k.Name)
		}
		keys[mdns.Fqdn(k.Name)] = true
	}
	for i, s := range c.Transfers.Secondaries {
		sc := v.Key("transfers").Key("secondaries").Index(i)
		if _, err := netip.ParseAddrPort(s.Address); err != nil {
			sc.Key("address").Errorf("invalid address %q; write host:port such as 192.0.2.53:53", s.Address)
		}
		if !keys[mdns.Fqdn(s.Key)] {
			sc.Key("key").Errorf("unknown key %q; declare it in dns.updates.keys", s.Key)
		}
		c.checkZoneNames(sc.Key("zones"), s.Zones)
	}
	c.RRL.Validate(v.Key("rrl"))
	c.QueryLog.validate(v.Key("query_log"))
	c.Upstreams.Validate(v.Key("upstreams"))
	c.Cache.Validate(v.Key("cache"))
	if c.GeoIP != nil {
		c.GeoIP.Validate(v.Key("geoip"))
	}
	if c.Limits.TCPConnections < 1 {
		v.Key("limits").Key("tcp_connections").Errorf("must be at least 1")
	}
	if c.Limits.TCPPerClient < 0 || c.Limits.TCPPerClient > c.Limits.TCPConnections {
		v.Key("limits").Key("tcp_per_client").Errorf("must be from 1 to tcp_connections (%d), or 0 for the default, got %d", c.Limits.TCPConnections, c.Limits.TCPPerClient)
	}
	if c.Limits.TCPIdle.D() < time.Second {
		v.Key("limits").Key("tcp_idle").Errorf("must be at least 1s")
	}
	if v.Failed() {
		return
	}
	// Problems only a build finds (duplicate names, zone files, view
	// names outside every zone) are config errors too.
	in := c.buildInput(v.Site(), nil)
	// Interfaces are the running router's; a check elsewhere (a NixOS
	// build) does not have them.
	in.InterfaceAddrs = func(string) ([]netip.Addr, error) { return nil, nil }
	if _, err := zone.Build(in); err != nil {
		for _, e := range unjoin(err) {
			if be, ok := e.(*zone.BuildError); ok {
				v.Path(be.Path).Errorf("%v", be.Err)
			} else {
				v.Errorf("%v", e)
			}
		}
	}
}

func (k *KeyConfig) validate(c *config.Checker, cfg *Config) {
	if err := config.CheckDomainName(k.Name); err != nil {
		c.Key("name").Errorf("%v", err)
	}
	if _, ok := tsigAlgorithms[k.Algorithm]; !ok {
		c.Key("algorithm").Errorf("unknown algorithm %q; use hmac-sha256, hmac-sha384 or hmac-sha512", k.Algorithm)
	}
	switch {
	case k.Secret != "" && k.SecretFile != "":
		c.Key("secret").Errorf("give secret or secret_file, not both")
	case k.Secret == "" && k.SecretFile == "":
		c.Errorf("key %q needs secret or secret_file", k.Name)
	case k.Secret != "":
		if _, err := base64.StdEncoding.DecodeString(k.Secret.Reveal()); err != nil {
			c.Key("secret").Errorf("not base64 (generate one with: tsig-keygen -a hmac-sha256, or openssl rand -base64 32)")
		}
	}
	cfg.checkZoneNames(c.Key("zones"), k.Zones)
}

// checkZoneNames reports names that are not zones of the config.
func (c *Config) checkZoneNames(v *config.Checker, names []string) {
	for i, n := range names {
		if !slices.ContainsFunc(c.Zones, func(z zone.ZoneConfig) bool { return zone.Fqdn(z.Name) == zone.Fqdn(n) }) {
			v.Index(i).Errorf("%q is not a zone of dns.zones", n)
		}
	}
}

// SetDefaults implements config.Defaulter for keys.
func (k *KeyConfig) SetDefaults() { k.Algorithm = "hmac-sha256" }

var tsigAlgorithms = map[string]string{
	"hmac-sha256": mdns.HmacSHA256,
	"hmac-sha384": mdns.HmacSHA384,
	"hmac-sha512": mdns.HmacSHA512,
}

// secret returns the key's base64 secret, reading SecretFile if set.
func (k *KeyConfig) secret() (string, error) {
	if k.SecretFile == "" {
		return k.Secret.Reveal(), nil
	}
	b, err := os.ReadFile(k.SecretFile)
	if err != nil {
		return "", fmt.Errorf("tsig key %s: %w", k.Name, err)
	}
	s := strings.TrimSpace(string(b))
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return "", fmt.Errorf("tsig key %s: %s is not base64", k.Name, k.SecretFile)
	}
	return s, nil
}

// insidePrefixes resolves Inside, defaulting to every site network.
func (c *Config) insidePrefixes(site *config.Site) []netip.Prefix {
	var out []netip.Prefix
	if len(c.Inside) == 0 {
		for _, name := range slices.Sorted(maps.Keys(site.Networks)) {
			out = append(out, site.Networks[name]...)
		}
		return out
	}
	for _, ref := range c.Inside {
		p, _ := ref.Prefixes(site)
		out = append(out, p...)
	}
	return out
}

func (c *Config) buildInput(site *config.Site, dynamic []mdns.RR) zone.Input {
	return zone.Input{Site: site, Zones: c.Zones, Views: c.Views, Dynamic: dynamic, Inside: c.insidePrefixes(site)}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
