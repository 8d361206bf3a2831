package vpn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
)

// TestAccessServices: groups, the default and --access take services
// after the destination, the access table gets them, the registry keeps
// them, and the admin API shows them; a wrong entry through the API is a
// 400 that names the flag.
func TestAccessServices(t *testing.T) {
	v := startVPN(t, `site:
  networks:
    lan: [192.168.1.0/24, "fd00:1::/64"]
    vpn: [10.100.0.0/24]
vpn:
  metrics: {listen: "off"}
  wireguard:
    - interface: wg0
      pool: [vpn]
      endpoint: "vpn.example.net:51820"
      access:
        default: [lan icmp, "192.168.1.53 udp/53 tcp/53"]
        groups:
          nas-web: [192.168.1.10 tcp/80, "fd00:1::10 tcp/80"]
`)
	v.add(ctlapi.VPNPeerAdd{Name: "guest", Group: "nas-web"})
	v.add(ctlapi.VPNPeerAdd{Name: "kid"})
	v.add(ctlapi.VPNPeerAdd{Name: "tv", Access: []string{"192.168.1.20 tcp/8096,8920", "lan udp/1900"}})
	snap := v.k.snapshot()
	for _, want := range []string{
		"access guest on wg0 from [10.100.0.2] to [192.168.1.10/32 tcp/80 fd00:1::10/128 tcp/80]",
		"access kid on wg0 from [10.100.0.3] to [192.168.1.0/24 icmp fd00:1::/64 icmp 192.168.1.53/32 tcp/53 udp/53]",
		"access tv on wg0 from [10.100.0.4] to [192.168.1.20/32 tcp/8096,8920 192.168.1.0/24 udp/1900 fd00:1::/64 udp/1900]",
	} {
		if !strings.Contains(snap, want) {
			t.Errorf("the access table lacks %q:\n%s", want, snap)
		}
	}
	if got := strings.Join(v.peer("tv").Access, "; "); got != "192.168.1.20/32 tcp/8096,8920; 192.168.1.0/24 udp/1900; fd00:1::/64 udp/1900" {
		t.Errorf("peer show tv: access %q", got)
	}

	for _, tc := range []struct{ access, want string }{
		{"192.168.1.10 443/tcp", `--access "192.168.1.10 443/tcp": 443/tcp: write the protocol first: tcp/443`},
		{"192.168.1.10 tcp/0", `--access "192.168.1.10 tcp/0": tcp/0: port "0" is not from 1 to 65535`},
		{"nope tcp/80", `--access "nope tcp/80": unknown network "nope"`},
		{"192.168.1.10 gre/47", `--access "192.168.1.10 gre/47": gre/47: unknown protocol "gre"; use tcp, udp or icmp`},
	} {
		_, err := v.s.addPeer(context.Background(), ctlapi.VPNPeerAdd{Name: "bad", PublicKey: newPublicKey(t), Access: []string{tc.access}}, "uid 0")
		var apiErr *ctlapi.Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !strings.Contains(apiErr.Error(), tc.want) {
			t.Errorf("peer add --access %q: %v; want a 400 with %q", tc.access, err, tc.want)
		}
	}
}

// TestAccessConfigErrors: a wrong entry of a group or the default is an
// error at its key that says what would be accepted.
func TestAccessConfigErrors(t *testing.T) {
	body := head + `  wireguard:
    - interface: wg0
      pool: [vpn]
      endpoint: "x:1"
      access:
        default: ["", "lan tcp/"]
        groups:
          web: [192.168.1.10 tcp/80,443]
          ports: ["192.168.1.10 tcp/443-80 icmp/8", 192.168.1.10/24, lan 53]
`
	_, err := config.Parse([]byte(body), "edge.yaml", Section, DefaultConfig)
	want := []string{
		`vpn.wireguard[0].access.default[0]: empty; write a network of site.networks, a prefix or an address`,
		`vpn.wireguard[0].access.default[1]: access "lan tcp/": tcp/: no ports after the slash`,
		`vpn.wireguard[0].access.groups.web[1]: access "443": a port, not a network: a [flow, list] splits at commas, so quote an entry with a port list ("192.168.1.10 tcp/80,443") or write one entry per line`,
		`vpn.wireguard[0].access.groups.ports[0]: access "192.168.1.10 tcp/443-80 icmp/8": tcp/443-80: the range runs backwards`,
		`vpn.wireguard[0].access.groups.ports[1]: access "192.168.1.10/24": prefix 192.168.1.10/24 has host bits set; did you mean 192.168.1.0/24?`,
		`vpn.wireguard[0].access.groups.ports[2]: access "lan 53": 53: a port needs its protocol: tcp/53 or udp/53`,
	}
	if err == nil {
		t.Fatalf("config loads; want errors %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q; got:\n%v", w, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("%d errors, want %d:\n%v", n, len(want), err)
	}
}

// TestAccessStored: the registry keeps entries as text; a peer stored
// before entries had services (bare prefixes) reads back with the same
// limits, and a new one round-trips.
func TestAccessStored(t *testing.T) {
	var old storedPeer
	if err := json.Unmarshal([]byte(`{"name":"kid","access":["192.168.1.0/24","fd00:1::10/128"]}`), &old); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(old.Access); got != "[192.168.1.0/24 fd00:1::10/128]" {
		t.Errorf("an old peer's access = %s", got)
	}
	p := storedPeer{Name: "tv", Access: entries("192.168.1.20 udp/1900 tcp/8096,8920", "fd00:1::/64 icmp")}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"access":["192.168.1.20/32 tcp/8096,8920 udp/1900","fd00:1::/64 icmp"]`) {
		t.Errorf("stored as %s", b)
	}
	var back storedPeer
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p.Access, back.Access, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("access after a round trip (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"access":["lan"]}`), &back); err == nil {
		t.Errorf("a stored network name reads back; the registry holds prefixes only")
	}
}

// FuzzParseAccess: any --access text parses or fails without a panic,
// and what parses prints as text that parses back to the same entries.
func FuzzParseAccess(f *testing.F) {
	for _, s := range []string{"lan", "192.168.1.10 tcp/80,443", "192.168.1.0/24 udp/53 tcp/53", "fd00::1 tcp/8000-8099 icmp", "10.0.0.0/8 tcp udp/1-65535", "1.2.3.4 443/tcp", ""} {
		f.Add(s)
	}
	site := &config.Site{Networks: map[string][]netip.Prefix{"lan": {netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("fd00:1::/64")}}}
	f.Fuzz(func(t *testing.T, s string) {
		es, err := parseAccess(s, site)
		if err != nil {
			return
		}
		for _, e := range es {
			again, err := parseAccess(e.String(), site)
			if err != nil || len(again) != 1 || again[0].String() != e.String() {
				t.Fatalf("parseAccess(%q) gave %q, which parses as %v, %v", s, e, again, err)
			}
		}
	})
}
