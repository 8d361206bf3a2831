//go:build integration

// edge-vpn in the router of the standard lab, with Debian's wireguard-go
// as the independent peer on the other end.
//
//	roadwarrior 172.31.77.10 --- internet --- router 192.0.2.1:51820 (wg0 10.100.0.1, embedded wireguard-go)
//	  wgrw0: the "laptop" peer                   edge-vpn, edge-dns
//	outside-us 203.0.113.10 --- internet       --br-lan-- nas 192.168.1.10, host11 192.168.1.11, client
//	  wgus0: the "guest" peer, limited to the nas
//	outside-de 198.51.100.10 --- internet
//	  wgde0: the "web" peer, limited to the nas's tcp/80
//	  wg2: a wireguard-go of its own, holding the name wg2 in
//	       /var/run/wireguard while the router reloads a wg2 in
//
// edge-vpn serves its embedded devices' UAPI sockets in <dir>/run/vpn and
// links them into /var/run/wireguard, where wg(8) looks, while the name
// is free there.
//
// Peers are added with edgectl, their configs go through wg-quick strip
// into wireguard-go, and traffic, names and limits are checked from both
// ends.

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homeedge/edge/integration/lab"
)

func vpnConfig(dir string) string {
	return fmt.Sprintf(`version: 1
site:
  domain: example.net
  local_domain: home.arpa
  interfaces: {wan: wan, lan: br-lan}
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
    vpn: [10.100.0.0/24, "fd00:100::/64"]
admin: {socket_dir: %[1]s/run}
state_dir: %[1]s/state
dns:
  listen: ["0.0.0.0:53", "[::]:53"]
  metrics: {listen: "127.0.0.1:9710"}
  inside: [lan, vpn]
  zones:
    - name: home.arpa
      records:
        - {name: nas, type: A, value: 192.168.1.10}
  updates:
    keys:
      - {name: edge-vpn, secret: "%[2]s", zones: [home.arpa]}
vpn:
  metrics: {listen: "127.0.0.1:9712"}
  reconcile: 1s
  wireguard:
    - interface: wg0
      pool: [vpn]
      endpoint: "192.0.2.1:51820"
      userspace: true
      access:
        groups:
          nas-only: [192.168.1.10/32]
          nas-dns: ["192.168.1.10 udp/53 tcp/53"]
    - interface: wg1
      listen_port: 51821
      pool: ["10.101.0.0/24"]
      endpoint: "192.0.2.1:51821"
      userspace: true
  names: {server: "127.0.0.1:53", key: edge-vpn, secret: "%[2]s"}
`, dir, dnsTSIG)
}

type vpnLab struct{ *daemonLab }

func (v *vpnLab) start() {
	v.t.Helper()
	v.p = startDaemon(v.t, v.l, lab.NodeRouter, "edge-vpn", v.cfg)
}

// confValues reads a key's comma-separated values from a wg-quick config.
func confValues(conf, key string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		k, val, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.TrimSpace(k) != key {
			continue
		}
		for _, f := range strings.Split(val, ",") {
			out = append(out, strings.TrimSpace(f))
		}
	}
	return out
}

// clientUp brings a wg-quick config up in node the way wg-quick would,
// with Debian's wireguard-go: wg-quick strip, wg setconf, addresses and
// routes for the allowed IPs.
func (v *vpnLab) clientUp(node, ifname, conf string) {
	v.t.Helper()
	path := filepath.Join(v.dir, ifname+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		v.t.Fatal(err)
	}
	stripped, err := exec.Command("wg-quick", "strip", path).Output()
	if err != nil {
		v.t.Fatalf("wg-quick strip: %v\n%s", err, conf)
	}
	os.WriteFile(path+".stripped", stripped, 0o600)
	if _, err := v.l.Start(node, "wireguard-go-"+ifname, []string{"wireguard-go", "-f", ifname}); err != nil {
		v.t.Fatal(err)
	}
	waitUntil(v.t, "wireguard-go's socket", func() bool {
		_, err := os.Stat("/var/run/wireguard/" + ifname + ".sock")
		return err == nil
	})
	v.mustRun(node, "wg", "setconf", ifname, path+".stripped")
	for _, a := range confValues(conf, "Address") {
		v.mustRun(node, "ip", "address", "add", a, "dev", ifname)
	}
	v.mustRun(node, "ip", "link", "set", ifname, "up")
	for _, r := range confValues(conf, "AllowedIPs") {
		v.mustRun(node, "ip", "route", "replace", r, "dev", ifname)
	}
}

// ping reports whether node reaches addr within a few tries.
func (v *vpnLab) ping(node, addr string, tries int) bool {
	for range tries {
		if _, err := v.run(node, "ping", "-c1", "-W1", addr); err == nil {
			return true
		}
	}
	return false
}

func TestVPN(t *testing.T) {
	v := &vpnLab{newDaemonLab(t)}
	l, dir := v.l, v.dir
	os.WriteFile(v.cfg, []byte(vpnConfig(dir)), 0o644)
	dnsP := startDaemon(t, l, lab.NodeRouter, "edge-dns", v.cfg)
	v.start()
	if !strings.Contains(v.p.Log(), "kind=userspace") {
		t.Errorf("the interface's kind is not logged:\n%s", v.p.Log())
	}

	// laptop: edge-vpn makes the key pair; the config and its QR code.
	laptopPNG := filepath.Join(dir, "laptop.png")
	out := v.mustEdgectl("-o", "json", "peer", "add", "laptop", "--qr-png", laptopPNG)
	var laptop struct {
		Peer       struct{ Addresses []string }
		Config     string
		PrivateKey bool   `json:"private_key"`
		QRPNG      []byte `json:"qr_png"`
	}
	if err := json.Unmarshal([]byte(out), &laptop); err != nil {
		t.Fatalf("peer add -o json: %v\n%s", err, out)
	}
	if !laptop.PrivateKey || !strings.Contains(laptop.Config, "PrivateKey = ") {
		t.Fatalf("peer add without --pubkey gave no private key:\n%s", laptop.Config)
	}
	if b, err := os.ReadFile(laptopPNG); err != nil || !bytes.Equal(b, laptop.QRPNG) || len(b) == 0 {
		t.Errorf("-o json --qr-png wrote %d bytes (%v), want the answer's PNG (%d bytes)", len(b), err, len(laptop.QRPNG))
	}
	if strings.Join(laptop.Peer.Addresses, " ") != "10.100.0.2 fd00:100::2" {
		t.Errorf("laptop's addresses = %v, want the first free of the pool", laptop.Peer.Addresses)
	}
	t.Run("QR code decodes to the config", func(t *testing.T) {
		png := filepath.Join(dir, "laptop.png")
		os.WriteFile(png, laptop.QRPNG, 0o600)
		got, err := exec.Command("zbarimg", "--raw", "-q", png).Output()
		if err != nil {
			t.Fatalf("zbarimg: %v", err)
		}
		if strings.TrimSuffix(string(got), "\n") != laptop.Config {
			t.Errorf("the QR code decodes to\n%s\nwant\n%s", got, laptop.Config)
		}
	})
	v.clientUp(lab.NodeRoadwarrior, "wgrw0", laptop.Config)

	t.Run("laptop reaches the lan and resolves names", func(t *testing.T) {
		if !v.ping(lab.NodeRoadwarrior, lab.NASAddr4, 10) {
			t.Fatalf("laptop cannot ping the nas through the tunnel")
		}
		if !v.ping(lab.NodeRoadwarrior, lab.Host11Addr4, 3) {
			t.Errorf("laptop cannot ping host11")
		}
		if got := strings.TrimSpace(v.mustRun(lab.NodeRoadwarrior, "dig", "+short", "+time=2", "@10.100.0.1", "nas.home.arpa")); got != lab.NASAddr4 {
			t.Errorf("laptop resolves nas.home.arpa through the tunnel as %q", got)
		}
		for _, q := range [][]string{{"laptop.vpn.home.arpa", "A", "10.100.0.2"}, {"laptop.vpn.home.arpa", "AAAA", "fd00:100::2"}, {"-x", "10.100.0.2", "laptop.vpn.home.arpa."}} {
			var got string
			for range 20 {
				if got = strings.TrimSpace(v.mustRun(lab.NodeClient, "dig", "+short", "+time=2", "@"+lab.RouterLANAddr4, q[0], q[1])); got == q[2] {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got != q[2] {
				t.Errorf("a lan client asks %s %s: %q, want %q", q[0], q[1], got, q[2])
			}
		}
	})

	// guest keeps its own key, has a preshared key and may reach the nas
	// only.
	guestPriv := strings.TrimSpace(v.mustRun(lab.NodeOutsideUS, "wg", "genkey"))
	pubCmd := exec.Command("wg", "pubkey")
	pubCmd.Stdin = strings.NewReader(guestPriv)
	guestPubB, err := pubCmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	guestPub := strings.TrimSpace(string(guestPubB))
	guestConf := v.mustEdgectl("-o", "conf", "peer", "add", "guest", "--pubkey", guestPub, "--psk", "--group", "nas-only")
	if strings.Contains(guestConf, "\nPrivateKey = ") || !strings.Contains(guestConf, "\nPresharedKey = ") {
		t.Fatalf("guest's config (own key, psk):\n%s", guestConf)
	}
	guestConf = strings.Replace(guestConf, "[Interface]\n", "[Interface]\nPrivateKey = "+guestPriv+"\n", 1)
	v.clientUp(lab.NodeOutsideUS, "wgus0", guestConf)

	t.Run("access limits are enforced by the router", func(t *testing.T) {
		if !v.ping(lab.NodeOutsideUS, lab.NASAddr4, 10) {
			t.Fatalf("guest cannot ping the nas, which it may reach")
		}
		if v.ping(lab.NodeOutsideUS, lab.Host11Addr4, 2) {
			t.Errorf("guest pings host11, which its group does not allow")
		}
		if got := v.mustRun(lab.NodeRouter, "nft", "list", "table", "inet", "edge_vpn"); !strings.Contains(got, "chain peer_guest") {
			t.Errorf("table inet edge_vpn lacks guest's chain:\n%s", got)
		}
	})

	t.Run("access limited to a port", func(t *testing.T) {
		// web may reach the nas on tcp/80 only: its own limit, given
		// with edgectl peer add --access.
		probe, err := l.Start(lab.NodeNAS, "edge-probe-nas", []string{bin("edge-probe"), "serve", "-tcp", ":80", "-tcp", ":8080"})
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Stop(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := probe.WaitLog(ctx, "serving"); err != nil {
			t.Fatal(err)
		}
		webConf := v.mustEdgectl("-o", "conf", "peer", "add", "web", "--access", "192.168.1.10 tcp/80")
		v.clientUp(lab.NodeOutsideDE, "wgde0", webConf)
		defer v.mustEdgectl("peer", "rm", "web")
		webAddr := strings.Split(confValues(webConf, "Address")[0], "/")[0]
		dial := func(addr string) string {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			out, _ := l.Run(ctx, lab.NodeOutsideDE, bin("edge-probe"), "dial", "-timeout", "1s", addr)
			return strings.TrimSpace(string(out))
		}
		var got string
		for range 10 {
			if got = dial(lab.NASAddr4 + ":80"); strings.HasPrefix(got, "from=") {
				break
			}
		}
		if want := "from=" + webAddr + " to=" + lab.NASAddr4 + ":80"; got != want {
			t.Errorf("web dials the nas on tcp/80: %q, want %q", got, want)
		}
		if got := dial(lab.NASAddr4 + ":8080"); got != "timeout" {
			t.Errorf("web dials the nas on tcp/8080, which its limit does not allow: %q, want timeout", got)
		}
		if v.ping(lab.NodeOutsideDE, lab.NASAddr4, 2) {
			t.Errorf("web pings the nas, which its limit does not allow")
		}
		table := v.mustRun(lab.NodeRouter, "nft", "list", "table", "inet", "edge_vpn")
		if !strings.Contains(table, `ip daddr 192.168.1.10 tcp dport 80 return comment "peer web: allowed tcp/80 (ip)"`) {
			t.Errorf("table inet edge_vpn lacks web's port rule:\n%s", table)
		}
		// A group's services, and a mistake named by its flag.
		v.mustEdgectl("peer", "add", "resolver", "--pubkey", "qPF5acLKsaL72O9LF4frQH1fk2FEcab4kyyJHlxD9hM=", "--group", "nas-dns")
		defer v.mustEdgectl("peer", "rm", "resolver")
		table = v.mustRun(lab.NodeRouter, "nft", "list", "table", "inet", "edge_vpn")
		for _, want := range []string{
			`ip daddr 192.168.1.10 tcp dport 53 return comment "peer resolver: allowed tcp/53 (ip)"`,
			`ip daddr 192.168.1.10 udp dport 53 return comment "peer resolver: allowed udp/53 (ip)"`,
		} {
			if !strings.Contains(table, want) {
				t.Errorf("table inet edge_vpn lacks %s:\n%s", want, table)
			}
		}
		if code, out := v.edgectl("peer", "add", "x", "--pubkey", "6h1NQ9G+DQeiDdVt3u6yxdBHawA5lHFONHVTHeIcBkU=", "--access", "192.168.1.10 443/tcp"); code != 1 || !strings.Contains(out, `--access "192.168.1.10 443/tcp": 443/tcp: write the protocol first: tcp/443`) {
			t.Errorf("peer add --access with the port first: exit %d %q", code, out)
		}
	})

	t.Run("names survive a DNS server that is down", func(t *testing.T) {
		// The peer is added while edge-dns is stopped; its name is
		// published once edge-dns is back, by a later reconcile.
		if err := dnsP.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		v.mustEdgectl("peer", "add", "late", "--pubkey", "Ek0BvdmmdlG1J2jsxAIOMYxNC6VMJW2T8imI3fV4wmg=")
		if !strings.Contains(v.p.Log(), "peer names not published; retrying at the next reconcile") {
			t.Errorf("the failed update is not logged")
		}
		startDaemon(t, l, lab.NodeRouter, "edge-dns", v.cfg)
		var got string
		for range 50 {
			if got = strings.TrimSpace(v.mustRun(lab.NodeClient, "dig", "+short", "+time=1", "@"+lab.RouterLANAddr4, "late.vpn.home.arpa")); got != "" {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got == "" {
			t.Errorf("late.vpn.home.arpa was not published after edge-dns came back")
		}
		v.mustEdgectl("peer", "rm", "late")
	})

	t.Run("a second interface", func(t *testing.T) {
		key := "kR5tbtQuP9kH1XgMWq4uvbDR0KsSLajK8bsS2ErwRQA="
		out := v.mustEdgectl("-o", "json", "peer", "add", "tablet", "--interface", "wg1", "--pubkey", key)
		if !strings.Contains(out, `"10.101.0.2"`) {
			t.Errorf("a peer of wg1 did not get wg1's pool's first address:\n%s", out)
		}
		if got := v.mustRun(lab.NodeRouter, "wg", "show", "wg1", "peers"); strings.TrimSpace(got) != key {
			t.Errorf("wg1's peers = %q, want the tablet's key", got)
		}
		if got := v.mustRun(lab.NodeRouter, "wg", "show", "wg1", "listen-port"); strings.TrimSpace(got) != "51821" {
			t.Errorf("wg1 listens on %q", got)
		}
		if code, out := v.edgectl("peer", "add", "x", "--interface", "wg9"); code != 1 || !strings.Contains(out, `no interface "wg9"; vpn.wireguard has wg0, wg1`) {
			t.Errorf("unknown interface: exit %d %q", code, out)
		}
		v.mustEdgectl("peer", "rm", "tablet")
	})

	t.Run("a failed reload leaves the links as they were", func(t *testing.T) {
		// wg2 opens, wg3 cannot (edge-probe holds its port), so the
		// reload fails after wg2 was created: wg2 must be gone again.
		// Another namespace's wireguard-go holds the name wg2 in
		// /var/run/wireguard throughout, which must not matter.
		other, err := l.Start(lab.NodeOutsideDE, "wireguard-go-wg2", []string{"wireguard-go", "-f", "wg2"})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Stop(5 * time.Second)
		waitUntil(t, "outside-de's wg2 socket", func() bool {
			_, err := os.Stat("/var/run/wireguard/wg2.sock")
			return err == nil
		})
		ownSocket := filepath.Join(dir, "run", "vpn", "wg2.sock")
		squat, err := l.Start(lab.NodeRouter, "udp-51829", []string{bin("edge-probe"), "serve", "-udp", ":51829"})
		if err != nil {
			t.Fatal(err)
		}
		defer squat.Stop(5 * time.Second)
		waitUntil(t, "edge-probe on udp 51829", func() bool {
			out, _ := v.run(lab.NodeRouter, "ss", "-Hlun", "sport = :51829")
			return strings.TrimSpace(out) != ""
		})
		links := func() string {
			var names []string
			for _, line := range strings.Split(v.mustRun(lab.NodeRouter, "ip", "-o", "link", "show"), "\n") {
				if f := strings.Fields(line); len(f) > 1 {
					names = append(names, f[1])
				}
			}
			return strings.Join(names, " ")
		}
		generation := func() (runner, service int64) {
			var rows []struct {
				Status struct {
					Config struct{ Generation int64 }
					Detail struct{ Generation int64 }
				}
			}
			if err := json.Unmarshal([]byte(v.mustEdgectl("-o", "json", "status", "vpn")), &rows); err != nil || len(rows) != 1 {
				t.Fatalf("status: %v %+v", err, rows)
			}
			return rows[0].Status.Config.Generation, rows[0].Status.Detail.Generation
		}
		withIfaces := func(extra string) string {
			return strings.Replace(vpnConfig(dir), "  names: {server:", extra+"  names: {server:", 1)
		}
		wg2 := `    - {interface: wg2, listen_port: 51822, pool: ["10.102.0.0/24"], endpoint: "192.0.2.1:51822", userspace: true}
`
		wg3 := `    - {interface: wg3, listen_port: 51829, pool: ["10.103.0.0/24"], endpoint: "192.0.2.1:51829", userspace: true}
`
		before := links()
		gen, _ := generation()
		os.WriteFile(v.cfg, []byte(withIfaces(wg2+wg3)), 0o644)
		if code, out := v.edgectl("reload", "vpn"); code == 0 || !strings.Contains(out, "interface wg3: open wireguard wg3") {
			t.Errorf("reload with wg3 on a taken port: exit %d %q", code, out)
		} else {
			t.Logf("reload with wg3 on a taken port: %s", out)
		}
		if after := links(); after != before {
			t.Errorf("links before the failed reload: %s\nafter: %s", before, after)
		}
		if _, err := os.Lstat(ownSocket); err == nil {
			t.Errorf("wg2's UAPI socket outlives the failed reload")
		}
		if r, s := generation(); r != gen || s != gen {
			t.Errorf("after a failed reload: runner generation %d, service %d; want %d for both", r, s, gen)
		}

		os.WriteFile(v.cfg, []byte(withIfaces(wg2)), 0o644)
		v.mustEdgectl("reload", "vpn")
		// wg(8) finds the router's wg2 as docs/vpn.md says, in a mount
		// namespace whose /run/wireguard is edge-vpn's runtime directory.
		wgShow := fmt.Sprintf("mkdir -p /run/wireguard && mount --bind %s /run/wireguard && exec wg show wg2 listen-port", filepath.Dir(ownSocket))
		if got := strings.TrimSpace(v.mustRun(lab.NodeRouter, "unshare", "--mount", "sh", "-c", wgShow)); got != "51822" {
			t.Errorf("wg2 after the reload listens on %q", got)
		}
		if !regexp.MustCompile(`msg="wg\(8\) cannot find the interface by its name; see wg show in docs/vpn.md" daemon=vpn interface=wg2 uapi_socket=\S+/run/vpn/wg2.sock reason="not linked as /var/run/wireguard/wg2.sock, where wg\(8\) looks: another device serves that name`).MatchString(v.p.Log()) {
			t.Errorf("the log does not say why wg(8) cannot see wg2:\n%s", v.p.Log())
		}
		if dest, err := os.Readlink("/var/run/wireguard/wg2.sock"); err == nil {
			t.Errorf("/var/run/wireguard/wg2.sock, outside-de's, was replaced by a link to %s", dest)
		}
		if r, s := generation(); r != gen+1 || s != gen+1 {
			t.Errorf("after the reload: runner generation %d, service %d; want %d for both", r, s, gen+1)
		}
		os.WriteFile(v.cfg, []byte(vpnConfig(dir)), 0o644)
		v.mustEdgectl("reload", "vpn")
		if after := links(); after != before {
			t.Errorf("links before wg2 came and went: %s\nafter: %s", before, after)
		}
		if _, err := os.Lstat(ownSocket); err == nil {
			t.Errorf("wg2's UAPI socket outlives wg2")
		}
		if out, err := v.run(lab.NodeOutsideDE, "wg", "show", "wg2", "listen-port"); err != nil {
			t.Errorf("outside-de's wg2 after the router's came and went: %v %s", err, out)
		}
	})

	t.Run("duplicates are refused", func(t *testing.T) {
		if code, out := v.edgectl("peer", "add", "laptop"); code != 1 || !strings.Contains(out, "peer laptop exists") {
			t.Errorf("second laptop: exit %d %q", code, out)
		}
		if code, out := v.edgectl("peer", "add", "other", "--pubkey", guestPub); code != 1 || !strings.Contains(out, "already peer guest's") {
			t.Errorf("guest's key again: exit %d %q", code, out)
		}
		if code, out := v.edgectl("peer", "add", "Bad_Name"); code != 1 || !strings.Contains(out, "invalid peer name") {
			t.Errorf("bad name: exit %d %q", code, out)
		}
		if code, out := v.edgectl("peer", "add", "x", "--pubkey", "c2hvcnQ="); code != 1 || !strings.Contains(out, "public key") {
			t.Errorf("short key: exit %d %q", code, out)
		}
	})

	serverPub := confValues(laptop.Config, "PublicKey")[0]
	rehandshake := func() {
		// Forget the session, as a new client start would.
		v.mustRun(lab.NodeRoadwarrior, "wg", "set", "wgrw0", "peer", serverPub, "remove")
		v.mustRun(lab.NodeRoadwarrior, "wg", "setconf", "wgrw0", filepath.Join(dir, "wgrw0.conf.stripped"))
	}
	t.Run("disabled peers cannot handshake", func(t *testing.T) {
		v.mustEdgectl("peer", "disable", "laptop")
		rehandshake()
		if v.ping(lab.NodeRoadwarrior, lab.NASAddr4, 3) {
			t.Errorf("a disabled peer still gets through")
		}
		if hs := v.mustRun(lab.NodeRoadwarrior, "wg", "show", "wgrw0", "latest-handshakes"); !strings.HasSuffix(strings.TrimSpace(hs), "\t0") {
			t.Errorf("a disabled peer got a handshake: %q", hs)
		}
		v.mustEdgectl("peer", "enable", "laptop")
		if !v.ping(lab.NodeRoadwarrior, lab.NASAddr4, 15) {
			t.Errorf("re-enabled laptop cannot ping the nas")
		}
	})

	t.Run("expired peers are disabled", func(t *testing.T) {
		v.mustEdgectl("peer", "add", "temp", "--expires", "2s")
		time.Sleep(4 * time.Second)
		if out := v.mustEdgectl("peer", "show", "temp"); !regexp.MustCompile(`state:\s+expired`).MatchString(out) && !regexp.MustCompile(`state:\s+disabled \(expired\)`).MatchString(out) {
			t.Errorf("after its expiry, peer show temp:\n%s", out)
		}
		var peers []struct {
			Name      string `json:"name"`
			PublicKey string `json:"public_key"`
		}
		json.Unmarshal([]byte(v.mustEdgectl("-o", "json", "peer", "ls")), &peers)
		onDevice := v.mustRun(lab.NodeRouter, "wg", "show", "wg0", "peers")
		for _, p := range peers {
			if p.Name == "temp" && strings.Contains(onDevice, p.PublicKey) {
				t.Errorf("the expired peer is still on the device")
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := v.mustRun(lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9712/metrics")
		for _, re := range []string{
			`edge_vpn_peer_last_handshake_seconds\{interface="wg0",peer="laptop"\} 1\.\d+e\+09`,
			`edge_vpn_peer_receive_bytes_total\{interface="wg0",peer="laptop"\} [1-9]`,
			`edge_vpn_peer_enabled\{interface="wg0",peer="temp"\} 0`,
			`edge_vpn_peers\{interface="wg0",state="active"\} 2`,
		} {
			if !regexp.MustCompile(re).MatchString(m) {
				t.Errorf("metrics lack %s", re)
			}
		}
		check := exec.Command("promtool", "check", "metrics")
		check.Stdin = strings.NewReader(m)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool: %v\n%s", err, out)
		}
	})

	t.Run("a killed daemon keeps every peer", func(t *testing.T) {
		before := v.mustEdgectl("peer", "ls")
		v.p.Signal(syscall.SIGKILL)
		<-v.p.Done()
		v.start()
		after := v.mustEdgectl("peer", "ls")
		cols := func(s string) string { // name, interface, addresses, state
			var b strings.Builder
			for _, line := range strings.Split(s, "\n") {
				f := strings.Fields(line)
				if len(f) >= 4 {
					b.WriteString(strings.Join(f[:4], " ") + "\n")
				}
			}
			return b.String()
		}
		if cols(before) != cols(after) {
			t.Errorf("peers before the kill:\n%s\nafter the restart:\n%s", before, after)
		}
		rehandshake()
		if !v.ping(lab.NodeRoadwarrior, lab.NASAddr4, 15) {
			t.Errorf("after the restart, laptop cannot ping the nas")
		}
	})

	t.Run("remove", func(t *testing.T) {
		var peers []struct {
			Name      string `json:"name"`
			PublicKey string `json:"public_key"`
		}
		json.Unmarshal([]byte(v.mustEdgectl("-o", "json", "peer", "ls")), &peers)
		v.mustEdgectl("peer", "rm", "laptop")
		onDevice := v.mustRun(lab.NodeRouter, "wg", "show", "wg0", "peers")
		for _, p := range peers {
			if p.Name == "laptop" && strings.Contains(onDevice, p.PublicKey) {
				t.Errorf("the removed peer is still on the device")
			}
		}
		if got := strings.TrimSpace(v.mustRun(lab.NodeClient, "dig", "+short", "@"+lab.RouterLANAddr4, "laptop.vpn.home.arpa")); got != "" {
			t.Errorf("the removed peer's name still resolves: %q", got)
		}
		// Its addresses are free again.
		out := v.mustEdgectl("-o", "json", "peer", "add", "phone", "--pubkey", "6h1NQ9G+DQeiDdVt3u6yxdBHawA5lHFONHVTHeIcBkU=")
		if !strings.Contains(out, `"10.100.0.2"`) {
			t.Errorf("the freed address was not given out again:\n%s", out)
		}
	})

	t.Run("kernel state changed behind its back is restored", func(t *testing.T) {
		// reconcile is 1s here: each restore comes within a few seconds.
		waitFor := func(what string, ok func() bool) {
			t.Helper()
			for i := 0; i < 50; i++ {
				if ok() {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Fatalf("%s: not restored within 10s\n%s", what, v.p.Log())
		}
		v.mustRun(lab.NodeRouter, "nft", "delete", "table", "inet", "edge_vpn")
		waitFor("table inet edge_vpn", func() bool {
			out, err := v.run(lab.NodeRouter, "nft", "list", "table", "inet", "edge_vpn")
			return err == nil && strings.Contains(out, "chain peer_guest")
		})
		if v.ping(lab.NodeOutsideUS, lab.Host11Addr4, 2) {
			t.Errorf("after the restore, guest pings host11, which its group does not allow")
		}
		peersBefore := v.mustRun(lab.NodeRouter, "wg", "show", "wg0", "peers")
		v.mustRun(lab.NodeRouter, "ip", "link", "del", "wg0")
		waitFor("interface wg0", func() bool {
			out, err := v.run(lab.NodeRouter, "wg", "show", "wg0", "peers")
			return err == nil && out == peersBefore
		})
		if out := v.mustRun(lab.NodeRouter, "ip", "-brief", "address", "show", "wg0"); !strings.Contains(out, "10.100.0.1/24") {
			t.Errorf("the restored wg0 lacks its address: %s", out)
		}
		m := v.mustRun(lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9712/metrics")
		for _, want := range []string{`edge_vpn_drift_restores_total{what="access"} 1`, `edge_vpn_drift_restores_total{what="interface"} 1`} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		for _, want := range []string{"changed behind edge-vpn's back", "interface removed behind edge-vpn's back"} {
			if strings.Count(v.p.Log(), want) != 1 {
				t.Errorf("the log says %q %d times, want once", want, strings.Count(v.p.Log(), want))
			}
		}
	})

	t.Run("cleanup", func(t *testing.T) {
		if err := v.p.Stop(15 * time.Second); err != nil {
			t.Errorf("stop: %v", err)
		}
		if out, err := v.run(lab.NodeRouter, bin("edge-vpn"), "-cleanup", "-config", v.cfg); err != nil {
			t.Fatalf("-cleanup: %v\n%s", err, out)
		}
		for _, ifname := range []string{"wg0", "wg1"} {
			if out, err := v.run(lab.NodeRouter, "ip", "link", "show", ifname); err == nil {
				t.Errorf("%s survives -cleanup:\n%s", ifname, out)
			}
		}
		if out := v.mustRun(lab.NodeRouter, "nft", "list", "tables"); strings.Contains(out, "edge_vpn") {
			t.Errorf("table inet edge_vpn survives -cleanup")
		}
	})
}
