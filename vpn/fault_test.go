package vpn

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/daemon/daemontest"
)

// fakeSpec is edge-vpn's spec on h; the service that started last is
// kept in svc.
func fakeSpec(h host, svc *atomic.Pointer[Service]) daemon.Spec[Config] {
	return daemon.Spec[Config]{Name: Section, Defaults: DefaultConfig, New: func(env daemon.Env, cfg *config.File[Config]) (daemon.Service[Config], error) {
		s, err := newService(env, cfg, h)
		if err != nil {
			return nil, err
		}
		svc.Store(s)
		return s, nil
	}}
}

// TestReloadFaults fails each step of a reload that changes everything
// at once in turn: an interface's settings, a new interface with a key
// to make, static peers changed, added and dropped, names, access limits.
// After each failure the fake kernel (links, settings, peers and their
// handshakes, the access table), DNS, the store (keys, revisions and the
// file's bytes) and the state directory must be as they were, and so
// must the status; after the reload that passes, the runner's and the
// service's generations agree.
func TestReloadFaults(t *testing.T) {
	k, dns, clock := newFakeKernel(), newFakeDNS(), newFakeClock()
	var svc atomic.Pointer[Service]
	keys := map[string]string{}
	for _, name := range []string{"office", "old", "site2", "branch", "laptop"} {
		keys[name] = newPublicKey(t)
	}
	names := `  names: {server: "127.0.0.1:53", key: edge-vpn, secret: "c2VjcmV0"}
`
	before := testSite + `vpn:
  metrics: {listen: "off"}
  wireguard:
    - interface: wg0
      pool: [vpn]
      endpoint: "vpn.example.net:51820"
      access: {default: [lan]}
` + staticPeers(
		fmt.Sprintf("{name: office, public_key: %q, addresses: [10.100.0.250], routes: [office]}", keys["office"]),
		fmt.Sprintf("{name: old, public_key: %q}", keys["old"])) + names
	after := testSite + `vpn:
  metrics: {listen: "off"}
  wireguard:
    - interface: wg0
      pool: [vpn]
      endpoint: "vpn.example.net:51820"
      mtu: 1380
      access: {default: [lan, office]}
` + staticPeers(
		fmt.Sprintf("{name: office, public_key: %q, addresses: [10.100.0.250], routes: [office], keepalive: 25s}", keys["office"]),
		fmt.Sprintf("{name: site2, public_key: %q}", keys["site2"])) + `    - interface: wg1
      listen_port: 51821
      pool: ["10.101.0.0/24"]
      endpoint: "vpn.example.net:51821"
      peers:
        - {name: branch, public_key: "` + keys["branch"] + `"}
` + names

	d := daemontest.Start(t, fakeSpec(fakeHost(k, dns, clock), &svc), before)
	s := svc.Load()
	if _, err := s.addPeer(context.Background(), ctlapi.VPNPeerAdd{Name: "laptop", PublicKey: keys["laptop"]}, "uid 0"); err != nil {
		t.Fatal(err)
	}
	if err := k.handshake("wg0", keys["laptop"], clock.now()); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		return k.snapshot() + dns.snapshot() + storeDump(t, s.store, d.StateDir()) + dirListing(t, d.StateDir())
	}
	d.WriteConfig(after)
	steps := d.EachReloadFault(snapshot)
	want := []string{"check interfaces", "key wg0", "key wg1", "names", "read peers", "static peers", "validate access", "write key wg1", "open wg1", "write peers"}
	if !slices.Equal(steps, want) {
		t.Errorf("reload steps = %q, want %q", steps, want)
	}

	var st ctlapi.VPNStatus
	d.Detail(&st)
	if run := d.Status().Config.Generation; st.Generation != run || run != 2 {
		t.Errorf("after the reload: service generation %d, runner generation %d; want 2, 2", st.Generation, run)
	}
	got := k.snapshot() + dns.snapshot()
	for _, line := range []string{
		"link wg0 port 51820 mtu 1380 ",
		"link wg1 port 51821 mtu 1420 ",
		// old held .2 and laptop .3; old's address is not given out in
		// the reload that drops it.
		"  peer " + keys["laptop"] + " allowed [10.100.0.3/32 fd00:100::3/128] endpoint invalid AddrPort keepalive 0s psk false handshake " + clock.now().Format("2006-01-02T15:04:05Z"),
		"  peer " + keys["office"] + " allowed [10.100.0.250/32 172.20.0.0/16] endpoint invalid AddrPort keepalive 25s",
		"  peer " + keys["site2"] + " allowed [10.100.0.4/32 fd00:100::4/128]",
		"  peer " + keys["branch"] + " allowed [10.101.0.2/32]",
		"access site2 on wg0 from [10.100.0.4 fd00:100::4] to [192.168.1.0/24 172.20.0.0/16]",
		"name site2.vpn.home.arpa [10.100.0.4 fd00:100::4]",
		"name branch.vpn.home.arpa [10.101.0.2]",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("after the reload, the fakes lack %q:\n%s", line, got)
		}
	}
	if strings.Contains(got, keys["old"]) || strings.Contains(got, "old.vpn.home.arpa") {
		t.Errorf("the dropped static peer is still on wg0 or in DNS:\n%s", got)
	}
}

// TestStartFaults fails each step of the start in turn: a failed start
// leaves no link, no access table and no name behind, and the one that
// passes runs generation 1.
func TestStartFaults(t *testing.T) {
	k, dns, clock := newFakeKernel(), newFakeDNS(), newFakeClock()
	var svc atomic.Pointer[Service]
	body := wg0(`      access: {default: [lan]}
`+staticPeers(fmt.Sprintf("{name: office, public_key: %q}", newPublicKey(t)))) + `  names: {server: "127.0.0.1:53", key: edge-vpn, secret: "c2VjcmV0"}
`
	snapshot := func() string { return k.snapshot() + dns.snapshot() }
	d, steps := daemontest.EachStartFault(t, fakeSpec(fakeHost(k, dns, clock), &svc), body, snapshot)
	want := []string{"open store", "check interfaces", "key wg0", "names", "read peers", "static peers", "validate access", "write key wg0", "open wg0", "write peers"}
	if !slices.Equal(steps, want) {
		t.Errorf("start steps = %q, want %q", steps, want)
	}
	var st ctlapi.VPNStatus
	d.Detail(&st)
	if st.Generation != 1 || len(st.Interfaces) != 1 || st.Interfaces[0].Peers != 1 {
		t.Errorf("after the start: %+v, want generation 1 and wg0 with its static peer", st)
	}
	if got := k.snapshot() + dns.snapshot(); !strings.Contains(got, "access office on wg0") || !strings.Contains(got, "name office.vpn.home.arpa") {
		t.Errorf("after the start the fakes hold:\n%s", got)
	}
}
