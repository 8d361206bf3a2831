package vpn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/homeedge/edge/internal/daemon/daemontest"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/store"
	"github.com/homeedge/edge/vpn/wireguard"
)

// These tests run the service on fakes (fake_test.go): no root, no
// kernel, no DNS server, and a clock that moves only when told.

const testSite = `site:
  local_domain: home.arpa
  networks:
    lan: [192.168.1.0/24]
    vpn: [10.100.0.0/24, "fd00:100::/64"]
    office: [172.20.0.0/16]
`

// wg0 is a config with one interface; extra goes under the interface,
// indented four spaces, and after it, more vpn keys.
func wg0(extra string) string {
	return testSite + `vpn:
  metrics: {listen: "off"}
  wireguard:
    - interface: wg0
      pool: [vpn]
      endpoint: "vpn.example.net:51820"
` + extra
}

// testVPN is a service on fakes, driven directly.
type testVPN struct {
	t     *testing.T
	s     *Service
	k     *fakeKernel
	dns   *fakeDNS
	clock *fakeClock
	dir   string
	logs  *daemontest.Buffer
	gen   int64
}

func parseConfig(t *testing.T, body string) *config.File[Config] {
	t.Helper()
	cfg, err := config.Parse([]byte("version: 1\n"+body), "edge.yaml", Section, DefaultConfig)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, body)
	}
	return cfg
}

func startVPN(t *testing.T, body string) *testVPN {
	t.Helper()
	v := &testVPN{t: t, k: newFakeKernel(), dns: newFakeDNS(), clock: newFakeClock(), dir: t.TempDir(), logs: &daemontest.Buffer{}}
	env := daemon.Env{Log: slog.New(slog.NewTextHandler(v.logs, nil)), Metrics: prometheus.NewRegistry(), StateDir: v.dir}
	s, err := newService(env, parseConfig(t, body), fakeHost(v.k, v.dns, v.clock))
	if err != nil {
		t.Fatalf("newService: %v", err)
	}
	v.s, v.gen = s, 1
	t.Cleanup(func() {
		s.closeDevices()
		s.store.Close()
	})
	return v
}

// reload prepares body and commits it as the next generation.
func (v *testVPN) reload(body string) error {
	v.t.Helper()
	c, err := v.s.Prepare(parseConfig(v.t, body), daemon.Request{Reason: "test"})
	if err != nil {
		return err
	}
	v.gen++
	c.Apply(v.gen)
	return nil
}

func (v *testVPN) mustReload(body string) {
	v.t.Helper()
	if err := v.reload(body); err != nil {
		v.t.Fatalf("reload: %v", err)
	}
}

// add adds a run-time peer with a key of its own and returns its public
// key.
func (v *testVPN) add(req ctlapi.VPNPeerAdd) string {
	v.t.Helper()
	if req.PublicKey == "" {
		req.PublicKey = newPublicKey(v.t)
	}
	if _, err := v.s.addPeer(context.Background(), req, "uid 0"); err != nil {
		v.t.Fatalf("add peer %s: %v", req.Name, err)
	}
	return req.PublicKey
}

func (v *testVPN) peer(name string) ctlapi.VPNPeer {
	v.t.Helper()
	p, err := v.s.showPeer(context.Background(), name)
	if err != nil {
		v.t.Fatalf("show peer %s: %v", name, err)
	}
	return p
}

// handshakeOf is the device's last handshake with pub on link ("never",
// or "absent" when the device lacks the peer).
func (v *testVPN) handshakeOf(link, pub string) string {
	v.t.Helper()
	d := v.k.device(link)
	if d == nil {
		return "no link"
	}
	ps, _ := d.Peers()
	for _, p := range ps {
		if p.PublicKey.String() == pub {
			if p.LastHandshake.IsZero() {
				return "never"
			}
			return p.LastHandshake.Format(time.TimeOnly)
		}
	}
	return "absent"
}

// state is everything a failed reload must leave as it was: the fake
// kernel, DNS, the store (its keys with their revisions, and the file's
// bytes) and the state directory.
func (v *testVPN) state() string {
	v.t.Helper()
	return v.k.snapshot() + v.dns.snapshot() + storeDump(v.t, v.s.store, v.dir) + dirListing(v.t, v.dir)
}

func storeDump(t *testing.T, st store.Store, dir string) string {
	t.Helper()
	kvs, rev, err := st.List(context.Background(), "")
	if err != nil {
		t.Fatalf("list store: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "store revision %d\n", rev)
	for _, kv := range kvs {
		fmt.Fprintf(&b, "key %s create %d mod %d version %d %s\n", kv.Key, kv.CreateRev, kv.ModRev, kv.Version, kv.Value)
	}
	db, err := os.ReadFile(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "state.db sha256 %x\n", sha256.Sum256(db))
	return b.String()
}

func dirListing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		if e.Name() == "state.db" {
			continue
		}
		body, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		fmt.Fprintf(&b, "file %s %x\n", e.Name(), sha256.Sum256(body))
	}
	return b.String()
}

func newPublicKey(t *testing.T) string {
	t.Helper()
	k, err := wireguard.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().String()
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// TestReconcileIsADiff: a connected peer keeps its session (the fake
// drops a handshake only when its peer leaves the device) through every
// change that does not concern it, and the device is never reopened.
func TestReconcileIsADiff(t *testing.T) {
	v := startVPN(t, wg0(""))
	laptop := v.add(ctlapi.VPNPeerAdd{Name: "laptop"})
	if err := v.k.handshake("wg0", laptop, v.clock.now()); err != nil {
		t.Fatal(err)
	}
	connected := v.clock.now().Format(time.TimeOnly)
	var phone string
	v.k.takeCalls()
	steps := []struct {
		name string
		do   func()
		want string // laptop's handshake on wg0 afterwards
	}{
		{"another peer added", func() { phone = v.add(ctlapi.VPNPeerAdd{Name: "phone"}) }, connected},
		{"a reconcile with nothing to change", func() { v.clock.advance(time.Minute); v.s.tick(context.Background()) }, connected},
		{"the interface's MTU reloaded", func() { v.mustReload(wg0("      mtu: 1380\n")) }, connected},
		{"a second interface reloaded in", func() {
			v.mustReload(wg0("      mtu: 1380\n    - {interface: wg1, listen_port: 51821, pool: [\"10.101.0.0/24\"], endpoint: \"x:51821\"}\n"))
		}, connected},
		{"another peer disabled", func() {
			off := false
			if _, err := v.s.updatePeer(context.Background(), ctlapi.VPNPeerUpdate{Name: "phone", Enabled: &off}, "uid 0"); err != nil {
				t.Fatal(err)
			}
		}, connected},
		{"another peer removed", func() {
			if _, err := v.s.removePeer(context.Background(), "phone", "uid 0"); err != nil {
				t.Fatal(err)
			}
		}, connected},
		{"laptop renamed", func() {
			if _, err := v.s.updatePeer(context.Background(), ctlapi.VPNPeerUpdate{Name: "laptop", Rename: "laptop-old"}, "uid 0"); err != nil {
				t.Fatal(err)
			}
		}, connected},
		// Disabling takes the peer off the device; enabling puts it back
		// as a new peer, which must handshake again.
		{"laptop disabled and enabled", func() {
			for _, on := range []bool{false, true} {
				if _, err := v.s.updatePeer(context.Background(), ctlapi.VPNPeerUpdate{Name: "laptop-old", Enabled: &on}, "uid 0"); err != nil {
					t.Fatal(err)
				}
			}
		}, "never"},
	}
	for _, st := range steps {
		st.do()
		if got := v.handshakeOf("wg0", laptop); got != st.want {
			t.Errorf("after %s: laptop's handshake = %s, want %s", st.name, got, st.want)
		}
		for _, c := range v.k.takeCalls() {
			if c == "open wg0" || c == "close wg0" {
				t.Errorf("after %s: wg0 was reopened (%s)", st.name, c)
			}
		}
	}
	if got := v.handshakeOf("wg0", phone); got != "absent" {
		t.Errorf("the removed phone is on wg0: handshake %s", got)
	}
}

// TestExpiry: a peer with an expiry is on its device until then, and
// off it (disabled, "expired", out of the access table) from the first
// reconcile at or after it.
func TestExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expires   string
		after     time.Duration
		reconcile bool
		state     string // peer show's state afterwards
		disabled  string
		onDevice  bool
	}{
		{"a minute before", "2h", 2*time.Hour - time.Minute, true, "active", "", true},
		{"at the expiry", "2h", 2 * time.Hour, true, "disabled", "expired", false},
		{"a day after", "2h", 26 * time.Hour, true, "disabled", "expired", false},
		{"after, before a reconcile", "2h", 3 * time.Hour, false, "expired", "", true},
		{"never expires", "", 10000 * time.Hour, true, "active", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := startVPN(t, wg0(`      access: {groups: {nas-only: [192.168.1.10/32]}}
`))
			pub := v.add(ctlapi.VPNPeerAdd{Name: "guest", Expires: tc.expires, Group: "nas-only"})
			v.clock.advance(tc.after)
			if tc.reconcile {
				v.s.tick(context.Background())
			}
			p := v.peer("guest")
			if p.State != tc.state || p.Disabled != tc.disabled {
				t.Errorf("peer guest: state %q disabled %q, want %q %q", p.State, p.Disabled, tc.state, tc.disabled)
			}
			if on := v.handshakeOf("wg0", pub) != "absent"; on != tc.onDevice {
				t.Errorf("guest on wg0 = %v, want %v", on, tc.onDevice)
			}
			if limited := strings.Contains(v.k.snapshot(), "access guest on wg0"); limited != tc.onDevice {
				t.Errorf("guest in the access table = %v, want %v:\n%s", limited, tc.onDevice, v.k.snapshot())
			}
		})
	}
}

// staticPeers is a peers list for wg0.
func staticPeers(lines ...string) string {
	if len(lines) == 0 {
		return ""
	}
	return "      peers:\n        - " + strings.Join(lines, "\n        - ") + "\n"
}

// TestStaticPeers: peers of the config are registered with their
// addresses, and every conflict is refused before anything changes.
func TestStaticPeers(t *testing.T) {
	officeKey := newPublicKey(t)
	tests := []struct {
		name      string
		peers     func(v *testVPN, laptop string) string
		wantErr   string
		wantAddrs string // the office peer's
	}{
		{"allocated from the pool", func(*testVPN, string) string {
			return staticPeers(fmt.Sprintf("{name: office, public_key: %q, routes: [office]}", officeKey))
		}, "", "10.100.0.3 fd00:100::3"},
		{"explicit addresses", func(*testVPN, string) string {
			return staticPeers(fmt.Sprintf("{name: office, public_key: %q, addresses: [10.100.0.250]}", officeKey))
		}, "", "10.100.0.250"},
		{"the name of a run-time peer", func(*testVPN, string) string {
			return staticPeers(fmt.Sprintf("{name: laptop, public_key: %q}", officeKey))
		}, `vpn.wireguard[0].peers[0]: peer name "laptop" is taken by a peer added at run time`, ""},
		{"the address of a run-time peer", func(*testVPN, string) string {
			return staticPeers(fmt.Sprintf("{name: office, public_key: %q, addresses: [10.100.0.2]}", officeKey))
		}, "vpn.wireguard[0].peers[0]: address 10.100.0.2 is already peer laptop's", ""},
		{"the key of a run-time peer", func(_ *testVPN, laptop string) string {
			return staticPeers(fmt.Sprintf("{name: office, public_key: %q}", laptop))
		}, "is already peer laptop's", ""},
		{"the interface's own key", func(v *testVPN, _ string) string {
			return staticPeers(fmt.Sprintf("{name: office, public_key: %q}", v.k.device("wg0").PublicKey()))
		}, "is interface wg0's own", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := startVPN(t, wg0(""))
			laptop := v.add(ctlapi.VPNPeerAdd{Name: "laptop"})
			before := v.state()
			err := v.reload(wg0(tc.peers(v, laptop)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("reload = %v, want an error with %q", err, tc.wantErr)
				}
				if after := v.state(); after != before {
					t.Errorf("a refused reload changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("reload: %v", err)
			}
			p := v.peer("office")
			if got := strings.Join(p.Addresses, " "); got != tc.wantAddrs || !p.Static {
				t.Errorf("office: addresses %q static %v, want %q, static", got, p.Static, tc.wantAddrs)
			}
			if v.handshakeOf("wg0", officeKey) == "absent" {
				t.Errorf("office is not on wg0:\n%s", v.k.snapshot())
			}
		})
	}
}

// TestStaticPeerLifecycle: a static peer changed in the config keeps its
// address, its session and an operator's disable; dropped from the
// config, it leaves the registry, the device and DNS.
func TestStaticPeerLifecycle(t *testing.T) {
	key := newPublicKey(t)
	v := startVPN(t, wg0(staticPeers(fmt.Sprintf("{name: office, public_key: %q}", key))+`  names: {server: "127.0.0.1:53", key: edge-vpn, secret: "c2VjcmV0"}
`))
	names := `  names: {server: "127.0.0.1:53", key: edge-vpn, secret: "c2VjcmV0"}
`
	if got := v.dns.lookup("office"); got != "[10.100.0.2 fd00:100::2]" {
		t.Fatalf("office's name = %q after the start", got)
	}
	if err := v.k.handshake("wg0", key, v.clock.now()); err != nil {
		t.Fatal(err)
	}
	v.mustReload(wg0(staticPeers(fmt.Sprintf("{name: office, public_key: %q, routes: [office], keepalive: 25s}", key))) + names)
	p := v.peer("office")
	if got := strings.Join(p.AllowedIPs, " "); got != "10.100.0.2/32 fd00:100::2/128 172.20.0.0/16" {
		t.Errorf("office's allowed IPs after the reload = %s", got)
	}
	if got := v.handshakeOf("wg0", key); got == "never" || got == "absent" {
		t.Errorf("office's session after a change of its routes: handshake %s", got)
	}
	off := false
	if _, err := v.s.updatePeer(context.Background(), ctlapi.VPNPeerUpdate{Name: "office", Enabled: &off}, "uid 0"); err != nil {
		t.Fatal(err)
	}
	v.mustReload(wg0(staticPeers(fmt.Sprintf("{name: office, public_key: %q, routes: [office]}", key))) + names)
	if p := v.peer("office"); p.Enabled || v.handshakeOf("wg0", key) != "absent" {
		t.Errorf("a disabled static peer changed in the config: enabled %v, on the device %s", p.Enabled, v.handshakeOf("wg0", key))
	}
	v.mustReload(wg0("") + names)
	if _, err := v.s.showPeer(context.Background(), "office"); err == nil {
		t.Errorf("a static peer dropped from the config is still in the registry")
	}
	if got := v.dns.lookup("office"); got != "" {
		t.Errorf("a static peer dropped from the config still has its name: %s", got)
	}
}

// TestStaticPeerNewPool: a static peer whose interface's pool changed
// gets addresses from the new pool; one whose pool did not keeps its own.
func TestStaticPeerNewPool(t *testing.T) {
	key, other := newPublicKey(t), newPublicKey(t)
	body := func(pool string) string {
		return testSite + fmt.Sprintf(`vpn:
  metrics: {listen: "off"}
  wireguard:
    - {interface: wg0, pool: [%s], endpoint: "x:51820", peers: [{name: office, public_key: %q}]}
    - {interface: wg1, listen_port: 51821, pool: ["10.101.0.0/24"], endpoint: "x:51821", peers: [{name: other, public_key: %q}]}
`, pool, key, other)
	}
	v := startVPN(t, body("vpn"))
	v.add(ctlapi.VPNPeerAdd{Name: "tablet", Interface: "wg1"}) // takes wg1's .3
	v.mustReload(body(`"10.102.0.0/24"`))
	if got := strings.Join(v.peer("office").Addresses, " "); got != "10.102.0.2" {
		t.Errorf("office's addresses after its pool changed = %s, want 10.102.0.2", got)
	}
	if got := strings.Join(v.peer("other").Addresses, " "); got != "10.101.0.2" {
		t.Errorf("other's addresses after another pool changed = %s, want 10.101.0.2", got)
	}
}

// TestNamesWhileDNSDown: a peer added or removed while edge-dns refuses
// updates gets (or loses) its name at the first reconcile after edge-dns
// is back; each failed update is counted.
func TestNamesWhileDNSDown(t *testing.T) {
	v := startVPN(t, wg0(`  names: {server: "127.0.0.1:53", key: edge-vpn, secret: "c2VjcmV0"}
`))
	v.add(ctlapi.VPNPeerAdd{Name: "gone"})
	v.dns.setDown(true)
	v.add(ctlapi.VPNPeerAdd{Name: "late"})
	if _, err := v.s.removePeer(context.Background(), "gone", "uid 0"); err != nil {
		t.Fatal(err)
	}
	if got := v.dns.lookup("late"); got != "" {
		t.Fatalf("late's name is published while DNS is down: %s", got)
	}
	if !strings.Contains(v.logs.String(), "peer names not published; retrying at the next reconcile") {
		t.Errorf("the failed update is not logged:\n%s", v.logs)
	}
	v.s.tick(context.Background())
	// Every update tried is counted: the add's, the remove's reconcile's
	// and its removal, then the tick's removal and publish.
	if got := counterValue(v.s.metrics.nameErrors); got != 5 {
		t.Errorf("edge_vpn_name_update_errors_total = %v, want 5", got)
	}
	v.dns.setDown(false)
	v.s.tick(context.Background())
	if got := v.dns.lookup("late"); got != "[10.100.0.3 fd00:100::3]" {
		t.Errorf("late's name after DNS is back = %q", got)
	}
	if got := v.dns.lookup("gone"); got != "" {
		t.Errorf("the removed peer's name after DNS is back = %q", got)
	}
	updates := v.dns.updates
	v.s.tick(context.Background())
	if v.dns.updates != updates {
		t.Errorf("a reconcile with nothing new sent %d updates", v.dns.updates-updates)
	}
}

// TestFullPool: the pool's last address goes to one peer, and neither an
// added nor a static peer gets an address beyond it.
func TestFullPool(t *testing.T) {
	small := testSite + `vpn:
  metrics: {listen: "off"}
  wireguard:
    - {interface: wg0, pool: ["10.100.9.0/30"], endpoint: "x:51820"%s}
`
	v := startVPN(t, fmt.Sprintf(small, ""))
	v.add(ctlapi.VPNPeerAdd{Name: "only"})
	_, err := v.s.addPeer(context.Background(), ctlapi.VPNPeerAdd{Name: "second", PublicKey: newPublicKey(t)}, "uid 0")
	var apiErr *ctlapi.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || !strings.Contains(err.Error(), "address pool 10.100.9.0/30 is full: 1 peers hold its addresses") {
		t.Errorf("add to a full pool = %v, want 409 naming the pool", err)
	}
	before := v.state()
	err = v.reload(fmt.Sprintf(small, fmt.Sprintf(", peers: [{name: site, public_key: %q}]", newPublicKey(t))))
	if err == nil || !strings.Contains(err.Error(), "vpn.wireguard[0].peers[0]: address pool 10.100.9.0/30 is full") {
		t.Errorf("reload with a static peer beyond the pool = %v", err)
	}
	if after := v.state(); after != before {
		t.Errorf("a refused reload changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestReloadChecksEveryInterfaceFirst: a setting that changes only on
// restart is found on any interface before any interface is touched.
func TestReloadChecksEveryInterfaceFirst(t *testing.T) {
	two := func(mtu int, userspace bool, third string) string {
		return testSite + fmt.Sprintf(`vpn:
  metrics: {listen: "off"}
  wireguard:
    - {interface: wg0, pool: [vpn], endpoint: "x:51820", mtu: %d}
    - {interface: wg1, listen_port: 51821, pool: ["10.101.0.0/24"], endpoint: "x:51821", userspace: %v}
%s`, mtu, userspace, third)
	}
	v := startVPN(t, two(1420, false, ""))
	before := v.state()
	v.k.takeCalls()
	err := v.reload(two(1380, true, `    - {interface: wg2, listen_port: 51822, pool: ["10.102.0.0/24"], endpoint: "x:51822"}
`))
	if err == nil || !strings.Contains(err.Error(), "vpn.wireguard[1].userspace: interface wg1 changes between kernel and userspace only on restart") {
		t.Fatalf("reload = %v, want the restart-only error", err)
	}
	if calls := v.k.takeCalls(); len(calls) > 0 {
		t.Errorf("a refused reload called the kernel: %q", calls)
	}
	if after := v.state(); after != before {
		t.Errorf("a refused reload changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A new interface that fails to open leaves wg0 as it was too.
	v.k.failNext("open wg2")
	err = v.reload(two(1380, false, `    - {interface: wg2, listen_port: 51822, pool: ["10.102.0.0/24"], endpoint: "x:51822"}
`))
	if err == nil || !strings.Contains(err.Error(), "interface wg2: open wg2: operation not permitted") {
		t.Fatalf("reload = %v, want wg2's failure", err)
	}
	if calls := v.k.takeCalls(); !slices.Equal(calls, []string{"validate access", "open wg2"}) {
		t.Errorf("kernel calls of a reload whose new interface failed = %q, want the access check (no side effect) and the open", calls)
	}
	if after := v.state(); after != before {
		t.Errorf("a failed reload changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestCommitRetriesWhatTheKernelRefuses: a commit cannot fail; what the
// kernel refuses in it is logged, counted and done by the next reconcile.
func TestCommitRetriesWhatTheKernelRefuses(t *testing.T) {
	v := startVPN(t, wg0(""))
	v.add(ctlapi.VPNPeerAdd{Name: "kid"})
	v.k.failNext("reconfigure wg0")
	v.k.failNext("access")
	v.mustReload(wg0("      mtu: 1380\n      access: {default: [lan]}\n"))
	if got := v.s.Status().(ctlapi.VPNStatus).Generation; got != v.gen {
		t.Errorf("service generation %d, runner's %d", got, v.gen)
	}
	if !strings.Contains(v.logs.String(), "the kernel refused part of the new config; retrying at the next reconcile") {
		t.Errorf("the refusal is not logged:\n%s", v.logs)
	}
	for _, what := range []string{"interface", "access"} {
		if got := counterValue(v.s.metrics.kernelErrors.WithLabelValues(what)); got != 1 {
			t.Errorf("edge_vpn_kernel_errors_total{what=%q} = %v, want 1", what, got)
		}
	}
	if mtu := v.k.device("wg0").opts.MTU; mtu != 1420 {
		t.Fatalf("wg0's MTU = %d although the fake refused", mtu)
	}
	v.s.tick(context.Background())
	if mtu := v.k.device("wg0").opts.MTU; mtu != 1380 {
		t.Errorf("wg0's MTU after a reconcile = %d, want 1380", mtu)
	}
	if !strings.Contains(v.k.snapshot(), "access kid on wg0 from [10.100.0.2 fd00:100::2] to [192.168.1.0/24]") {
		t.Errorf("the access limit after a reconcile:\n%s", v.k.snapshot())
	}
	v.k.takeCalls()
	v.s.tick(context.Background())
	if calls := v.k.takeCalls(); slices.Contains(calls, "reconfigure wg0") {
		t.Errorf("a reconcile after the retry succeeded reconfigured wg0 again: %q", calls)
	}
}

// TestReconcileInterval: a reload's vpn.reconcile takes effect.
func TestReconcileInterval(t *testing.T) {
	v := startVPN(t, wg0(""))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- v.s.Run(ctx) }()
	waitTickers := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for len(v.clock.tickers()) < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	waitTickers(1)
	v.mustReload(wg0("  reconcile: 5s\n"))
	waitTickers(2)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if got := v.clock.tickers(); !slices.Equal(got, []time.Duration{30 * time.Second, 5 * time.Second}) {
		t.Errorf("tickers = %v, want 30s then 5s", got)
	}
	if d := v.k.device("wg0"); d != nil {
		t.Errorf("Run left wg0 open")
	}
}

// TestInterfaceRemovedIsRestored: an interface deleted behind the
// daemon's back (ip link del) is created again at the next reconcile,
// with its peers, and counted.
func TestInterfaceRemovedIsRestored(t *testing.T) {
	v := startVPN(t, wg0(""))
	laptop := v.add(ctlapi.VPNPeerAdd{Name: "laptop"})
	v.k.deleteLink("wg0")
	v.s.tick(context.Background())
	v.k.mu.Lock()
	d := v.k.links["wg0"]
	v.k.mu.Unlock()
	if d == nil {
		t.Fatalf("wg0 not created again after it was removed")
	}
	if _, ok := d.peers[mustKey(t, laptop)]; !ok {
		t.Errorf("the new wg0 lacks the laptop peer")
	}
	var m dto.Metric
	v.s.metrics.drift.WithLabelValues("interface").Write(&m)
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("edge_vpn_drift_restores_total{what=interface} = %v, want 1", got)
	}
	if !strings.Contains(v.logs.String(), "interface removed behind edge-vpn's back") {
		t.Errorf("no log line for the restore:\n%s", v.logs)
	}
}

func mustKey(t *testing.T, s string) wireguard.Key {
	t.Helper()
	k, err := wireguard.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestLogsNeverExpires: a peer without an expiry is logged as expiring
// "never", not at the zero time, whether it is added or changed; one
// with an expiry is logged with it.
func TestLogsNeverExpires(t *testing.T) {
	v := startVPN(t, wg0(""))
	v.add(ctlapi.VPNPeerAdd{Name: "laptop"})
	off := false
	if _, err := v.s.updatePeer(context.Background(), ctlapi.VPNPeerUpdate{Name: "laptop", Enabled: &off}, "uid 0"); err != nil {
		t.Fatal(err)
	}
	v.add(ctlapi.VPNPeerAdd{Name: "guest", Expires: "7d"})
	logs := v.logs.String()
	if strings.Contains(logs, "0001-01-01") {
		t.Errorf("the log prints the zero time:\n%s", logs)
	}
	if strings.Contains(logs, `renamed_from=""`) {
		t.Errorf("the log names an empty old name for a peer that was not renamed:\n%s", logs)
	}
	for _, want := range []string{
		`msg="peer added" peer=laptop`,
		`msg="peer changed" peer=laptop`,
		`msg="peer added" peer=guest`,
	} {
		line := ""
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, want) {
				line = l
			}
		}
		wantExpires := "expires=never"
		if strings.Contains(want, "guest") {
			wantExpires = "expires=" + v.clock.now().Add(7*24*time.Hour).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		if !strings.Contains(line, wantExpires) {
			t.Errorf("log line %q lacks %s:\n%s", want, wantExpires, logs)
		}
	}
}

// TestPeerErrorsNameTheFlag: a wrong value of peer add or peer enable is
// a 400 (404 for an interface) that names the edgectl flag it came from.
func TestPeerErrorsNameTheFlag(t *testing.T) {
	v := startVPN(t, wg0("      access: {groups: {kids: [lan]}}\n"))
	v.add(ctlapi.VPNPeerAdd{Name: "laptop"})
	ctx := context.Background()
	for _, tc := range []struct {
		req  ctlapi.VPNPeerAdd
		want string
	}{
		{ctlapi.VPNPeerAdd{Name: "a", PublicKey: "c2hvcnQ="}, `--pubkey: not a public key: parse key: decodes to 5 bytes, want 32`},
		{ctlapi.VPNPeerAdd{Name: "a", Group: "kid"}, `--group "kid": unknown group; interface wg0's access.groups has kids`},
		{ctlapi.VPNPeerAdd{Name: "a", Expires: "7x"}, `--expires: invalid duration "7x"`},
		{ctlapi.VPNPeerAdd{Name: "a", Interface: "wg9"}, `--interface: no interface "wg9"; vpn.wireguard has wg0`},
		{ctlapi.VPNPeerAdd{Name: "a", Access: []string{"lan tcp/x"}}, `--access "lan tcp/x": tcp/x: port "x" is not from 1 to 65535`},
	} {
		if _, err := v.s.addPeer(ctx, tc.req, "uid 0"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("addPeer(%+v) = %v, want an error with %q", tc.req, err, tc.want)
		}
	}
	on := true
	if _, err := v.s.updatePeer(ctx, ctlapi.VPNPeerUpdate{Name: "laptop", Enabled: &on, Expires: "soon"}, "uid 0"); err == nil || !strings.Contains(err.Error(), `--expires: invalid duration "soon"`) {
		t.Errorf("peer enable --expires soon: %v", err)
	}
}

// TestRuntimeDir: an embedded device serves its UAPI socket in edge-vpn's
// runtime directory, <admin.socket_dir>/vpn, not in the /var/run/wireguard
// every namespace shares; when wg(8) cannot find it there, the log says
// why and where the socket is.
func TestRuntimeDir(t *testing.T) {
	v := startVPN(t, "admin: {socket_dir: /run/edge-test}\n"+wg0("    - {interface: wg1, listen_port: 51821, pool: [\"10.101.0.0/24\"], endpoint: \"x:51821\"}\n"))
	for _, name := range []string{"wg0", "wg1"} {
		if got := v.k.device(name).opts.SocketDir; got != "/run/edge-test/vpn" {
			t.Errorf("%s opened with SocketDir %q, want /run/edge-test/vpn", name, got)
		}
	}
	v.k.unlisted["wg2"] = "not linked as /var/run/wireguard/wg2.sock, where wg(8) looks: another device serves that name"
	v.mustReload("admin: {socket_dir: /run/edge-test}\n" + wg0("    - {interface: wg2, listen_port: 51822, pool: [\"10.102.0.0/24\"], endpoint: \"x:51822\"}\n"))
	logs := v.logs.String()
	if !strings.Contains(logs, `msg="interface up" interface=wg2 kind=userspace listen_port=51822`) || !strings.Contains(logs, "uapi_socket=/run/edge-test/vpn/wg2.sock") {
		t.Errorf("the log does not name wg2's socket:\n%s", logs)
	}
	if !strings.Contains(logs, `msg="wg(8) cannot find the interface by its name; see wg show in docs/vpn.md" interface=wg2 uapi_socket=/run/edge-test/vpn/wg2.sock reason="not linked as /var/run/wireguard/wg2.sock, where wg(8) looks: another device serves that name"`) {
		t.Errorf("the log does not say why wg(8) cannot see wg2:\n%s", logs)
	}
	if strings.Contains(logs, "cannot find the interface by its name; see wg show in docs/vpn.md\" interface=wg0") {
		t.Errorf("the log says wg(8) cannot see wg0, which it can:\n%s", logs)
	}
}
