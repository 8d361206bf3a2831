package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// testSection is a daemon section shaped like the real ones.
type testSection struct {
	Common `yaml:",inline"`
	Name   string            `yaml:"name"`
	TTL    Duration          `yaml:"ttl"`
	Count  int               `yaml:"count"`
	Port   uint16            `yaml:"port"`
	Ratio  float64           `yaml:"ratio"`
	On     bool              `yaml:"on"`
	From   []NetRef          `yaml:"from"`
	Items  []testItem        `yaml:"items"`
	Tags   map[string]string `yaml:"tags"`
	Addr   netip.Addr        `yaml:"addr"`
	Opt    *testItem         `yaml:"opt"`
}

type testItem struct {
	Name   string `yaml:"name"`
	Weight int    `yaml:"weight"`
}

func (i *testItem) SetDefaults() { i.Weight = 1 }

func (s *testSection) Validate(c *Checker) {
	seen := map[string]bool{}
	for i, it := range s.Items {
		if seen[it.Name] {
			c.Key("items").Index(i).Key("name").Errorf("duplicate name %q", it.Name)
		}
		seen[it.Name] = true
	}
}

func defaults() testSection {
	return testSection{Common: Common{Metrics: Metrics{Listen: "127.0.0.1:9799"}}, Count: 3}
}

const good = `version: 1
site:
  domain: example.net
  local_domain: home.arpa
  interfaces: {wan: eth0, lan: br-lan}
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
    vpn: [10.100.0.0/24]
admin: {socket_dir: /run/edge, group: edge}
state_dir: /var/lib/edge
dns: {anything: goes}
testd:
  name: alpha
  ttl: 7d
  port: 53
  ratio: 0.5
  on: true
  from: [lan, 10.9.0.0/16, 192.0.2.7]
  items:
    - name: a
    - {name: b, weight: 5}
  tags: {x: "1"}
  addr: 192.0.2.1
  opt: {name: c}
`

func TestParseGood(t *testing.T) {
	f, err := Parse([]byte(good), "edge.yaml", "testd", defaults)
	if err != nil {
		t.Fatalf("Parse(good) error: %v", err)
	}
	want := testSection{
		Common: Common{Metrics: Metrics{Listen: "127.0.0.1:9799"}, ShutdownTimeout: DefaultShutdownTimeout},
		Name:   "alpha", TTL: Duration(7 * 24 * time.Hour), Count: 3, Port: 53, Ratio: 0.5, On: true,
		From:  []NetRef{"lan", "10.9.0.0/16", "192.0.2.7"},
		Items: []testItem{{"a", 1}, {"b", 5}},
		Tags:  map[string]string{"x": "1"},
		Addr:  netip.MustParseAddr("192.0.2.1"),
		Opt:   &testItem{"c", 1},
	}
	if diff := cmp.Diff(want, f.Section, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Parse(good) section mismatch (-want +got):\n%s", diff)
	}
	if got := f.Site.Networks["lan"][1]; got != netip.MustParsePrefix("fd00:1::/64") {
		t.Errorf("site.networks.lan[1] = %v, want fd00:1::/64", got)
	}
	if got := f.SocketPath("testd"); got != "/run/edge/testd.sock" {
		t.Errorf("SocketPath = %q, want /run/edge/testd.sock", got)
	}
	if p, ok := NetRef("lan").Prefixes(&f.Site); !ok || len(p) != 2 {
		t.Errorf("NetRef(lan).Prefixes = %v, %v; want 2 prefixes", p, ok)
	}
}

// TestParseJSON checks that the JSON that Nix writes reads the same as YAML.
func TestParseJSON(t *testing.T) {
	js := `{"version": 1, "site": {"domain": "example.net", "networks": {"lan": ["192.168.1.0/24"]}},
 "testd": {"name": "alpha", "ttl": "30s", "items": [{"name": "a"}], "from": ["lan"]}}`
	f, err := Parse([]byte(js), "edge.json", "testd", defaults)
	if err != nil {
		t.Fatalf("Parse(json) error: %v", err)
	}
	if f.Section.TTL.D() != 30*time.Second || f.Section.Items[0].Weight != 1 {
		t.Errorf("Parse(json) = %+v, want ttl 30s and item weight defaulted to 1", f.Section)
	}
	_, err = Parse([]byte("{\"version\": 1,\n \"testd\": {\"nmae\": \"x\"}}"), "edge.json", "testd", defaults)
	if err == nil || !strings.Contains(err.Error(), `edge.json:2:12: testd.nmae: unknown key "nmae" (did you mean "name"?)`) {
		t.Errorf("Parse(json with unknown key) error = %v, want it to name line 2 and testd.nmae", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings, one per expected error, in order
	}{
		{"unknown key", "version: 1\ntestd:\n  nmae: x\n", []string{`edge.yaml:3:3: testd.nmae: unknown key "nmae" (did you mean "name"?)`}},
		{"unknown top key", "version: 1\nfirewal: {}\n", []string{`edge.yaml:2:1: firewal: unknown key "firewal" (did you mean "firewall"?)`}},
		{"unknown key far from any", "version: 1\ntestd: {zzzzzzzz: 1}\n", []string{"known keys: addr, count, from, items, metrics, name"}},
		{"missing version", "site: {}\n", []string{"version: missing; put \"version: 1\""}},
		{"wrong version", "version: 2\n", []string{"edge.yaml:1:10: version: unsupported version 2; this build reads version 1"}},
		{"wrong type string", "version: 1\ntestd: {name: 12}\n", []string{`testd.name: expected a string, got the integer 12 (write "12" in quotes for text)`}},
		{"wrong type int", "version: 1\ntestd: {count: many}\n", []string{`testd.count: expected an integer, got the string "many"`}},
		{"int range", "version: 1\ntestd: {port: 70000}\n", []string{"testd.port: integer 70000 out of range for this key (0 to 65535)"}},
		{"bad duration", "version: 1\ntestd: {ttl: 30}\n", []string{`testd.ttl: invalid value "30": duration "30" has no unit; write it with one, such as 30s`}},
		{"duration no unit", "version: 1\ntestd: {ttl: \"30\"}\n", []string{`duration "30" has no unit`}},
		{"bad addr", "version: 1\ntestd: {addr: 300.1.1.1}\n", []string{`testd.addr: invalid value "300.1.1.1"`}},
		{"list expected", "version: 1\ntestd: {items: {name: a}}\n", []string{"testd.items: expected a list, got a mapping"}},
		{"duplicate key", "version: 1\ntestd:\n  name: a\n  name: b\n", []string{"edge.yaml:4:3: testd.name: duplicate key (first set on line 3)"}},
		{"several errors", "version: 1\ntestd:\n  name: 1\n  count: x\n  bogus: 1\n", []string{"3:9: testd.name", "4:10: testd.count", "5:3: testd.bogus"}},
		{"syntax", "version: 1\ntestd: [\n", []string{"edge.yaml:2:1: syntax error"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping with version: 1"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"more than one document"}},
		{"host bits", "version: 1\nsite: {networks: {lan: [192.168.1.5/24]}}\n", []string{"site.networks.lan[0]: prefix 192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?"}},
		{"empty prefix", "version: 1\nsite: {networks: {vpn6: [\"\"]}}\n", []string{`site.networks.vpn6[0]: empty prefix; write one such as 192.168.1.0/24`}},
		{"overlap", "version: 1\nsite:\n  networks:\n    lan: [192.168.0.0/16]\n    vpn: [192.168.4.0/24]\n", []string{"edge.yaml:5:11: site.networks.vpn[0]: prefix 192.168.4.0/24 overlaps 192.168.0.0/16 at site.networks.lan[0]"}},
		{"bad network name", "version: 1\nsite: {networks: {LAN: [10.0.0.0/8]}}\n", []string{"site.networks.LAN: network names use lowercase"}},
		{"unknown network ref", "version: 1\nsite: {networks: {lan: [10.0.0.0/8]}}\ntestd: {from: [lan, dmz]}\n", []string{`edge.yaml:3:21: testd.from[1]: unknown network "dmz"; site.networks has "lan"`}},
		{"bad prefix ref", "version: 1\ntestd: {from: [10.0.0.1/8]}\n", []string{"testd.from[0]: prefix 10.0.0.1/8 has host bits set"}},
		{"bad domain", "version: 1\nsite: {domain: -bad.example}\n", []string{`site.domain: label "-bad" of "-bad.example" starts or ends with '-'`}},
		{"idn domain", "version: 1\nsite: {domain: bücher.example}\n", []string{"not ASCII; write it in punycode"}},
		{"ifname", "version: 1\nsite: {interfaces: {lan: this-name-is-too-long}}\n", []string{"site.interfaces.lan: interface name"}},
		{"relative state dir", "version: 1\nstate_dir: var/lib\n", []string{"state_dir: must be an absolute path"}},
		{"log level", "version: 1\nlog: {level: loud}\n", []string{`log.level: unknown level "loud"`}},
		{"metrics listen", "version: 1\ntestd: {metrics: {listen: localhost}}\n", []string{`testd.metrics.listen: invalid address "localhost"`}},
		{"validator", "version: 1\ntestd: {items: [{name: a}, {name: a}]}\n", []string{`edge.yaml:2:35: testd.items[1].name: duplicate name "a"`}},
		{"other section scalar", "version: 1\ndns: 5\n", []string{"dns: expected a mapping, got the integer 5"}},
		{"merge key", "version: 1\nbase: &b {name: x}\ntestd: {<<: *b}\n", []string{`unknown key "base"`, "merge keys (<<) are not supported"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "/etc/edge/edge.yaml", "testd", defaults)
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want %q", tc.in, tc.want)
			}
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("Parse error type %T, want Errors", err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("Parse(%q) gave %d errors, want %d:\n%v", tc.in, len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestAliasBomb(t *testing.T) {
	in := "version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		in += n + ": &" + n + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = n
	}
	type bomb struct {
		G [][][][][][][]string `yaml:"g"`
	}
	in += "testd: {g: *g}\n"
	done := make(chan error, 1)
	go func() {
		_, err := Parse([]byte(in), "edge.yaml", "testd", func() bomb { return bomb{} })
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "too deeply aliased") {
			t.Errorf("Parse(alias bomb) error = %v, want a size error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Parse(alias bomb) did not return")
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"5s", 5 * time.Second, false},
		{"1h30m", 90 * time.Minute, false},
		{"30d", 30 * 24 * time.Hour, false},
		{"1w2d12h", (9*24 + 12) * time.Hour, false},
		{"0s", 0, false},
		{"", 0, true},
		{"30", 0, true},
		{"-5s", 0, true},
		{"5x", 0, true},
		{"d", 0, true},
		{"999999999999d", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	for _, d := range []time.Duration{0, time.Second, 90 * time.Minute, 48 * time.Hour} {
		b, _ := Duration(d).MarshalText()
		back, err := ParseDuration(string(b))
		if err != nil || back != d {
			t.Errorf("ParseDuration(Duration(%v).MarshalText() = %q) = %v, %v; want the same duration", d, b, back, err)
		}
	}
}

func TestNormalizedRoundTrip(t *testing.T) {
	f, err := Parse([]byte(good), "edge.yaml", "testd", defaults)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Normalized()
	if err != nil {
		t.Fatalf("Normalized() error: %v", err)
	}
	for _, w := range []string{"state_dir: /var/lib/edge", "ttl: 7d", "shutdown_timeout: 10s", "listen: 127.0.0.1:9799", "- 192.168.1.0/24"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("Normalized() lacks %q:\n%s", w, out)
		}
	}
	g, err := Parse(out, "normalized.yaml", "testd", defaults)
	if err != nil {
		t.Fatalf("Parse(Normalized()) error: %v\n%s", err, out)
	}
	if diff := cmp.Diff(f.Section, g.Section, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("normalized config reads back differently (-first +second):\n%s", diff)
	}
}

func BenchmarkParse(b *testing.B) {
	data := []byte(good)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, "edge.yaml", "testd", defaults); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSecretNeverPrinted: a Secret shows as the placeholder in YAML (what
// -check prints), JSON, fmt and slog, and the placeholder is refused as a
// value.
func TestSecretNeverPrinted(t *testing.T) {
	const planted = "c2VjcmV0LXBsYW50ZWQtYnktdGhlLXRlc3Q="
	v := struct {
		Key Secret `yaml:"key" json:"key"`
	}{Secret(planted)}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "secret", v.Key, "struct", v)
	y, _ := yaml.Marshal(v)
	j, _ := json.Marshal(v)
	for name, out := range map[string]string{
		"yaml": string(y), "json": string(j), "fmt %v": fmt.Sprintf("%v", v), "fmt %s": fmt.Sprintf("key=%s", v.Key),
		"fmt %+v": fmt.Sprintf("%+v", v), "slog": logs.String(),
	} {
		if strings.Contains(out, planted) || !strings.Contains(out, Redacted) {
			t.Errorf("%s shows %q, want the placeholder and not the secret", name, out)
		}
	}
	if v.Key.Reveal() != planted {
		t.Errorf("Reveal() = %q, want the secret", v.Key.Reveal())
	}
	var back Secret
	if err := back.UnmarshalText([]byte(Redacted)); err == nil || !strings.Contains(err.Error(), "placeholder") {
		t.Errorf("UnmarshalText(placeholder) = %v, want a hint that it is -check's placeholder", err)
	}
}
