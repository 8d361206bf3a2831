package compile

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// head is the file before the firewall section (7 lines).
const head = `version: 1
site:
  interfaces: {wan: eth0, lan: br-lan}
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
    vpn6: ["fd00:100::/64"]
firewall:
`

func parseSection(t testing.TB, section string) *config.File[fwconfig.Config] {
	t.Helper()
	f, err := config.Parse([]byte(head+section), "edge.yaml", fwconfig.Section, fwconfig.DefaultConfig)
	if err != nil {
		t.Fatalf("config.Parse error:\n%v\n%s", err, section)
	}
	return f
}

// files serves set files from memory.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		s, ok := m[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
}

func TestCompileErrors(t *testing.T) {
	const zones = "  zones:\n    wan: {interfaces: [wan]}\n    lan: {interfaces: [lan], networks: [lan]}\n    vpn6: {networks: [vpn6]}\n"
	tests := []struct {
		name    string
		section string
		files   map[string]string
		bans    []BanEntry
		want    []string
	}{
		{
			name:    "missing set file",
			section: zones + "  sets:\n    blocklist: {file: /var/lib/blocklists/drop.txt}\n",
			want:    []string{"edge.yaml:13:23: firewall.sets.blocklist.file: set blocklist: read /var/lib/blocklists/drop.txt: file does not exist"},
		},
		{
			name:    "bad lines in a set file",
			section: zones + "  sets:\n    a: {file: /a.txt}\n    b: {file: /b.txt}\n",
			files: map[string]string{
				"/a.txt": "# list\n192.0.2.0/24\n\n192.0.2.300\n10.0.0.0/33 ; bad too\n2001:db8::/32\n",
				"/b.txt": "fe80::1%eth0\n",
			},
			want: []string{
				`edge.yaml:13:15: firewall.sets.a.file: set a: /a.txt:4: invalid address or prefix "192.0.2.300" (and 1 more bad lines)`,
				`edge.yaml:14:15: firewall.sets.b.file: set b: /b.txt:1: invalid address or prefix "fe80::1%eth0"`,
			},
		},
		{
			name:    "bad run-time ban",
			section: zones,
			bans:    []BanEntry{{Addr: netip.Addr{}}},
			want:    []string{"firewall.bans: run-time ban 0 has no valid address"},
		},
		{
			name:    "port forward from a zone without the family",
			section: zones + "  port_forwards:\n    - {name: web, from_zone: vpn6, port: 80, to: 192.168.1.10}\n",
			want:    []string{"edge.yaml:13:30: firewall.port_forwards[0].from_zone: zone vpn6 has no interfaces and no IPv4 networks to forward from"},
		},
		{
			name:    "masquerade out of a zone without the family",
			section: zones + "  nat:\n    masquerade: [vpn6]\n",
			want:    []string{"edge.yaml:13:18: firewall.nat.masquerade[0]: zone vpn6 has no interfaces and no IPv4 networks to masquerade out of"},
		},
		{
			name:    "1:1 NAT from a zone without the family",
			section: zones + "  nat:\n    one_to_one: [{external: 192.0.2.10, internal: 192.168.1.10, zone: vpn6}]\n",
			want:    []string{"firewall.nat.one_to_one[0].zone: zone vpn6 has no interfaces and no IPv4 networks"},
		},
		{
			name:    "limit on a port forward from zones without its family",
			section: zones + "  port_forwards:\n    - {name: web, port: 80, to: 192.168.1.10}\n  limits:\n    per_source:\n      - {port_forward: web, rate: 1/second, zones: [vpn6]}\n",
			want:    []string{"edge.yaml:16:52: firewall.limits.per_source[0].zones: no zone of vpn6 has interfaces or IPv4 networks; the port forward web goes to 192.168.1.10"},
		},
		{
			name:    "rule to a zone of the other family",
			section: zones + "  rules:\n    - {name: x, from: lan, to: vpn6, destination: [192.0.2.0/24], action: accept}\n",
			want:    []string{`edge.yaml:13:7: firewall.rules[0]: rule "x" can match no packet`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := parseSection(t, tc.section)
			rs, err := Compile(f, Options{ReadFile: files(tc.files), Bans: tc.bans})
			if err == nil {
				t.Fatalf("Compile() = %d chains, nil error; want %q", len(rs.Chains), tc.want)
			}
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Compile() error type %T, want config.Errors", err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("Compile() gave %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	in := "; comment\n192.0.2.1\n198.51.100.0/24 ; SBL1\n\t10.1.2.3/8  # host bits\n::ffff:203.0.113.0/120\n2001:db8::/32\n2001:db8::1\n\n"
	v4, v6, err := parsePrefixes("list", []byte(in))
	if err != nil {
		t.Fatalf("parsePrefixes error: %v", err)
	}
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	if diff := cmp.Diff(pfx("192.0.2.1/32", "198.51.100.0/24", "10.0.0.0/8", "203.0.113.0/24"), v4, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("parsePrefixes v4 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(pfx("2001:db8::/32", "2001:db8::1/128"), v6, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("parsePrefixes v6 (-want +got):\n%s", diff)
	}
}

func TestMergePrefixes(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"10.0.0.0/8 10.1.0.0/16 10.1.2.3/32", "10.0.0.0/8"},
		{"10.1.2.3/32 10.0.0.0/8", "10.0.0.0/8"},
		{"192.0.2.0/25 192.0.2.128/25", "192.0.2.0/25 192.0.2.128/25"},
		{"192.0.2.1/32 192.0.2.1/32 192.0.2.0/31", "192.0.2.0/31"},
		{"11.0.0.0/8 10.0.0.0/8 10.255.0.0/16 12.0.0.0/8", "10.0.0.0/8 11.0.0.0/8 12.0.0.0/8"},
	}
	for _, tc := range tests {
		var in []netip.Prefix
		for _, s := range strings.Fields(tc.in) {
			in = append(in, netip.MustParsePrefix(s))
		}
		var got []string
		for _, p := range mergePrefixes(in) {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("mergePrefixes(%s) = %v, want %s", tc.in, got, tc.want)
		}
	}
}

func TestMergePorts(t *testing.T) {
	pr := func(from, to uint16) ruleset.PortRange { return ruleset.PortRange{From: from, To: to} }
	got := ruleset.MergePorts([]ruleset.PortRange{pr(80, 80), pr(443, 443), pr(81, 90), pr(85, 100), pr(22, 22), pr(101, 101)})
	want := []ruleset.PortRange{pr(22, 22), pr(80, 101), pr(443, 443)}
	if !cmp.Equal(got, want) {
		t.Errorf("mergePorts = %v, want %v", got, want)
	}
}

// TestDeterministic compiles the same config many times: map order must
// not leak into the ruleset.
func TestDeterministic(t *testing.T) {
	f := load(t, "../fwconfig/testdata/example.yaml")
	var first string
	for i := range 20 {
		rs, err := Compile(f, Options{Flowtable: true, ReadFile: testdataReader})
		if err != nil {
			t.Fatal(err)
		}
		if got := dump(rs); i == 0 {
			first = got
		} else if got != first {
			t.Fatalf("Compile run %d differs from run 0:\n%s", i, cmp.Diff(first, got))
		}
	}
}

// TestIDsNameTheirOrigin checks that every rule ID leads back to config:
// a fixed prelude name, a zone, a rule, a port forward, a limit or NAT.
func TestIDsNameTheirOrigin(t *testing.T) {
	f := load(t, "../fwconfig/testdata/example.yaml")
	rs, err := Compile(f, Options{Flowtable: true, ReadFile: testdataReader})
	if err != nil {
		t.Fatal(err)
	}
	var origins []string
	for _, name := range f.Section.ZoneNames() {
		origins = append(origins, "zone "+name+" ", ": zone "+name)
	}
	for _, r := range f.Section.Rules {
		origins = append(origins, "rule "+r.Name)
	}
	for _, p := range f.Section.PortForwards {
		origins = append(origins, "port forward "+p.Name, "hairpin "+p.Name)
	}
	origins = append(origins, RejectChain+": ", ": ct ", ": loopback", ": icmp", ": ban", ": offload", ": syn flood", ": limit ",
		": masquerade ", ": snat ", ": one-to-one ", "input: drop", "forward: drop", "output: accept")
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			found := false
			for _, o := range origins {
				found = found || strings.Contains(r.ID, o)
			}
			if !found {
				t.Errorf("rule ID %q (chain %s) names no config item", r.ID, c.Name)
			}
		}
	}
}

// BenchmarkBlocklist compiles a config with a 100,000-prefix blocklist
// file: the compiler's share of the apply that docs/targets.md's target times.
func BenchmarkBlocklist(b *testing.B) {
	var list strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&list, "%d.%d.%d.0/24 ; entry %d\n", 1+i/65536, i/256%256, i%256, i)
	}
	data := []byte(list.String())
	f := parseSection(b, "  zones:\n    wan: {interfaces: [wan]}\n  sets:\n    blocklist: {file: /big.txt}\n  rules:\n    - {name: bl, from: wan, to: any, source_set: blocklist, action: drop}\n")
	opts := Options{ReadFile: func(string) ([]byte, error) { return data, nil }}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rs, err := Compile(f, opts)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(rs.Sets[2].Elements); n != 100_000 {
			b.Fatalf("blocklist_v4 has %d elements, want 100000", n)
		}
	}
}

func TestMeterIdle(t *testing.T) {
	for _, tc := range []struct {
		count uint64
		unit  string
		burst uint32
		want  time.Duration
	}{
		{10, "minute", 10, 66 * time.Second},
		{10, "minute", 0, time.Minute},
		{200, "second", 400, time.Minute},
		{3, "hour", 2, time.Hour},
		{7, "minute", 1, 18 * time.Second},
	} {
		got := meterIdle(fwconfig.Rate{Count: tc.count, Unit: tc.unit}, tc.burst)
		if tc.want < time.Minute {
			tc.want = time.Minute
		}
		if got != tc.want {
			t.Errorf("meterIdle(%d/%s, burst %d) = %v, want %v", tc.count, tc.unit, tc.burst, got, tc.want)
		}
	}
}

// chainRules is the dump of one chain's rules, one per line.
func chainRules(rs *ruleset.Ruleset, chain string) []string {
	var out []string
	for _, c := range rs.Chains {
		if c.Name != chain {
			continue
		}
		for _, r := range c.Rules {
			line := "[" + r.ID + "]"
			for _, m := range r.Matches {
				line += " " + matchText(m)
			}
			out = append(out, line+stmtText(r))
		}
	}
	return out
}

// TestIntraZone: traffic from a zone back into it (two ports of the lan
// bridge under br_netfilter) gets the zone's intra policy, by default
// accept for a zone whose input is accept and else the forward policy,
// which the chain's last rule already applies.
func TestIntraZone(t *testing.T) {
	tests := []struct {
		name, zones, chain string
		want               []string
	}{
		{"trusted zone accepts by default",
			"    lan: {interfaces: [lan], networks: [lan], input: accept, forward_to: [wan]}\n", "forward_lan", []string{
				`[zone lan forward: ct dnat] ct status dnat counter accept`,
				`[zone lan forward: intra] oifname "br-lan" counter accept`,
				`[zone lan forward: to wan] oifname "eth0" counter accept`,
				`[zone lan forward: drop] counter drop`}},
		{"other zones get their forward policy",
			"    lan: {interfaces: [lan], networks: [lan], forward_to: [wan]}\n", "forward_lan", []string{
				`[zone lan forward: ct dnat] ct status dnat counter accept`,
				`[zone lan forward: to wan] oifname "eth0" counter accept`,
				`[zone lan forward: drop] counter drop`}},
		{"reject, logged",
			"    lan: {interfaces: [lan], input: accept, forward: accept, intra: reject, log_drops: true}\n", "forward_lan", []string{
				`[zone lan forward: ct dnat] ct status dnat counter accept`,
				`[zone lan forward: intra: log] oifname "br-lan" limit rate 10/minute burst 5 packets counter log prefix "edge reject lan intra: " level info`,
				`[zone lan forward: intra] oifname "br-lan" counter jump handle_reject`,
				`[zone lan forward: accept] counter accept`}},
		{"forward accept, intra drop",
			"    lan: {interfaces: [lan], forward: accept, intra: drop}\n", "forward_lan", []string{
				`[zone lan forward: ct dnat] ct status dnat counter accept`,
				`[zone lan forward: intra] oifname "br-lan" counter drop`,
				`[zone lan forward: accept] counter accept`}},
		{"intra as the forward policy needs no rule",
			"    lan: {interfaces: [lan], input: accept, forward: accept}\n", "forward_lan", []string{
				`[zone lan forward: ct dnat] ct status dnat counter accept`,
				`[zone lan forward: accept] counter accept`}},
		{"a zone of networks",
			"    vpn6: {networks: [vpn6], input: accept}\n", "forward_vpn6", []string{
				`[zone vpn6 forward: ct dnat] ct status dnat counter accept`,
				`[zone vpn6 forward: intra] ip6 daddr fd00:100::/64 counter accept`,
				`[zone vpn6 forward: drop] counter drop`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := parseSection(t, "  zones:\n    wan: {interfaces: [wan]}\n"+tc.zones)
			rs, err := Compile(f, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, chainRules(rs, tc.chain)); diff != "" {
				t.Errorf("chain %s (-want +got):\n%s", tc.chain, diff)
			}
		})
	}
}

// TestReject: whatever rejects (a zone's policy, a rule, a policy of the
// matrix, the defaults) answers TCP with a reset and the rest with ICMP
// port unreachable, through RejectChain; a config without rejects has no
// such chain.
func TestReject(t *testing.T) {
	f := parseSection(t, `  defaults: {input: reject}
  zones:
    wan: {interfaces: [wan], input: reject}
    lan: {interfaces: [lan], networks: [lan], input: accept}
  policies:
    - {from: lan, to: wan, action: reject}
  rules:
    - {name: no-smtp, from: lan, to: wan, proto: tcp, ports: [25], action: reject}
`)
	rs, err := Compile(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rejects []string
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			if r.Verdict == ruleset.Reject || r.Target == RejectChain {
				rejects = append(rejects, c.Name+": "+chainRules(&ruleset.Ruleset{Chains: []*ruleset.Chain{{Name: c.Name, Rules: []*ruleset.Rule{r}}}}, c.Name)[0])
			}
		}
	}
	want := []string{
		`input: [input: reject] counter jump handle_reject`,
		`forward_lan: [rule no-smtp] oifname "eth0" tcp dport 25 counter jump handle_reject`,
		`forward_lan: [zone lan forward: to wan] oifname "eth0" counter jump handle_reject`,
		`input_wan: [zone wan input: reject] counter jump handle_reject`,
		`handle_reject: [handle_reject: tcp reset] meta l4proto tcp counter reject with tcp reset`,
		`handle_reject: [handle_reject: port unreachable] counter reject`,
	}
	if diff := cmp.Diff(want, rejects); diff != "" {
		t.Errorf("rejecting rules (-want +got):\n%s", diff)
	}

	f = parseSection(t, "  zones:\n    wan: {interfaces: [wan]}\n")
	if rs, err = Compile(f, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := rs.Chains[len(rs.Chains)-1].Name; got == RejectChain {
		t.Errorf("a config without rejects has chain %s", RejectChain)
	}
}
