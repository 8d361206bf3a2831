package forward

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/homeedge/edge/internal/config"
)

// section is shaped like edge-dns's: the two parts of this package under
// their keys.
type section struct {
	Upstreams Config      `yaml:"upstreams"`
	Cache     CacheConfig `yaml:"cache"`
}

func (s *section) Validate(c *config.Checker) {
	s.Upstreams.Validate(c.Key("upstreams"))
	s.Cache.Validate(c.Key("cache"))
}

func defaultSection() section {
	return section{Upstreams: DefaultConfig(), Cache: DefaultCacheConfig()}
}

func parse(body string) (*section, error) {
	f, err := config.Parse([]byte("version: 1\nfwd:\n"+body), "edge.yaml", "fwd", defaultSection)
	if err != nil {
		return nil, err
	}
	return &f.Section, nil
}

// The example of the package's documentation, in full.
const fullExample = `  upstreams:
    servers:
      - address: 192.0.2.53:53
      - address: 192.0.2.54:853
        protocol: tls
        server_name: dns.example
      - url: https://dns.example/dns-query
        bootstrap: 192.0.2.55:443
    policy: failover
    race: 2
    timeout: 2s
    ca_file: ""
  cache:
    size: 10000
    min_ttl: 0s
    max_ttl: 1d
    negative_ttl: 1h
    failure_ttl: 5s
    prefetch: {hits: 3, before: 10%}
    serve_stale: {enabled: true, max_stale: 1d, answer_ttl: 30s, client_timeout: 1.8s}
`

func TestConfigExample(t *testing.T) {
	got, err := parse(fullExample)
	if err != nil {
		t.Fatalf("parse(example) error: %v", err)
	}
	want := defaultSection()
	want.Upstreams.Servers = []Server{
		{Address: "192.0.2.53:53"},
		{Address: "192.0.2.54:853", Protocol: ProtoTLS, ServerName: "dns.example"},
		{URL: "https://dns.example/dns-query", Bootstrap: "192.0.2.55:443"},
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("parse(example) mismatch (-want +got):\n%s", diff)
	}
	// What -check prints reads back the same.
	f, err := config.Parse([]byte("version: 1\nfwd:\n"+fullExample), "edge.yaml", "fwd", defaultSection)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := f.Normalized()
	if err != nil {
		t.Fatalf("Normalized() error: %v", err)
	}
	back, err := config.Parse(norm, "normalized.yaml", "fwd", defaultSection)
	if err != nil {
		t.Fatalf("parse(Normalized()) error: %v\n%s", err, norm)
	}
	if diff := cmp.Diff(f.Section, back.Section); diff != "" {
		t.Errorf("parse(Normalized()) mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(norm), "before: 10%") {
		t.Errorf("Normalized() = %s, want prefetch.before written as 10%%", norm)
	}
	// Only the defaults: an empty section is valid.
	if _, err := parse("  {}\n"); err != nil {
		t.Errorf("parse(empty) error: %v", err)
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		in   Server
		want endpoint
	}{
		{Server{Address: "192.0.2.53"}, endpoint{proto: ProtoDNS, name: "192.0.2.53:53", addr: "192.0.2.53:53"}},
		{Server{Address: "2001:db8::53"}, endpoint{proto: ProtoDNS, name: "[2001:db8::53]:53", addr: "[2001:db8::53]:53"}},
		{Server{Address: "[2001:db8::53]:5353"}, endpoint{proto: ProtoDNS, name: "[2001:db8::53]:5353", addr: "[2001:db8::53]:5353"}},
		{Server{Address: "192.0.2.54", Protocol: ProtoTLS}, endpoint{proto: ProtoTLS, name: "tls://192.0.2.54:853", addr: "192.0.2.54:853", serverName: "192.0.2.54"}},
		{Server{Address: "192.0.2.54:8853", Protocol: ProtoTLS, ServerName: "dns.example"},
			endpoint{proto: ProtoTLS, name: "tls://dns.example@192.0.2.54:8853", addr: "192.0.2.54:8853", serverName: "dns.example"}},
		{Server{URL: "https://dns.example/dns-query", Bootstrap: "192.0.2.55"},
			endpoint{proto: ProtoHTTPS, name: "https://dns.example/dns-query", addr: "192.0.2.55:443", serverName: "dns.example", url: "https://dns.example/dns-query", method: "POST"}},
		{Server{URL: "https://dns.example:8443/q", Bootstrap: "192.0.2.55", Method: "GET"},
			endpoint{proto: ProtoHTTPS, name: "https://dns.example:8443/q", addr: "192.0.2.55:8443", serverName: "dns.example", url: "https://dns.example:8443/q", method: "GET"}},
		{Server{URL: "https://192.0.2.56/dns-query", Protocol: ProtoHTTPS},
			endpoint{proto: ProtoHTTPS, name: "https://192.0.2.56/dns-query", addr: "192.0.2.56:443", serverName: "192.0.2.56", url: "https://192.0.2.56/dns-query", method: "POST"}},
	}
	for _, tc := range tests {
		got, err := tc.in.endpoint()
		if err != nil {
			t.Errorf("%+v.endpoint() error: %s: %s", tc.in, err.key, err.msg)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(endpoint{})); diff != "" {
			t.Errorf("%+v.endpoint() mismatch (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		// want are substrings of the error, in order: the key path first.
		want []string
	}{
		{"hostname address", "  upstreams: {servers: [{address: dns.example}]}\n",
			[]string{"fwd.upstreams.servers[0].address", "not an IP address"}},
		{"bad port", "  upstreams: {servers: [{address: \"192.0.2.1:0\"}]}\n",
			[]string{"fwd.upstreams.servers[0].address", "port 0"}},
		{"no address", "  upstreams: {servers: [{protocol: tls}]}\n",
			[]string{"fwd.upstreams.servers[0].address", "required"}},
		{"unknown protocol", "  upstreams: {servers: [{address: 192.0.2.1, protocol: quic}]}\n",
			[]string{"fwd.upstreams.servers[0].protocol", "unknown protocol \"quic\""}},
		{"url without bootstrap", "  upstreams: {servers: [{url: \"https://dns.example/dns-query\"}]}\n",
			[]string{"fwd.upstreams.servers[0].bootstrap", "does not look up"}},
		{"http url", "  upstreams: {servers: [{url: \"http://192.0.2.1/dns-query\"}]}\n",
			[]string{"fwd.upstreams.servers[0].url", "https://host/path"}},
		{"url with tls", "  upstreams: {servers: [{url: \"https://192.0.2.1/q\", protocol: tls}]}\n",
			[]string{"fwd.upstreams.servers[0].url", "for https upstreams"}},
		{"server_name on dns", "  upstreams: {servers: [{address: 192.0.2.1, server_name: x.example}]}\n",
			[]string{"fwd.upstreams.servers[0].server_name", "for tls upstreams"}},
		{"bad method", "  upstreams: {servers: [{url: \"https://192.0.2.1/q\", method: put}]}\n",
			[]string{"fwd.upstreams.servers[0].method", "post or get"}},
		{"duplicate", "  upstreams: {servers: [{address: 192.0.2.1}, {address: \"192.0.2.1:53\"}]}\n",
			[]string{"fwd.upstreams.servers[1]", "already servers[0]"}},
		{"policy", "  upstreams: {policy: random}\n",
			[]string{"fwd.upstreams.policy", "failover, race or round_robin"}},
		{"race", "  upstreams: {race: 0}\n", []string{"fwd.upstreams.race", "at least 1"}},
		{"timeout", "  upstreams: {timeout: 0s}\n", []string{"fwd.upstreams.timeout", "more than 0s"}},
		{"ca_file", "  upstreams: {ca_file: ca.pem}\n", []string{"fwd.upstreams.ca_file", "absolute"}},
		{"size", "  cache: {size: -1}\n", []string{"fwd.cache.size", "0 (no cache) or more"}},
		{"min over max", "  cache: {min_ttl: 2h, max_ttl: 1h}\n", []string{"fwd.cache.min_ttl", "more than max_ttl"}},
		{"failure_ttl", "  cache: {failure_ttl: 10m}\n", []string{"fwd.cache.failure_ttl", "RFC 9520"}},
		{"percent", "  cache: {prefetch: {before: 150%}}\n", []string{"fwd.cache.prefetch.before", "less than 100%"}},
		{"percent text", "  cache: {prefetch: {before: soon}}\n", []string{"fwd.cache.prefetch.before", "percentage"}},
		{"answer_ttl", "  cache: {serve_stale: {answer_ttl: 0s}}\n", []string{"fwd.cache.serve_stale.answer_ttl", "at least 1s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.body)
			if err == nil {
				t.Fatalf("parse(%q) = nil error, want %q", tc.body, tc.want)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("parse(%q) error = %q, want it to contain %q (in order %q)", tc.body, msg, w, tc.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		in   string
		want Percent
		out  string
	}{
		{"10%", 0.1, "10%"},
		{"0.25", 0.25, "25%"},
		{" 5 % ", 0.05, "5%"},
	}
	for _, tc := range tests {
		var p Percent
		if err := p.UnmarshalText([]byte(tc.in)); err != nil {
			t.Errorf("UnmarshalText(%q) error: %v", tc.in, err)
			continue
		}
		if p != tc.want {
			t.Errorf("UnmarshalText(%q) = %v, want %v", tc.in, p, tc.want)
		}
		b, _ := p.MarshalText()
		if string(b) != tc.out {
			t.Errorf("MarshalText(%v) = %q, want %q", p, b, tc.out)
		}
	}
	for _, bad := range []string{"0%", "100%", "1.5", "x"} {
		var p Percent
		if err := p.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, want an error", bad, p)
		}
	}
}

func TestNewSettings(t *testing.T) {
	c := DefaultCacheConfig()
	c.MinTTL = config.Duration(90 * time.Second)
	got := newSettings(c)
	want := &settings{
		size: 10000, minTTL: 90, maxTTL: 86400, negTTL: 3600, failTTL: 5,
		prefetchHits: 3, prefetchBefore: 0.1,
		stale: true, maxStale: 24 * time.Hour, staleTTL: 30, clientTimeout: 1800 * time.Millisecond,
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(settings{})); diff != "" {
		t.Errorf("newSettings(defaults) mismatch (-want +got):\n%s", diff)
	}
}
