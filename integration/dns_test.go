//go:build integration

// edge-dns in the router of the standard lab, asked by real clients.
//
//	client 192.168.1.100 --br-lan-- router --------- internet ------+-- outside-de 198.51.100.10
//	                              192.168.1.1      192.0.2.1         +-- outside-us 203.0.113.10
//	                              edge-dns :53                       +-- services 172.31.53.10: knotd (secondary)
//
// Lan clients get the inside view and recursion's refusal only for outside
// clients; outside clients get answers chosen by their network (or the ECS
// subnet they send); nsupdate adds names with TSIG; Knot transfers the zone.

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homeedge/edge/integration/lab"
)

const dnsTSIG = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="

func dnsConfig(dir, extra string) string {
	return fmt.Sprintf(`version: 1
site:
  domain: example.net
  local_domain: home.arpa
  interfaces: {wan: wan, lan: br-lan}
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
admin: {socket_dir: %[1]s/run}
state_dir: %[1]s/state
dns:
  listen: ["0.0.0.0:53", "[::]:53"]
  metrics: {listen: "127.0.0.1:9710"}
  inside: [lan]
  zones:
    - name: example.net
      ns: [ns1.example.net]
      records:
        - {name: ns1, type: A, value: 192.0.2.1}
        - {name: "@", type: A, value: 192.0.2.1}
        - name: www
          type: A
          value: 192.0.2.80
          geo:
            - {networks: [198.51.100.0/24], value: 192.0.2.81}
            - {networks: [203.0.113.0/24], value: 192.0.2.82}
        - {name: www, type: AAAA, value: "2001:db8:2::80"}
        - {name: mail, type: A, value: 192.0.2.25}
        - {name: "@", type: MX, value: "10 mail.example.net."}
    - name: home.arpa
      records:
        - {name: nas, type: A, value: 192.168.1.10}
        - {name: nas, type: AAAA, value: "fd00:1::10"}
  views:
    - name: inside
      match: {networks: [lan]}
      records:
        - {name: www.example.net, type: A, value: 192.168.1.10}
  updates:
    keys:
      - {name: edge-vpn, secret: "%[2]s", zones: [home.arpa, example.net]}
      - {name: xfr, secret: "%[2]s"}
  transfers:
    secondaries:
      - {address: "172.31.53.10:53", key: xfr, zones: [example.net]}
%[3]s`, dir, dnsTSIG, extra)
}

// dig runs dig in node and returns the short answer.
func dig(t *testing.T, l *lab.Lab, node string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := l.Run(ctx, node, "dig", append([]string{"+time=2", "+tries=2"}, args...)...)
	if err != nil {
		t.Fatalf("dig %v: %v", args, err)
	}
	return string(out)
}

func digShort(t *testing.T, l *lab.Lab, node string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(dig(t, l, node, append(args, "+short")...))
}

type dnsLab struct {
	t   *testing.T
	l   *lab.Lab
	dir string
	cfg string
	p   *lab.Proc
}

func (d *dnsLab) start() {
	d.t.Helper()
	d.p = startDaemon(d.t, d.l, lab.NodeRouter, "edge-dns", d.cfg)
}

func (d *dnsLab) stop() {
	d.t.Helper()
	if err := d.p.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.p.Done():
	case <-time.After(15 * time.Second):
		d.t.Fatal("edge-dns did not stop")
	}
	if err := d.p.Wait(); err != nil {
		d.t.Errorf("edge-dns exit: %v", err)
	}
}

func newDNSLab(t *testing.T, extra string) *dnsLab {
	l := lab.ForTest(t, lab.Options{})
	dir := t.TempDir()
	d := &dnsLab{t: t, l: l, dir: dir, cfg: filepath.Join(dir, "edge.yaml")}
	if err := os.WriteFile(d.cfg, []byte(dnsConfig(dir, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start()
	return d
}

func TestDNSAnswers(t *testing.T) {
	d := newDNSLab(t, "")
	l := d.l
	tests := []struct {
		name string
		node string
		args []string
		want string
	}{
		{"lan gets the inside address", lab.NodeClient, []string{"@" + lab.RouterLANAddr4, "www.example.net", "A"}, "192.168.1.10"},
		{"lan gets no public AAAA", lab.NodeClient, []string{"@" + lab.RouterLANAddr4, "www.example.net", "AAAA"}, ""},
		{"lan over IPv6", lab.NodeClient, []string{"@" + lab.RouterLANAddr6, "www.example.net", "A"}, "192.168.1.10"},
		{"lan sees inside names", lab.NodeClient, []string{"@" + lab.RouterLANAddr4, "nas.home.arpa", "A"}, "192.168.1.10"},
		{"lan reverse: every name of the address", lab.NodeClient, []string{"@" + lab.RouterLANAddr4, "-x", "192.168.1.10"}, "nas.home.arpa.\nwww.example.net."},
		{"outside-de by network", lab.NodeOutsideDE, []string{"@" + lab.RouterWANAddr4, "www.example.net", "A"}, "192.0.2.81"},
		{"outside-us by network", lab.NodeOutsideUS, []string{"@" + lab.RouterWANAddr4, "www.example.net", "A"}, "192.0.2.82"},
		{"outside follows ECS", lab.NodeOutsideDE, []string{"@" + lab.RouterWANAddr4, "+subnet=203.0.113.0/24", "www.example.net", "A"}, "192.0.2.82"},
		{"outside gets public AAAA", lab.NodeOutsideDE, []string{"@" + lab.RouterWANAddr4, "www.example.net", "AAAA"}, "2001:db8:2::80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := digShort(t, l, tc.node, tc.args...); got != tc.want {
				t.Errorf("dig %v from %s = %q, want %q", tc.args, tc.node, got, tc.want)
			}
		})
	}

	// The ECS scope says the answer holds for the /24.
	out := dig(t, l, lab.NodeOutsideDE, "@"+lab.RouterWANAddr4, "+subnet=203.0.113.0/24", "www.example.net", "A")
	if !strings.Contains(out, "CLIENT-SUBNET: 203.0.113.0/24/24") {
		t.Errorf("ECS reply lacks scope /24:\n%s", out)
	}
	// Outside clients may not recurse, nor see inside names.
	for _, name := range []string{"www.other.org", "nas.home.arpa"} {
		if out := dig(t, l, lab.NodeOutsideDE, "@"+lab.RouterWANAddr4, name, "A"); !strings.Contains(out, "status: REFUSED") {
			t.Errorf("outside query for %s not refused:\n%s", name, out)
		}
	}
	// kdig agrees, over TCP too.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	kout, err := l.Run(ctx, lab.NodeOutsideUS, "kdig", "+tcp", "+short", "@"+lab.RouterWANAddr4, "www.example.net", "A")
	if err != nil || strings.TrimSpace(string(kout)) != "192.0.2.82" {
		t.Errorf("kdig +tcp = %q, %v", kout, err)
	}

	// Metrics, checked by promtool.
	metrics, err := l.Run(ctx, lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9710/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`edge_dns_queries_total{proto="udp",qtype="A",rcode="NOERROR",view="inside"}`, `edge_dns_queries_total{proto="tcp",qtype="A",rcode="NOERROR",view="none"} 1`, "edge_dns_zones 4"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(string(metrics))
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func nsupdate(t *testing.T, l *lab.Lab, node, key, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := l.Command(ctx, node, "nsupdate", "-y", "hmac-sha256:"+key)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestDNSUpdatesAndRestart(t *testing.T) {
	d := newDNSLab(t, "")
	l := d.l
	script := "server " + lab.RouterLANAddr4 + "\nzone home.arpa\nupdate add printer.home.arpa 60 A 192.168.1.20\nsend\n"
	if out, err := nsupdate(t, l, lab.NodeClient, "edge-vpn:"+dnsTSIG, script); err != nil {
		t.Fatalf("nsupdate: %v\n%s", err, out)
	}
	if got := digShort(t, l, lab.NodeClient, "@"+lab.RouterLANAddr4, "printer.home.arpa", "A"); got != "192.168.1.20" {
		t.Errorf("after nsupdate printer = %q", got)
	}
	if got := digShort(t, l, lab.NodeClient, "@"+lab.RouterLANAddr4, "-x", "192.168.1.20"); got != "printer.home.arpa." {
		t.Errorf("PTR of the new name = %q", got)
	}
	// The wrong key is refused and changes nothing.
	bad := "server " + lab.RouterLANAddr4 + "\nzone home.arpa\nupdate add evil.home.arpa 60 A 192.168.1.66\nsend\n"
	out, err := nsupdate(t, l, lab.NodeClient, "edge-vpn:d3Jvbmctd3Jvbmctd3Jvbmc=", bad)
	if err == nil || !strings.Contains(out, "NOTAUTH") {
		t.Errorf("nsupdate with a wrong key = %v\n%s\nwant a NOTAUTH failure", err, out)
	}
	if got := digShort(t, l, lab.NodeClient, "@"+lab.RouterLANAddr4, "evil.home.arpa", "A"); got != "" {
		t.Errorf("refused update is visible: %q", got)
	}
	// edgectl adds one too.
	sock := filepath.Join(d.dir, "run")
	if out, err := exec.Command(bin("edgectl"), "--socket-dir", sock, "record", "add", "tv.home.arpa", "A", "192.168.1.30").CombinedOutput(); err != nil {
		t.Fatalf("edgectl record add: %v\n%s", err, out)
	}

	// Both survive a restart, SIGKILL included.
	d.stop()
	d.start()
	if got := digShort(t, l, lab.NodeClient, "@"+lab.RouterLANAddr4, "printer.home.arpa", "A"); got != "192.168.1.20" {
		t.Errorf("after restart printer = %q", got)
	}
	d.p.Signal(syscall.SIGKILL)
	<-d.p.Done()
	d.start()
	if got := digShort(t, l, lab.NodeClient, "@"+lab.RouterLANAddr4, "tv.home.arpa", "A"); got != "192.168.1.30" {
		t.Errorf("after SIGKILL tv = %q", got)
	}
	out2, err := exec.Command(bin("edgectl"), "--socket-dir", sock, "record", "ls", "home.arpa").CombinedOutput()
	if err != nil || !strings.Contains(string(out2), "printer.home.arpa.") || !strings.Contains(string(out2), "dynamic") {
		t.Errorf("edgectl record ls = %v\n%s", err, out2)
	}

	// A broken zone file on SIGHUP keeps the old zone and names the line.
	zoneFile := filepath.Join(d.dir, "extra.zone")
	os.WriteFile(zoneFile, []byte("$ORIGIN example.net.\nftp IN A 192.0.2.21\nbroken IN A 300.1.1.1\n"), 0o644)
	cfg, _ := os.ReadFile(d.cfg)
	os.WriteFile(d.cfg, []byte(strings.Replace(string(cfg), "      ns: [ns1.example.net]\n", "      ns: [ns1.example.net]\n      file: "+zoneFile+"\n", 1)), 0o644)
	d.p.Signal(syscall.SIGHUP)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.p.WaitLog(ctx, "reload failed"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.p.Log(), "extra.zone") || !strings.Contains(d.p.Log(), "line: 3") {
		t.Errorf("reload failure does not name the file and line:\n%s", d.p.Log())
	}
	if got := digShort(t, l, lab.NodeOutsideDE, "@"+lab.RouterWANAddr4, "mail.example.net", "A"); got != "192.0.2.25" {
		t.Errorf("after a failed reload mail = %q", got)
	}
}

func knotConfig(dir string) string {
	return fmt.Sprintf(`server:
    rundir: "%[1]s"
    listen: %[2]s@53
    user: root:root
log:
  - target: stderr
    any: info
database:
    storage: "%[1]s/db"
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: %[3]s
remote:
  - id: primary
    address: %[4]s@53
    key: xfr
acl:
  - id: notify_from_primary
    address: %[4]s
    key: xfr
    action: notify
template:
  - id: default
    storage: "%[1]s/zones"
zone:
  - domain: example.net
    master: primary
    acl: notify_from_primary
`, dir, lab.ServicesAddr4, dnsTSIG, lab.RouterWANAddr4)
}

func TestDNSKnotSecondary(t *testing.T) {
	d := newDNSLab(t, "")
	l := d.l
	kdir := filepath.Join(d.dir, "knot")
	os.MkdirAll(kdir, 0o755)
	conf := filepath.Join(kdir, "knot.conf")
	os.WriteFile(conf, []byte(knotConfig(kdir)), 0o644)
	knot, err := l.Start(lab.NodeServices, "knotd", []string{"knotd", "-c", conf})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(server, name, typ string) string {
		return digShort(t, l, lab.NodeOutsideUS, "@"+server, name, typ)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if cond() {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s; knot log:\n%s", what, knot.Log())
	}
	// serial is the server's SOA serial, or "" while it does not answer
	// (knotd binds its sockets a moment after it starts).
	serial := func(server string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := l.Run(ctx, lab.NodeOutsideUS, "dig", "+time=2", "+tries=1", "+short", "@"+server, "example.net", "SOA")
		if err != nil {
			return ""
		}
		f := strings.Fields(string(out))
		if len(f) < 3 {
			return ""
		}
		return f[2]
	}
	waitFor("the first AXFR", func() bool {
		return serial(lab.ServicesAddr4) != "" && serial(lab.ServicesAddr4) == serial(lab.RouterWANAddr4)
	})
	for _, q := range [][2]string{{"mail.example.net", "A"}, {"example.net", "MX"}, {"www.example.net", "AAAA"}, {"example.net", "NS"}} {
		if a, b := ask(lab.RouterWANAddr4, q[0], q[1]), ask(lab.ServicesAddr4, q[0], q[1]); a != b || a == "" {
			t.Errorf("%s %s: edge-dns %q, knot %q", q[0], q[1], a, b)
		}
	}

	// A change goes out by NOTIFY and IXFR.
	time.Sleep(1100 * time.Millisecond) // serials follow the clock
	script := "server " + lab.RouterWANAddr4 + "\nzone example.net\nupdate add api.example.net 60 A 192.0.2.44\nsend\n"
	if out, err := nsupdate(t, l, lab.NodeOutsideDE, "edge-vpn:"+dnsTSIG, script); err != nil {
		t.Fatalf("nsupdate: %v\n%s", err, out)
	}
	waitFor("the change on knot", func() bool { return ask(lab.ServicesAddr4, "api.example.net", "A") == "192.0.2.44" })
	if serial(lab.ServicesAddr4) != serial(lab.RouterWANAddr4) {
		t.Errorf("serials differ after the change")
	}
	if !strings.Contains(knot.Log(), "IXFR") {
		t.Errorf("knot did not use IXFR:\n%s", knot.Log())
	}
	if !strings.Contains(d.p.Log(), `msg="notify sent"`) || !strings.Contains(d.p.Log(), "type=ixfr") {
		t.Errorf("edge-dns log lacks the NOTIFY and the IXFR:\n%s", d.p.Log())
	}
	// Nobody else may transfer.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, _ := l.Run(ctx, lab.NodeOutsideDE, "dig", "@"+lab.RouterWANAddr4, "example.net", "AXFR")
	if !strings.Contains(string(out), "Transfer failed") {
		t.Errorf("unsigned AXFR from outside was not refused:\n%s", out)
	}
}
