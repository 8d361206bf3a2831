package forward

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/config"
)

// Protocol is how edge-dns talks to an upstream.
type Protocol string

// The upstream protocols.
const (
	// ProtoDNS is plain DNS over UDP, retried over TCP when the answer is
	// truncated.
	ProtoDNS Protocol = "dns"
	// ProtoTLS is DNS over TLS (RFC 7858) on persistent, pipelined
	// connections.
	ProtoTLS Protocol = "tls"
	// ProtoHTTPS is DNS over HTTPS (RFC 8484) over HTTP/2.
	ProtoHTTPS Protocol = "https"
)

// Policy says how a query picks its upstreams.
type Policy string

// The upstream policies.
const (
	// PolicyFailover asks the upstreams in order, skipping the ones that
	// are down, and moves on only when one fails.
	PolicyFailover Policy = "failover"
	// PolicyRace sends the query to the first Race healthy upstreams at
	// once; the first good answer wins.
	PolicyRace Policy = "race"
	// PolicyRoundRobin starts each query at the next healthy upstream and
	// fails over from there.
	PolicyRoundRobin Policy = "round_robin"
)

// Config is the dns.upstreams section: where edge-dns forwards the
// questions of inside clients that it cannot answer itself.
type Config struct {
	// Servers are the upstream resolvers, in order of preference.
	Servers []Server `yaml:"servers"`
	// Policy is failover (default), race or round_robin.
	Policy Policy `yaml:"policy"`
	// Race is how many upstreams a race policy asks at once (default 2;
	// more than there are servers means all of them).
	Race int `yaml:"race"`
	// Timeout bounds one attempt at one upstream (default 2s).
	Timeout config.Duration `yaml:"timeout"`
	// CAFile is a PEM file of extra CA certificates trusted for tls and
	// https upstreams, besides the system's (lab and private resolvers).
	CAFile string `yaml:"ca_file,omitempty"`
}

// Server is one upstream resolver. Plain and TLS upstreams are written as
// an IP address; HTTPS upstreams as a URL. Upstreams are never looked up
// by name: the host's own resolver is usually edge-dns itself.
type Server struct {
	// Address is the upstream's IP address with an optional port (53 for
	// dns, 853 for tls), such as 192.0.2.53 or [2001:db8::53]:853.
	Address string `yaml:"address,omitempty"`
	// Protocol is dns, tls or https; empty means https when URL is set and
	// dns otherwise.
	Protocol Protocol `yaml:"protocol,omitempty"`
	// ServerName is the name a tls upstream's certificate must carry;
	// empty means its IP address.
	ServerName string `yaml:"server_name,omitempty"`
	// URL is a DNS over HTTPS endpoint, such as
	// https://dns.example/dns-query.
	URL string `yaml:"url,omitempty"`
	// Bootstrap is the IP address (and optional port) to connect to for
	// URL, so that the upstream's own name needs no lookup. Required when
	// the URL's host is a name.
	Bootstrap string `yaml:"bootstrap,omitempty"`
	// Method is the HTTP method of an https upstream: post (default) or
	// get (cacheable by HTTP caches, RFC 8484 §4.1).
	Method string `yaml:"method,omitempty"`
}

// CacheConfig is the dns.cache section. The cache outlives config
// reloads; a new size applies at once, the TTL rules to new answers.
type CacheConfig struct {
	// Size bounds the number of cached answers (default 10000; 0 turns
	// the cache off).
	Size int `yaml:"size"`
	// MinTTL raises shorter positive TTLs (default 0: keep them).
	MinTTL config.Duration `yaml:"min_ttl"`
	// MaxTTL lowers longer TTLs, positive and negative (default 1d).
	MaxTTL config.Duration `yaml:"max_ttl"`
	// NegativeTTL caps how long NXDOMAIN and NODATA answers are kept
	// (default 1h). Their TTL is min(SOA TTL, SOA minimum) (RFC 2308 §5);
	// 0 turns negative caching off.
	NegativeTTL config.Duration `yaml:"negative_ttl"`
	// FailureTTL is how long a failure to resolve a name (SERVFAIL) is
	// remembered, so that a broken name does not send every retry of
	// every client upstream (RFC 9520: 1s to 5m; default 5s; 0 turns it
	// off).
	FailureTTL config.Duration `yaml:"failure_ttl"`
	// Prefetch refreshes popular answers shortly before they expire.
	Prefetch Prefetch `yaml:"prefetch"`
	// ServeStale answers from expired entries when the upstreams fail or
	// are slow (RFC 8767).
	ServeStale ServeStale `yaml:"serve_stale"`
}

// Prefetch configures refreshing popular entries before they expire, so
// that their clients never wait for the upstream.
type Prefetch struct {
	// Hits is how many times an entry must have been answered from the
	// cache to be refreshed (default 3; 0 turns prefetch off).
	Hits int `yaml:"hits"`
	// Before is the last part of the entry's TTL in which a hit starts the
	// refresh (default 10%).
	Before Percent `yaml:"before"`
}

// ServeStale configures RFC 8767 serve-stale.
type ServeStale struct {
	// Enabled turns serve-stale on (default true).
	Enabled bool `yaml:"enabled"`
	// MaxStale is how long past its expiry an entry may still be served
	// (default 1d; RFC 8767 suggests 1 to 3 days).
	MaxStale config.Duration `yaml:"max_stale"`
	// AnswerTTL is the TTL of stale answers (default 30s, as RFC 8767
	// recommends), so clients come back soon for a fresh one.
	AnswerTTL config.Duration `yaml:"answer_ttl"`
	// ClientTimeout is how long a client waits for the upstream before it
	// gets the stale answer (default 1.8s, RFC 8767's "client response
	// timer"); the refresh goes on in the background.
	ClientTimeout config.Duration `yaml:"client_timeout"`
}

// Percent is a fraction written as "10%" (or 0.1).
type Percent float64

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Percent) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	scale := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = strings.TrimSpace(t), 100
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("write a percentage such as 10%%")
	}
	v /= scale
	if !(v > 0 && v < 1) {
		return fmt.Errorf("must be more than 0%% and less than 100%%")
	}
	*p = Percent(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (p Percent) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(p)*100, 'g', -1, 64) + "%"), nil
}

// SetDefaults fills in the defaults of the upstreams section.
func (c *Config) SetDefaults() {
	c.Policy = PolicyFailover
	c.Race = 2
	c.Timeout = config.Duration(2 * time.Second)
}

// SetDefaults fills in the defaults of the cache section.
func (c *CacheConfig) SetDefaults() {
	*c = CacheConfig{
		Size:        10000,
		MaxTTL:      config.Duration(24 * time.Hour),
		NegativeTTL: config.Duration(time.Hour),
		FailureTTL:  config.Duration(5 * time.Second),
		Prefetch:    Prefetch{Hits: 3, Before: 0.1},
		ServeStale: ServeStale{
			Enabled:       true,
			MaxStale:      config.Duration(24 * time.Hour),
			AnswerTTL:     config.Duration(30 * time.Second),
			ClientTimeout: config.Duration(1800 * time.Millisecond),
		},
	}
}

// DefaultConfig returns the upstreams section's defaults.
func DefaultConfig() Config {
	var c Config
	c.SetDefaults()
	return c
}

// DefaultCacheConfig returns the cache section's defaults.
func DefaultCacheConfig() CacheConfig {
	var c CacheConfig
	c.SetDefaults()
	return c
}

// Validate reports every problem of the upstreams section through c. An
// empty server list is valid here (edge-dns then does not forward), but New
// refuses it.
func (c *Config) Validate(ck *config.Checker) {
	seen := map[string]int{}
	for i := range c.Servers {
		sc := ck.Key("servers").Index(i)
		ep, err := c.Servers[i].endpoint()
		if err != nil {
			sc.Key(err.key).Errorf("%s", err.msg)
			continue
		}
		if j, dup := seen[ep.name]; dup {
			sc.Errorf("upstream %s is already servers[%d]", ep.name, j)
			continue
		}
		seen[ep.name] = i
	}
	switch c.Policy {
	case PolicyFailover, PolicyRace, PolicyRoundRobin:
	default:
		ck.Key("policy").Errorf("unknown policy %q; use failover, race or round_robin", c.Policy)
	}
	if c.Race < 1 {
		ck.Key("race").Errorf("must be at least 1, got %d", c.Race)
	}
	if t := c.Timeout.D(); t <= 0 || t > time.Minute {
		ck.Key("timeout").Errorf("must be more than 0s and at most 1m, got %s", t)
	}
	if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
		ck.Key("ca_file").Errorf("must be an absolute path, got %q", c.CAFile)
	}
}

// Validate reports every problem of the cache section through c.
func (c *CacheConfig) Validate(ck *config.Checker) {
	if c.Size < 0 {
		ck.Key("size").Errorf("must be 0 (no cache) or more, got %d", c.Size)
	}
	if c.MaxTTL.D() < time.Second {
		ck.Key("max_ttl").Errorf("must be at least 1s, got %s", c.MaxTTL.D())
	}
	if c.MinTTL.D() > c.MaxTTL.D() {
		ck.Key("min_ttl").Errorf("%s is more than max_ttl %s", c.MinTTL.D(), c.MaxTTL.D())
	}
	if ft := c.FailureTTL.D(); ft != 0 && (ft < time.Second || ft > 5*time.Minute) {
		ck.Key("failure_ttl").Errorf("must be 0 (off) or 1s to 5m (RFC 9520), got %s", ft)
	}
	if c.Prefetch.Hits < 0 {
		ck.Key("prefetch").Key("hits").Errorf("must be 0 (off) or more, got %d", c.Prefetch.Hits)
	}
	if c.Prefetch.Hits > 0 && !(c.Prefetch.Before > 0 && c.Prefetch.Before < 1) {
		ck.Key("prefetch").Key("before").Errorf("must be more than 0%% and less than 100%%")
	}
	if s := c.ServeStale; s.Enabled {
		sk := ck.Key("serve_stale")
		if s.MaxStale.D() < time.Second {
			sk.Key("max_stale").Errorf("must be at least 1s, got %s", s.MaxStale.D())
		}
		if s.AnswerTTL.D() < time.Second {
			sk.Key("answer_ttl").Errorf("must be at least 1s, got %s", s.AnswerTTL.D())
		}
		if s.ClientTimeout.D() <= 0 {
			sk.Key("client_timeout").Errorf("must be more than 0s, got %s", s.ClientTimeout.D())
		}
	}
}

// endpoint is a server's config resolved into what the transports need.
type endpoint struct {
	proto Protocol
	// name labels the upstream in metrics, logs and status.
	name string
	// addr is the IP:port to connect to.
	addr string
	// serverName is what the certificate must name (tls, https).
	serverName string
	// url and method are for https.
	url    string
	method string
}

type keyError struct{ key, msg string }

func (s *Server) endpoint() (endpoint, *keyError) {
	proto := s.Protocol
	if proto == "" {
		proto = ProtoDNS
		if s.URL != "" {
			proto = ProtoHTTPS
		}
	}
	switch proto {
	case ProtoDNS, ProtoTLS:
		if s.URL != "" {
			return endpoint{}, &keyError{"url", fmt.Sprintf("url is for https upstreams; protocol is %s", proto)}
		}
		if s.Bootstrap != "" {
			return endpoint{}, &keyError{"bootstrap", "bootstrap is for https upstreams; write the IP in address"}
		}
		if s.Method != "" {
			return endpoint{}, &keyError{"method", "method is for https upstreams"}
		}
		if s.Address == "" {
			return endpoint{}, &keyError{"address", "required: the upstream's IP address, such as 192.0.2.53 (or a url for DNS over HTTPS)"}
		}
		port := uint16(53)
		if proto == ProtoTLS {
			port = 853
		}
		ap, err := parseAddrPort(s.Address, port)
		if err != nil {
			return endpoint{}, &keyError{"address", err.Error()}
		}
		ep := endpoint{proto: proto, addr: ap.String()}
		if proto == ProtoDNS {
			if s.ServerName != "" {
				return endpoint{}, &keyError{"server_name", "server_name is for tls upstreams"}
			}
			ep.name = ap.String()
			return ep, nil
		}
		ep.serverName = s.ServerName
		if ep.serverName == "" {
			ep.serverName = ap.Addr().String()
		} else if err := config.CheckDomainName(ep.serverName); err != nil {
			if _, ipErr := netip.ParseAddr(ep.serverName); ipErr != nil {
				return endpoint{}, &keyError{"server_name", err.Error()}
			}
		}
		ep.name = "tls://" + ap.String()
		if s.ServerName != "" {
			ep.name = "tls://" + s.ServerName + "@" + ap.String()
		}
		return ep, nil
	case ProtoHTTPS:
		if s.Address != "" {
			return endpoint{}, &keyError{"address", "https upstreams are written as url (and bootstrap for the address to connect to)"}
		}
		if s.ServerName != "" {
			return endpoint{}, &keyError{"server_name", "an https upstream's certificate must name the url's host; server_name is for tls upstreams"}
		}
		if s.URL == "" {
			return endpoint{}, &keyError{"url", "required: the DNS over HTTPS endpoint, such as https://dns.example/dns-query"}
		}
		u, err := url.Parse(s.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
			return endpoint{}, &keyError{"url", fmt.Sprintf("invalid url %q; write https://host/path, such as https://dns.example/dns-query", s.URL)}
		}
		host := u.Hostname()
		port := uint16(443)
		if p := u.Port(); p != "" {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil || n == 0 {
				return endpoint{}, &keyError{"url", fmt.Sprintf("invalid port %q in url", p)}
			}
			port = uint16(n)
		}
		ep := endpoint{proto: proto, name: s.URL, url: s.URL, serverName: host}
		switch strings.ToLower(s.Method) {
		case "", "post":
			ep.method = "POST"
		case "get":
			ep.method = "GET"
		default:
			return endpoint{}, &keyError{"method", fmt.Sprintf("unknown method %q; use post or get", s.Method)}
		}
		if s.Bootstrap != "" {
			ap, err := parseAddrPort(s.Bootstrap, port)
			if err != nil {
				return endpoint{}, &keyError{"bootstrap", err.Error()}
			}
			ep.addr = ap.String()
			return ep, nil
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return endpoint{}, &keyError{"bootstrap", fmt.Sprintf("required: the url's host %q is a name, and edge-dns does not look up its own upstreams; write its IP address here", host)}
		}
		ep.addr = netip.AddrPortFrom(a.Unmap(), port).String()
		return ep, nil
	default:
		return endpoint{}, &keyError{"protocol", fmt.Sprintf("unknown protocol %q; use dns, tls or https", s.Protocol)}
	}
}

// parseAddrPort reads an IP address with an optional port.
func parseAddrPort(s string, defPort uint16) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("address %q has a zone; use a global or unique local address", s)
		}
		return netip.AddrPortFrom(a.Unmap(), defPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		host, _, splitErr := net.SplitHostPort(s)
		if splitErr != nil {
			host = s
		}
		if _, ipErr := netip.ParseAddr(host); ipErr != nil {
			return netip.AddrPort{}, fmt.Errorf("%q is not an IP address; upstreams are written as IPs (such as 192.0.2.53 or [2001:db8::53]:853) because edge-dns does not look up its own upstreams", s)
		}
		return netip.AddrPort{}, fmt.Errorf("invalid address %q; write an IP with an optional port, such as 192.0.2.53:53", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("port 0 in %q", s)
	}
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("address %q has a zone; use a global or unique local address", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// settings are a CacheConfig turned into the units the hot path uses.
type settings struct {
	size           int
	minTTL, maxTTL uint32
	negTTL         uint32
	failTTL        uint32
	prefetchHits   uint32
	prefetchBefore float64
	stale          bool
	maxStale       time.Duration
	staleTTL       uint32
	clientTimeout  time.Duration
}

func newSettings(c CacheConfig) *settings {
	secs := func(d config.Duration) uint32 {
		return uint32(min(d.D()/time.Second, 1<<31-1))
	}
	s := &settings{
		size:           max(c.Size, 0),
		minTTL:         secs(c.MinTTL),
		maxTTL:         max(secs(c.MaxTTL), 1),
		negTTL:         secs(c.NegativeTTL),
		failTTL:        secs(c.FailureTTL),
		prefetchHits:   uint32(max(c.Prefetch.Hits, 0)),
		prefetchBefore: float64(c.Prefetch.Before),
		stale:          c.ServeStale.Enabled,
		maxStale:       c.ServeStale.MaxStale.D(),
		staleTTL:       max(secs(c.ServeStale.AnswerTTL), 1),
		clientTimeout:  c.ServeStale.ClientTimeout.D(),
	}
	s.minTTL = min(s.minTTL, s.maxTTL)
	return s
}
