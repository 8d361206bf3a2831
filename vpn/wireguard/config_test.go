package wireguard

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func testKey(b byte) Key {
	var k Key
	for i := range k {
		k[i] = b
	}
	return k
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, pfx(s))
	}
	return out
}

func TestValidateName(t *testing.T) {
	for _, name := range []string{"wg0", "edge-vpn.1", "a", "abcdefghijklmno"} {
		if err := validateName(name); err != nil {
			t.Errorf("validateName(%q) = %v; want nil", name, err)
		}
	}
	for _, name := range []string{"", "abcdefghijklmnop", ".", "..", "a/b", "a:b", "a b", "a\nb"} {
		if err := validateName(name); err == nil {
			t.Errorf("validateName(%q) = nil; want an error", name)
		}
	}
}

func TestOptionsNormalize(t *testing.T) {
	base := Options{Name: "wg0", PrivateKey: testKey(1)}
	got, err := base.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got.MTU != 1420 {
		t.Errorf("MTU = %d; want the default 1420", got.MTU)
	}

	o := base
	o.Addresses = pfxs("fd00::1/64", "10.0.0.1/24", "10.0.0.1/24")
	got, err = o.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pfxs("10.0.0.1/24", "fd00::1/64"), got.Addresses, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Addresses (-want +got):\n%s", diff)
	}

	bad := []struct {
		name    string
		mod     func(*Options)
		wantErr string
	}{
		{"no key", func(o *Options) { o.PrivateKey = Key{} }, "private key is not set"},
		{"long name", func(o *Options) { o.Name = "abcdefghijklmnop" }, "longer than 15"},
		{"port", func(o *Options) { o.ListenPort = 70000 }, "listen port 70000"},
		{"mtu", func(o *Options) { o.MTU = 100 }, "MTU 100"},
		{"ipv6 mtu", func(o *Options) { o.MTU = 1200; o.Addresses = pfxs("fd00::1/64") }, "below 1280"},
		{"mapped", func(o *Options) { o.Addresses = pfxs("::ffff:10.0.0.1/120") }, "IPv4-mapped"},
		{"invalid", func(o *Options) { o.Addresses = []netip.Prefix{{}} }, "invalid address"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			_, err := o.normalize()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("normalize() error = %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestNormalizePeers(t *testing.T) {
	a, b := testKey(1), testKey(2)
	got, err := normalizePeers([]Peer{{
		PublicKey:  a,
		AllowedIPs: pfxs("fd00::5/64", "10.0.0.5/24", "10.0.0.0/24"),
		Endpoint:   netip.MustParseAddrPort("[::ffff:192.0.2.1]:51820"),
		Keepalive:  25 * time.Second,
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Peer{{
		PublicKey:  a,
		AllowedIPs: pfxs("10.0.0.0/24", "fd00::/64"),
		Endpoint:   netip.MustParseAddrPort("192.0.2.1:51820"),
		Keepalive:  25 * time.Second,
	}}
	if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
		t.Errorf("normalizePeers (-want +got):\n%s", diff)
	}

	bad := []struct {
		name    string
		peers   []Peer
		wantErr []string
	}{
		{"duplicate key", []Peer{{PublicKey: a}, {PublicKey: b}, {PublicKey: a}}, []string{"peers 0 and 2", a.String()}},
		{"shared allowed IP", []Peer{
			{PublicKey: a, AllowedIPs: pfxs("10.0.0.2/32")},
			{PublicKey: b, AllowedIPs: pfxs("10.0.0.3/32", "10.0.0.2/32")},
		}, []string{"10.0.0.2/32", a.String(), b.String()}},
		{"shared after masking", []Peer{
			{PublicKey: a, AllowedIPs: pfxs("10.1.0.0/16")},
			{PublicKey: b, AllowedIPs: pfxs("10.1.2.3/16")},
		}, []string{"10.1.0.0/16", a.String(), b.String()}},
		{"zero key", []Peer{{}}, []string{"public key is not set"}},
		{"fractional keepalive", []Peer{{PublicKey: a, Keepalive: 1500 * time.Millisecond}}, []string{"whole number of seconds"}},
		{"long keepalive", []Peer{{PublicKey: a, Keepalive: 70000 * time.Second}}, []string{"out of range"}},
		{"endpoint port 0", []Peer{{PublicKey: a, Endpoint: netip.MustParseAddrPort("192.0.2.1:0")}}, []string{"invalid endpoint"}},
		{"invalid allowed IP", []Peer{{PublicKey: a, AllowedIPs: []netip.Prefix{{}}}}, []string{"invalid allowed IP"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := normalizePeers(tc.peers)
			if err == nil {
				t.Fatal("normalizePeers succeeded; want an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

var cmpNetip = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
}

func wgPeer(k Key, psk Key, keepalive time.Duration, endpoint string, allowed ...string) wgtypes.Peer {
	p := wgtypes.Peer{
		PublicKey:                   wgtypes.Key(k),
		PresharedKey:                wgtypes.Key(psk),
		PersistentKeepaliveInterval: keepalive,
	}
	if endpoint != "" {
		p.Endpoint = net.UDPAddrFromAddrPort(netip.MustParseAddrPort(endpoint))
	}
	for _, s := range allowed {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			panic(err)
		}
		p.AllowedIPs = append(p.AllowedIPs, *n)
	}
	return p
}

func TestDiffPeers(t *testing.T) {
	same, changed, gone, added, roaming := testKey(1), testKey(2), testKey(3), testKey(4), testKey(5)
	psk := testKey(9)
	cur := []wgtypes.Peer{
		wgPeer(same, psk, 25*time.Second, "192.0.2.1:51820", "fd00::1/128", "10.0.0.1/32"),
		wgPeer(changed, Key{}, 0, "", "10.0.0.2/32"),
		wgPeer(gone, Key{}, 0, "", "10.0.0.3/32"),
		wgPeer(roaming, Key{}, 0, "198.51.100.7:40000", "10.0.0.5/32"),
	}
	want, err := normalizePeers([]Peer{
		{PublicKey: same, PresharedKey: psk, Keepalive: 25 * time.Second, Endpoint: netip.MustParseAddrPort("192.0.2.1:51820"), AllowedIPs: pfxs("10.0.0.1/32", "fd00::1/128")},
		{PublicKey: changed, AllowedIPs: pfxs("10.0.0.2/32", "10.0.1.0/24")},
		{PublicKey: added, AllowedIPs: pfxs("10.0.0.4/32")},
		// No endpoint configured: the learned one is not a difference.
		{PublicKey: roaming, AllowedIPs: pfxs("10.0.0.5/32")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgs, ch := diffPeers(cur, want)
	if want := (Changes{Added: 1, Updated: 1, Removed: 1}); ch != want {
		t.Errorf("Changes = %+v; want %+v", ch, want)
	}
	var got []string
	for _, c := range cfgs {
		s := Key(c.PublicKey).String()[:4]
		if c.Remove {
			s += " remove"
		} else {
			for _, n := range c.AllowedIPs {
				s += " " + n.String()
			}
		}
		got = append(got, s)
	}
	wantCfgs := []string{
		gone.String()[:4] + " remove",
		changed.String()[:4] + " 10.0.0.2/32 10.0.1.0/24",
		added.String()[:4] + " 10.0.0.4/32",
	}
	if diff := cmp.Diff(wantCfgs, got); diff != "" {
		t.Errorf("peer configs (-want +got):\n%s", diff)
	}
	for _, c := range cfgs {
		if !c.Remove && (!c.ReplaceAllowedIPs || c.PresharedKey == nil || c.PersistentKeepaliveInterval == nil) {
			t.Errorf("config of %s is not complete: %+v", Key(c.PublicKey), c)
		}
	}

	// The device's own state is no change at all.
	_, ch = diffPeers(cur, func() []Peer {
		var ps []Peer
		for _, c := range cur {
			ps = append(ps, peerFromWG(c))
		}
		return ps
	}())
	if ch != (Changes{}) {
		t.Errorf("diff against itself = %+v; want none", ch)
	}
}

func TestStatusFromWG(t *testing.T) {
	p := wgPeer(testKey(1), Key{}, 0, "[::ffff:192.0.2.1]:1", "::ffff:10.0.0.0/120")
	p.LastHandshakeTime = time.Unix(0, 0)
	p.ReceiveBytes, p.TransmitBytes = 10, 20
	s := statusFromWG(p)
	if !s.LastHandshake.IsZero() {
		t.Errorf("LastHandshake = %v; want zero for the epoch", s.LastHandshake)
	}
	if s.Endpoint != netip.MustParseAddrPort("192.0.2.1:1") {
		t.Errorf("Endpoint = %v; want 192.0.2.1:1", s.Endpoint)
	}
	if len(s.AllowedIPs) != 1 || s.AllowedIPs[0] != pfx("10.0.0.0/24") {
		t.Errorf("AllowedIPs = %v; want [10.0.0.0/24]", s.AllowedIPs)
	}
	if s.RxBytes != 10 || s.TxBytes != 20 {
		t.Errorf("RxBytes, TxBytes = %d, %d; want 10, 20", s.RxBytes, s.TxBytes)
	}
}
