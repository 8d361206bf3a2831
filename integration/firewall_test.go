//go:build integration

// edge-firewall in the router of the standard lab, with real traffic
// through it and nft as the oracle.
//
//	client 192.168.1.100 --br-lan-- router ------- internet ---+-- outside-de 198.51.100.10
//	nas    192.168.1.10  :80         192.168.1.1   192.0.2.1    +-- outside-us 203.0.113.10
//	                                 edge-firewall              +-- roadwarrior 172.31.77.10
//	                                 edge-probe :22 :53 :80 :8081
//
// Masquerade, the services the wan may reach (every other port probed by
// nmap), a port forward from outside and through hairpin from inside,
// bans until their timeout, the per-source limit, log prefixes, foreign
// tables, confirm and rollback, and a boot-time ruleset.

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/homeedge/edge/integration/lab"
	"github.com/homeedge/edge/internal/nettest"
	"github.com/homeedge/edge/internal/textdiff"
)

func fwConfig(dir, extra string) string {
	return fmt.Sprintf(`version: 1
site:
  domain: example.net
  interfaces: {wan: wan, lan: br-lan}
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
admin: {socket_dir: %[1]s/run}
state_dir: %[1]s/state
firewall:
  metrics: {listen: "127.0.0.1:9711"}
  zones:
    wan:
      interfaces: [wan]
      services: [ssh]
      log_drops: true
    lan:
      interfaces: [lan]
      networks: [lan]
      input: accept
      forward_to: [wan]
  nat:
    masquerade: [wan]
  port_forwards:
    - {name: web, port: 8080, to: 192.168.1.10, to_port: 80}
  rules:
    - {name: no-telnet, from: wan, proto: tcp, ports: [23], action: drop, log: "telnet: "}
  limits:
    per_source:
      - {service: ssh, rate: 10/minute, burst: 10}
  bans: {default_timeout: 1h, max_timeout: 30d}
  flow_offload: {enabled: true}
  log: {to: daemon, group: 100}
%[2]s`, dir, extra)
}

type fwLab struct{ *daemonLab }

func newFWLab(t *testing.T, extra string) *fwLab {
	t.Helper()
	f := &fwLab{newDaemonLab(t)}
	f.writeConfig(extra)
	return f
}

func (f *fwLab) writeConfig(extra string) {
	f.t.Helper()
	if err := os.WriteFile(f.cfg, []byte(fwConfig(f.dir, extra)), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fwLab) start() {
	f.t.Helper()
	f.p = startDaemon(f.t, f.l, lab.NodeRouter, "edge-firewall", f.cfg)
}

func (f *fwLab) stop() {
	f.t.Helper()
	if err := f.p.Stop(15 * time.Second); err != nil {
		f.t.Errorf("edge-firewall stop: %v", err)
	}
}

// serve starts edge-probe listeners in node.
func (f *fwLab) serve(node string, args ...string) {
	f.t.Helper()
	p, err := f.l.Start(node, "edge-probe", append([]string{bin("edge-probe"), "serve"}, args...))
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitLog(ctx, "serving"); err != nil {
		f.t.Fatal(err)
	}
}

// dial connects from node to addr with edge-probe and returns its answer:
// the server's line, "timeout" or "refused".
func (f *fwLab) dial(node, addr string, extra ...string) string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := append([]string{"dial", "-timeout", "1s"}, extra...)
	out, err := f.l.Run(ctx, node, bin("edge-probe"), append(args, addr)...)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		f.t.Fatalf("edge-probe dial %s from %s: %v", addr, node, err)
	}
	return strings.TrimSpace(string(out))
}

// openPorts scans host from node with nmap and returns the open TCP ports.
func (f *fwLab) openPorts(node, host, ports string) []string {
	f.t.Helper()
	out := f.mustRun(node, "nmap", "-n", "-Pn", "-T5", "--max-retries", "1", "--min-rate", "20000", "-p", ports, "-oG", "-", host)
	m := regexp.MustCompile(`(\d+)/open/tcp`).FindAllStringSubmatch(out, -1)
	var open []string
	for _, s := range m {
		open = append(open, s[1])
	}
	return open
}

const foreignTable = `table ip foreign {
	chain fw {
		type filter hook forward priority filter; policy accept;
		ip saddr 10.9.9.9 counter packets 0 bytes 0 drop
	}
}
`

// TestFirewallTraffic runs the whole firewall in one lab: each step
// builds on the state the one before left.
func TestFirewallTraffic(t *testing.T) {
	f := newFWLab(t, "")
	// A foreign table (docker's, say) exists before edge-firewall starts.
	ctx := context.Background()
	load := f.l.Command(ctx, lab.NodeRouter, "nft", "-f", "-")
	load.Stdin = strings.NewReader(foreignTable)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("load foreign table: %v\n%s", err, out)
	}
	f.serve(lab.NodeRouter, "-tcp", ":22", "-tcp", ":23", "-tcp", ":53", "-tcp", ":80", "-tcp", ":8081")
	f.serve(lab.NodeNAS, "-tcp", ":80")
	f.serve(lab.NodeOutsideDE, "-tcp", ":7000")
	f.start()
	if !strings.Contains(f.p.Log(), "no flowtables") {
		t.Errorf("the missing flowtable support is not logged:\n%s", f.p.Log())
	}

	t.Run("log prefixes", func(t *testing.T) {
		// Before anything else: the log rules' budget (10/minute, burst 5)
		// is their own, and nmap below spends it.
		if got := f.dial(lab.NodeOutsideDE, lab.RouterWANAddr4+":23"); got != "timeout" {
			t.Errorf("telnet from outside = %q, want timeout", got)
		}
		if got := f.dial(lab.NodeOutsideDE, lab.RouterWANAddr4+":8081"); got != "timeout" {
			t.Errorf("8081 from outside = %q, want timeout", got)
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for _, want := range []string{
			`msg=packet daemon=firewall component=packets prefix="telnet: " in=wan src=198.51.100.10 dst=192.0.2.1 proto=tcp sport=`,
			`dport=23 flags=S len=60`,
			`msg=packet daemon=firewall component=packets prefix="edge drop wan input: " in=wan src=198.51.100.10 dst=192.0.2.1 proto=tcp`,
			`dport=8081 flags=S`,
		} {
			if err := f.p.WaitLog(ctx, want); err != nil {
				t.Errorf("the log lacks %q: %v", want, err)
			}
		}
	})

	t.Run("masquerade", func(t *testing.T) {
		got := f.dial(lab.NodeClient, lab.OutsideDEAddr4+":7000")
		if !strings.HasPrefix(got, "from="+lab.RouterWANAddr4+" ") {
			t.Errorf("outside-de sees the lan client as %q, want from=%s", got, lab.RouterWANAddr4)
		}
	})

	t.Run("only allowed services from outside", func(t *testing.T) {
		if got := f.openPorts(lab.NodeOutsideDE, lab.RouterWANAddr4, "1-65535"); !slices.Equal(got, []string{"22", "8080"}) {
			t.Errorf("open ports of the router seen from outside-de = %v, want [22 8080] (ssh and the port forward)", got)
		}
		if got := f.openPorts(lab.NodeClient, lab.RouterLANAddr4, "22,23,53,80,8081"); !slices.Equal(got, []string{"22", "23", "53", "80", "8081"}) {
			t.Errorf("open ports seen from the lan = %v, want all five", got)
		}
		// IPv6 alike, in the same table.
		v6 := "[" + lab.RouterWANAddr6 + "]"
		if got := f.dial(lab.NodeOutsideDE, v6+":22"); !strings.HasPrefix(got, "from="+lab.OutsideDEAddr6+" ") {
			t.Errorf("outside-de to ssh over IPv6 = %q", got)
		}
		if got := f.dial(lab.NodeOutsideDE, v6+":80"); got != "timeout" {
			t.Errorf("outside-de to port 80 over IPv6 = %q, want timeout", got)
		}
	})

	t.Run("port forward and hairpin", func(t *testing.T) {
		want := "from=" + lab.OutsideDEAddr4 + " to=" + lab.NASAddr4 + ":80"
		if got := f.dial(lab.NodeOutsideDE, lab.RouterWANAddr4+":8080"); got != want {
			t.Errorf("outside-de to the router's 8080 = %q, want %q", got, want)
		}
		// From the lan through the public address: the nas answers, and
		// sees the router (so that its reply comes back the same way).
		want = "from=" + lab.RouterLANAddr4 + " to=" + lab.NASAddr4 + ":80"
		if got := f.dial(lab.NodeClient, lab.RouterWANAddr4+":8080"); got != want {
			t.Errorf("client to the public 8080 = %q, want %q", got, want)
		}
	})

	t.Run("ban until timeout", func(t *testing.T) {
		target := lab.RouterWANAddr4 + ":22"
		if got := f.dial(lab.NodeOutsideUS, target); !strings.HasPrefix(got, "from=") {
			t.Fatalf("before the ban, outside-us to ssh = %q", got)
		}
		out := f.mustEdgectl("fw", "ban", lab.OutsideUSAddr4, "--for", "3s", "--comment", "lab test")
		banned := time.Now()
		if !strings.Contains(out, "banned "+lab.OutsideUSAddr4) {
			t.Errorf("edgectl fw ban said %q", out)
		}
		if got := f.dial(lab.NodeOutsideUS, target); got != "timeout" {
			t.Errorf("banned outside-us to ssh = %q, want timeout (dropped)", got)
		}
		if got := f.dial(lab.NodeOutsideDE, target); !strings.HasPrefix(got, "from=") {
			t.Errorf("outside-de, not banned, to ssh = %q", got)
		}
		list := f.mustEdgectl("fw", "bans")
		if !strings.Contains(list, lab.OutsideUSAddr4) || !strings.Contains(list, "lab test") {
			t.Errorf("edgectl fw bans, %v after the ban, lacks it:\n%s", time.Since(banned), list)
		}
		time.Sleep(time.Until(banned.Add(3500 * time.Millisecond)))
		if got := f.dial(lab.NodeOutsideUS, target); !strings.HasPrefix(got, "from=") {
			t.Errorf("after the ban's timeout, outside-us to ssh = %q, want it through", got)
		}
		// A refreshed ban replaces the time; unban lifts it at once.
		f.mustEdgectl("fw", "ban", lab.OutsideUSAddr4, "--for", "2s")
		if out := f.mustEdgectl("fw", "ban", lab.OutsideUSAddr4, "--for", "1h"); !strings.Contains(out, "refreshed") {
			t.Errorf("second ban did not say refreshed: %q", out)
		}
		time.Sleep(2500 * time.Millisecond)
		if got := f.dial(lab.NodeOutsideUS, target); got != "timeout" {
			t.Errorf("after the refresh to 1h, outside-us to ssh = %q, want timeout", got)
		}
		f.mustEdgectl("fw", "unban", lab.OutsideUSAddr4)
		if got := f.dial(lab.NodeOutsideUS, target); !strings.HasPrefix(got, "from=") {
			t.Errorf("after unban, outside-us to ssh = %q", got)
		}
		// An IPv6 ban drops IPv6 traffic and leaves the address's IPv4
		// neighbour alone.
		v6 := "[" + lab.RouterWANAddr6 + "]:22"
		f.mustEdgectl("fw", "ban", lab.OutsideUSAddr6, "--for", "1m")
		if got := f.dial(lab.NodeOutsideUS, v6); got != "timeout" {
			t.Errorf("banned outside-us over IPv6 = %q, want timeout", got)
		}
		if got := f.dial(lab.NodeOutsideUS, target); !strings.HasPrefix(got, "from=") {
			t.Errorf("outside-us over IPv4 with only its IPv6 banned = %q", got)
		}
		f.mustEdgectl("fw", "unban", lab.OutsideUSAddr6)
		if code, out := f.edgectl("fw", "unban", lab.OutsideUSAddr4); code != 1 || !strings.Contains(out, "not banned") {
			t.Errorf("unban of an address not banned: exit %d, %q", code, out)
		}
		if code, out := f.edgectl("fw", "ban", "203.0.113.0/24"); code != 1 || !strings.Contains(out, "is a network") {
			t.Errorf("ban of a network: exit %d, %q", code, out)
		}
		if code, out := f.edgectl("fw", "ban", lab.Host11Addr4); code != 0 || !strings.Contains(out, "bans do not cover") {
			t.Errorf("ban of a lan address: exit %d, %q; want a warning", code, out)
		}
	})

	t.Run("per-source limit", func(t *testing.T) {
		// Ten new ssh connections from one source pass, the eleventh is
		// dropped; another source is unaffected.
		out := f.mustRun(lab.NodeRoadwarrior, bin("edge-probe"), "burst", "-n", "11", "-timeout", "1s", lab.RouterWANAddr4+":22")
		if !strings.Contains(out, "ok=10 timeout=1 ") || !strings.Contains(out, "\n11 timeout\n") {
			t.Errorf("11 ssh connections from roadwarrior:\n%s\nwant the first 10 through and the 11th dropped", out)
		}
		if got := f.dial(lab.NodeOutsideDE, lab.RouterWANAddr4+":22"); !strings.HasPrefix(got, "from=") {
			t.Errorf("another source is limited too: %q", got)
		}
	})

	t.Run("show and metrics", func(t *testing.T) {
		show := f.mustEdgectl("fw", "show")
		for _, want := range []string{"table inet edge {", `comment "input: limit ssh (ip)"`, `masquerade comment "srcnat: masquerade wan"`} {
			if !strings.Contains(show, want) {
				t.Errorf("fw show lacks %q", want)
			}
		}
		if regexp.MustCompile(`update @meter_ssh_v4 \{ ip saddr limit rate over 10/minute burst 10 packets \} counter packets [1-9]\d* `).FindString(show) == "" {
			t.Errorf("fw show: the limit rule's counter did not count the dropped connection:\n%s", show)
		}
		metrics := f.mustRun(lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9711/metrics")
		for _, re := range []string{
			`edge_firewall_rule_packets_total\{chain="input",rule="input: limit ssh \(ip\)"\} [1-9]`,
			`edge_firewall_zone_packets_total\{hook="input",zone="wan"\} [1-9]`,
			`edge_firewall_zone_dropped_packets_total\{hook="input",zone="wan"\} [1-9]`,
			`edge_firewall_set_elements\{set="ban_v4"\} 1`,
			`edge_firewall_bans 1`,
			`edge_firewall_ban_changes_total\{op="ban"\} [1-9]`,
			`edge_firewall_applies_total\{result="success"\} 1`,
			`edge_firewall_logged_packets_total\{prefix="telnet: "\} [1-9]`,
		} {
			if !regexp.MustCompile(re).MatchString(metrics) {
				t.Errorf("metrics lack %s", re)
			}
		}
		check := exec.Command("promtool", "check", "metrics")
		check.Stdin = strings.NewReader(metrics)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("confirm or roll back", func(t *testing.T) {
		listWAN := func() string { return f.mustRun(lab.NodeRouter, "nft", "list", "chain", "inet", "edge", "input_wan") }
		before := listWAN()
		f.writeConfig("")
		cfg, _ := os.ReadFile(f.cfg)
		os.WriteFile(f.cfg, []byte(strings.Replace(string(cfg), "services: [ssh]", "services: [ssh, https]", 1)), 0o644)
		if out := f.mustEdgectl("fw", "diff"); !strings.Contains(out, `+		tcp dport 443 counter packets 0 bytes 0 accept comment "zone wan input: allow https"`) {
			t.Errorf("fw diff does not show the new rule:\n%s", out)
		}
		out := f.mustEdgectl("fw", "apply", "--confirm", "5s")
		applied := time.Now()
		if !strings.Contains(out, "edgectl fw confirm") {
			t.Errorf("apply --confirm did not ask for a confirm:\n%s", out)
		}
		if !strings.Contains(listWAN(), "allow https") {
			t.Fatalf("the new rule is not loaded")
		}
		if code, out := f.edgectl("fw", "apply"); code != 1 || !strings.Contains(out, "waits for") {
			t.Errorf("a second apply while one waits: exit %d, %q", code, out)
		}
		time.Sleep(time.Until(applied.Add(6 * time.Second)))
		if got := listWAN(); nettest.NFTNormalized(got) != nettest.NFTNormalized(before) {
			t.Errorf("after 5s without confirm, the chain is\n%s\nwant it as before:\n%s", got, before)
		}
		// With a confirm the new ruleset stays.
		f.mustEdgectl("fw", "apply", "--confirm", "5s")
		if out := f.mustEdgectl("fw", "confirm"); !strings.Contains(out, "confirmed generation") {
			t.Errorf("fw confirm said %q", out)
		}
		time.Sleep(6 * time.Second)
		if !strings.Contains(listWAN(), "allow https") {
			t.Errorf("the confirmed rule is gone after the timeout")
		}
		if code, _ := f.edgectl("fw", "confirm"); code != 1 {
			t.Errorf("confirm with nothing pending: exit %d, want 1", code)
		}
		// Counters kept their counts through the applies and the rollback.
		metrics := f.mustRun(lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9711/metrics")
		if !regexp.MustCompile(`edge_firewall_rule_packets_total\{chain="input",rule="input: limit ssh \(ip\)"\} [1-9]`).MatchString(metrics) {
			t.Errorf("the limit rule's counter was reset by the applies")
		}
		// The ban made before survived every apply and the rollback.
		if show := f.mustEdgectl("fw", "show"); !strings.Contains(show, lab.Host11Addr4+" timeout") {
			t.Errorf("the ban of %s did not survive the applies", lab.Host11Addr4)
		}
	})

	t.Run("broken config changes nothing", func(t *testing.T) {
		before := nettest.NFTNormalized(f.mustRun(lab.NodeRouter, "nft", "list", "table", "inet", "edge"))
		cfg, _ := os.ReadFile(f.cfg)
		os.WriteFile(f.cfg, []byte(strings.Replace(string(cfg), "services: [ssh, https]", "services: [ssh, htps]", 1)), 0o644)
		code, out := f.edgectl("fw", "apply")
		if code != 1 || !strings.Contains(out, `firewall.zones.wan.services[1]`) || !strings.Contains(out, "htps") {
			t.Errorf("apply of a broken config: exit %d\n%s\nwant exit 1 naming the key", code, out)
		}
		if after := nettest.NFTNormalized(f.mustRun(lab.NodeRouter, "nft", "list", "table", "inet", "edge")); after != before {
			t.Errorf("a refused apply changed the table")
		}
	})

	t.Run("a table changed behind its back is restored", func(t *testing.T) {
		var want string
		var norm func(string) string
		waitFor := func(what string, ok func() bool) {
			t.Helper()
			for i := 0; i < 100; i++ {
				if ok() {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			out, _ := f.run(lab.NodeRouter, "nft", "list", "table", "inet", "edge")
			t.Fatalf("%s: not restored within 20s:\n%s", what, textdiff.Unified("before", "now", textdiff.SplitLines(want), textdiff.SplitLines(norm(out)), 2, 200))
		}
		// Rules and sets as they were. Elements are left out: the bans come
		// back with the time they have left, and meters (per-source limit
		// state) start over, as after any apply.
		elements := regexp.MustCompile(`(?s)\n\s*elements = \{.*?\}`)
		norm = func(s string) string { return elements.ReplaceAllString(nettest.NFTNormalized(s), "") }
		want = norm(f.mustRun(lab.NodeRouter, "nft", "list", "table", "inet", "edge"))
		restored := func() bool {
			out, err := f.run(lab.NodeRouter, "nft", "list", "table", "inet", "edge")
			return err == nil && norm(out) == want
		}
		f.mustRun(lab.NodeRouter, "nft", "delete", "table", "inet", "edge")
		waitFor("table inet edge after a delete", restored)
		f.mustRun(lab.NodeRouter, "nft", "flush", "chain", "inet", "edge", "input")
		waitFor("table inet edge after a flushed chain", restored)
		metrics := f.mustRun(lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9711/metrics")
		for _, want := range []string{`edge_firewall_drift_restores_total{what="table"} 1`, `edge_firewall_drift_restores_total{what="rules"} 1`, "edge_firewall_bans 1"} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("restart keeps bans, cleanup keeps foreign tables", func(t *testing.T) {
		f.writeConfig("")
		f.mustEdgectl("fw", "ban", lab.OutsideUSAddr4, "--for", "1h")
		f.p.Signal(syscall.SIGKILL)
		<-f.p.Done()
		// Dead daemon, ruleset in place: the ban still drops.
		if got := f.dial(lab.NodeOutsideUS, lab.RouterWANAddr4+":22"); got != "timeout" {
			t.Errorf("with the daemon killed, banned outside-us to ssh = %q, want timeout", got)
		}
		f.mustRun(lab.NodeRouter, "nft", "delete", "table", "inet", "edge")
		f.start()
		if got := f.dial(lab.NodeOutsideUS, lab.RouterWANAddr4+":22"); got != "timeout" {
			t.Errorf("after a restart, banned outside-us to ssh = %q, want timeout (the ban is restored from the state store)", got)
		}
		// A ban lifted while an apply waits stays lifted through the
		// rollback to the ruleset from before it.
		cfg, _ := os.ReadFile(f.cfg)
		os.WriteFile(f.cfg, []byte(strings.Replace(string(cfg), "services: [ssh]", "services: [ssh, https]", 1)), 0o644)
		f.mustEdgectl("fw", "apply", "--confirm", "5s")
		applied := time.Now()
		f.mustEdgectl("fw", "unban", lab.OutsideUSAddr4)
		time.Sleep(time.Until(applied.Add(6 * time.Second)))
		if !strings.Contains(f.p.Log(), `msg="rolled back"`) {
			t.Errorf("no rollback logged")
		}
		if got := f.dial(lab.NodeOutsideUS, lab.RouterWANAddr4+":22"); !strings.HasPrefix(got, "from=") {
			t.Errorf("after unban and a rollback, outside-us to ssh = %q, want it through", got)
		}
		f.stop()
		if out, err := f.l.Run(ctx, lab.NodeRouter, bin("edge-firewall"), "-cleanup", "-config", f.cfg); err != nil {
			t.Fatalf("-cleanup: %v\n%s", err, out)
		}
		if got := f.mustRun(lab.NodeRouter, "nft", "list", "tables"); got != "table ip foreign\n" {
			t.Errorf("after -cleanup, tables = %q, want only the foreign one", got)
		}
		if got := f.mustRun(lab.NodeRouter, "nft", "list", "table", "ip", "foreign"); got != foreignTable {
			t.Errorf("the foreign table changed:\n%s", got)
		}
	})
}

// TestFirewallBootRuleset: the ruleset -render writes is what the daemon
// would apply, it loads with nft -f before the daemon runs (the router is
// never open between boot and the daemon's start), and the daemon then
// takes it over.
func TestFirewallBootRuleset(t *testing.T) {
	f := newFWLab(t, "")
	ctx := context.Background()
	out, err := f.l.Run(ctx, lab.NodeRouter, bin("edge-firewall"), "-render", "-config", f.cfg)
	if err != nil {
		t.Fatalf("-render: %v\n%s", err, out)
	}
	script := filepath.Join(f.dir, "boot.nft")
	os.WriteFile(script, out, 0o644)
	// The boot script has flow offload, which this kernel lacks; the
	// module's fallback is the script without it.
	if msg, err := f.l.Run(ctx, lab.NodeRouter, "nft", "-f", script); err == nil {
		t.Log("this kernel loads the flowtable")
	} else if !strings.Contains(string(msg), "flowtable") {
		t.Fatalf("nft -f of the boot script failed for another reason: %v\n%s", err, msg)
	}
	cmd := f.l.Command(ctx, lab.NodeRouter, bin("edge-firewall"), "-render", "-config", f.cfg)
	cmd.Env = append(os.Environ(), "EDGE_FIREWALL_NO_OFFLOAD=1")
	noOffload, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(script, noOffload, 0o644)
	f.mustRun(lab.NodeRouter, "nft", "-f", script)
	f.serve(lab.NodeRouter, "-tcp", ":22", "-tcp", ":80")
	f.serve(lab.NodeOutsideDE, "-tcp", ":7000")
	if got := f.dial(lab.NodeOutsideDE, lab.RouterWANAddr4+":80"); got != "timeout" {
		t.Errorf("boot ruleset: outside-de to the router's 80 = %q, want timeout", got)
	}
	if got := f.dial(lab.NodeClient, lab.OutsideDEAddr4+":7000"); !strings.HasPrefix(got, "from="+lab.RouterWANAddr4+" ") {
		t.Errorf("boot ruleset: masquerade = %q", got)
	}
	booted := f.mustRun(lab.NodeRouter, "nft", "list", "table", "inet", "edge")
	f.start()
	running := f.mustRun(lab.NodeRouter, "nft", "list", "table", "inet", "edge")
	if nettest.NFTNormalized(booted) != nettest.NFTNormalized(running) {
		t.Errorf("the daemon's ruleset differs from the boot ruleset:\nboot:\n%s\ndaemon:\n%s", booted, running)
	}
}

// TestFirewallBlocklist: a 100k-prefix blocklist from a file loads whole
// (the element count reads back exact) and drops what it lists.
func TestFirewallBlocklist(t *testing.T) {
	const n = 100000
	f := newFWLab(t, "")
	var b strings.Builder
	b.WriteString("# test blocklist\n")
	// 100k distinct /24s in 10.0.0.0/8 and 11.0.0.0/8 (none adjacent, so
	// none merge), plus outside-us's network.
	for i := 0; i < n-1; i++ {
		fmt.Fprintf(&b, "%d.%d.%d.0/24\n", 10+i/32768, (i/128)%256, (i%128)*2)
	}
	b.WriteString("203.0.113.0/24\n")
	list := filepath.Join(f.dir, "blocklist.txt")
	os.WriteFile(list, []byte(b.String()), 0o644)
	f.writeConfig(fmt.Sprintf(`  sets:
    blocklist: {file: %s}
`, list))
	cfg, _ := os.ReadFile(f.cfg)
	cfg = []byte(strings.Replace(string(cfg), "  rules:\n", "  rules:\n    - {name: drop-blocklist, from: wan, to: any, source_set: blocklist, action: drop}\n", 1))
	os.WriteFile(f.cfg, cfg, 0o644)
	f.serve(lab.NodeRouter, "-tcp", ":22")
	f.start()
	out := f.mustRun(lab.NodeRouter, "nft", "-j", "list", "set", "inet", "edge", "blocklist_v4")
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, o := range doc.Nftables {
		if o.Set != nil {
			got = len(o.Set.Elem)
		}
	}
	if got != n {
		t.Errorf("blocklist_v4 holds %d elements, want %d", got, n)
	}
	if got := f.dial(lab.NodeOutsideUS, lab.RouterWANAddr4+":22"); got != "timeout" {
		t.Errorf("listed outside-us to ssh = %q, want timeout", got)
	}
	if got := f.dial(lab.NodeOutsideDE, lab.RouterWANAddr4+":22"); !strings.HasPrefix(got, "from=") {
		t.Errorf("unlisted outside-de to ssh = %q", got)
	}
}

// TestFirewallIntraZone: lan hosts on br-lan reach each other through the
// router's bridge, with br_netfilter passing bridged traffic to the
// router's forward chain (bridge-nf-call-iptables=1, as on any host with
// Docker) and without it. The sysctl is per network namespace (Linux
// 5.3 and later): it is set in the lab's router only.
//
//	host11 192.168.1.11 --lan-host11--+
//	                                  br-lan (router) edge-firewall
//	nas    192.168.1.10 :80 --lan-nas-+
func TestFirewallIntraZone(t *testing.T) {
	f := newFWLab(t, "")
	setBridgeNF := func(on bool) {
		t.Helper()
		v := "0"
		if on {
			v = "1"
		}
		for _, key := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"} {
			f.mustRun(lab.NodeRouter, "sysctl", "-q", "-w", key+"="+v)
			if got := strings.TrimSpace(f.mustRun(lab.NodeRouter, "sysctl", "-n", key)); got != v {
				t.Fatalf("%s in the router = %s, want %s", key, got, v)
			}
		}
	}
	f.serve(lab.NodeNAS, "-tcp", ":80")
	nas4, nas6 := lab.NASAddr4+":80", "["+lab.NASAddr6+"]:80"
	reach := func(what string, want bool) {
		t.Helper()
		for _, addr := range []string{nas4, nas6} {
			got := f.dial(lab.NodeHost11, addr)
			if ok := strings.HasPrefix(got, "from="); ok != want {
				t.Errorf("%s: host11 to the nas at %s = %q, want it through: %v", what, addr, got, want)
			}
		}
	}

	// The lan zone's input is accept, so its intra-zone policy defaults
	// to accept.
	setBridgeNF(true)
	f.start()
	reach("bridge-nf-call-iptables=1, intra default", true)
	setBridgeNF(false)
	reach("bridge-nf-call-iptables=0, intra default", true)

	// intra: drop isolates the lan's hosts from each other, where bridged
	// traffic passes through netfilter at all.
	cfg, _ := os.ReadFile(f.cfg)
	os.WriteFile(f.cfg, []byte(strings.Replace(string(cfg), "      input: accept\n", "      input: accept\n      intra: drop\n", 1)), 0o644)
	f.mustEdgectl("fw", "apply")
	setBridgeNF(true)
	reach("bridge-nf-call-iptables=1, intra: drop", false)
	// The router itself stays reachable, and the internet too.
	if got := f.dial(lab.NodeHost11, lab.RouterLANAddr4+":22"); got != "refused" && !strings.HasPrefix(got, "from=") {
		t.Errorf("intra: drop: host11 to the router = %q, want an answer", got)
	}
	setBridgeNF(false)
	reach("bridge-nf-call-iptables=0, intra: drop (bridged traffic bypasses netfilter)", true)
}

// TestFirewallReject: a zone whose input is reject answers TCP with a
// reset, as a closed port does (nmap: closed), and other protocols with
// ICMP or ICMPv6 port unreachable, over IPv4 and IPv6; a dropped port
// stays silent (nmap: filtered).
func TestFirewallReject(t *testing.T) {
	f := newFWLab(t, "")
	cfg, _ := os.ReadFile(f.cfg)
	os.WriteFile(f.cfg, []byte(strings.Replace(string(cfg), "      log_drops: true\n", "      log_drops: true\n      input: reject\n", 1)), 0o644)
	f.serve(lab.NodeRouter, "-tcp", ":22")
	f.start()
	states := func(args ...string) map[string]string {
		t.Helper()
		out := f.mustRun(lab.NodeOutsideDE, append([]string{"nmap", "-n", "-Pn", "--max-retries", "2", "-oG", "-"}, args...)...)
		got := map[string]string{}
		for _, m := range regexp.MustCompile(`(\d+)/(open|closed|filtered|open\|filtered)/(tcp|udp)`).FindAllStringSubmatch(out, -1) {
			got[m[1]+"/"+m[3]] = m[2]
		}
		return got
	}
	want := map[string]string{"22/tcp": "open", "23/tcp": "filtered", "81/tcp": "closed"}
	for _, target := range [][]string{{lab.RouterWANAddr4}, {"-6", lab.RouterWANAddr6}} {
		if got := states(append([]string{"-sS", "-p", "22,23,81"}, target...)...); !cmp.Equal(got, want) {
			t.Errorf("nmap -sS %v from outside-de = %v, want %v (a reset for 81, nothing for the dropped 23)", target, got, want)
		}
		if got := states(append([]string{"-sU", "-p", "5353"}, target...)...); got["5353/udp"] != "closed" {
			t.Errorf("nmap -sU %v from outside-de = %v, want 5353/udp closed (ICMP port unreachable)", target, got)
		}
	}
}

// TestFirewallForwardLimit: a per-source limit on a port forward applies
// in the forward path, where the DNATed traffic flows: from one source,
// ten new connections to the forward pass within the window and the
// eleventh is dropped, while another source is untouched. A limit on the
// forwarded port as a service of the router, which could never apply,
// is refused naming its key.
func TestFirewallForwardLimit(t *testing.T) {
	f := newFWLab(t, "")
	limit := func(line string) {
		t.Helper()
		f.writeConfig("")
		cfg, _ := os.ReadFile(f.cfg)
		os.WriteFile(f.cfg, []byte(strings.Replace(string(cfg), "      - {service: ssh, rate: 10/minute, burst: 10}\n",
			"      - {service: ssh, rate: 10/minute, burst: 10}\n      - "+line+"\n", 1)), 0o644)
	}
	limit("{name: web, service: 8080/tcp, rate: 10/minute, burst: 10}")
	out, err := f.l.Run(context.Background(), lab.NodeRouter, bin("edge-firewall"), "-check", "-config", f.cfg)
	if err == nil || !strings.Contains(string(out), "firewall.limits.per_source[1].service: 8080/tcp from zone wan is forwarded to 192.168.1.10 by firewall.port_forwards[0] (web)") {
		t.Errorf("-check of a limit on the forwarded port as a service: %v\n%s\nwant it refused, naming the key", err, out)
	}

	limit("{port_forward: web, rate: 10/minute, burst: 10}")
	f.serve(lab.NodeNAS, "-tcp", ":80")
	f.start()
	out2 := f.mustRun(lab.NodeRoadwarrior, bin("edge-probe"), "burst", "-n", "11", "-timeout", "1s", lab.RouterWANAddr4+":8080")
	if !strings.Contains(out2, "ok=10 timeout=1 ") || !strings.Contains(out2, "\n11 timeout\n") {
		t.Errorf("11 connections to the forward from roadwarrior:\n%s\nwant the first 10 through and the 11th dropped", out2)
	}
	want := "from=" + lab.OutsideDEAddr4 + " to=" + lab.NASAddr4 + ":80"
	if got := f.dial(lab.NodeOutsideDE, lab.RouterWANAddr4+":8080"); got != want {
		t.Errorf("another source through the forward = %q, want %q", got, want)
	}
	// The router's own ssh keeps its own limit, untouched by the forward's.
	if got := f.dial(lab.NodeRoadwarrior, lab.RouterWANAddr4+":22"); got != "refused" && !strings.HasPrefix(got, "from=") {
		t.Errorf("roadwarrior to the router's ssh after the forward's limit = %q, want an answer", got)
	}
	metrics := f.mustRun(lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9711/metrics")
	if !regexp.MustCompile(`edge_firewall_rule_packets_total\{chain="forward",rule="forward: limit web"\} [1-9]`).MatchString(metrics) {
		t.Errorf("the forward's limit rule counted nothing")
	}
}
