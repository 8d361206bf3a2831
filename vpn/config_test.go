package vpn

import (
	"errors"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/config"
)

const head = `version: 1
site:
  local_domain: home.arpa
  networks: {lan: [192.168.1.0/24], vpn: [10.100.0.0/24, "fd00:100::/64"], small: [10.9.9.0/31]}
vpn:
`

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"good", `  wireguard:
    - {interface: wg0, pool: [vpn], endpoint: "vpn.example.net:51820"}
`, nil},
		{"interface", `  wireguard:
    - {interface: "a-very-long-interface", pool: [vpn], endpoint: "x:1"}
    - {interface: wg0, pool: [vpn], endpoint: "x:1", listen_port: 51821}
    - {interface: wg0, pool: [vpn], endpoint: "x:1", listen_port: 51822}
`, []string{
			`vpn.wireguard[0].interface: interface name "a-very-long-interface": 1 to 15 characters`,
			`vpn.wireguard[2].interface: interface wg0 is also vpn.wireguard[1]`,
		}},
		{"pool and endpoint", `  wireguard:
    - {interface: wg0, endpoint: "nope"}
    - {interface: wg1, pool: [small], listen_port: 2, endpoint: "[2001:db8::1]:70000"}
    - {interface: wg2, pool: [vpn, lan], listen_port: 3, endpoint: "bad host!:1", address: [10.200.0.1]}
`, []string{
			`vpn.wireguard[0].pool: missing; name the network peers get addresses from`,
			`vpn.wireguard[0].endpoint: "nope" is not host:port`,
			`vpn.wireguard[1].pool[0]: pool 10.9.9.0/31 is too small for the router and a peer`,
			`vpn.wireguard[1].endpoint: "[2001:db8::1]:70000": port "70000" is not from 1 to 65535`,
			`vpn.wireguard[2].pool: give at most one IPv4 and one IPv6 prefix, got 2 and 1`,
			`vpn.wireguard[2].address[0]: 10.200.0.1 is not in the pool`,
			`vpn.wireguard[2].endpoint: "bad host!:1": "bad host!" is neither an IP address nor a host name`,
		}},
		{"peers", `  wireguard:
    - interface: wg0
      pool: [vpn]
      endpoint: "x:1"
      access: {groups: {Kids: [lan]}}
      peers:
        - {name: Laptop, public_key: "kR5tbtQuP9kH1XgMWq4uvbDR0KsSLajK8bsS2ErwRQA="}
        - {name: a, public_key: "kR5tbtQuP9kH1XgMWq4uvbDR0KsSLajK8bsS2ErwRQA=", addresses: [10.0.0.1], endpoint: "host:1", group: nope}
        - {name: a, public_key: "not a key"}
        - {name: b, public_key: "6h1NQ9G+DQeiDdVt3u6yxdBHawA5lHFONHVTHeIcBkU=", addresses: [10.100.0.255]}
`, []string{
			`vpn.wireguard[0].access.groups.Kids: invalid group name "Kids"`,
			`vpn.wireguard[0].peers[0].name: invalid peer name "Laptop"`,
			`vpn.wireguard[0].peers[1].addresses[0]: 10.0.0.1 is not in the pool`,
			`vpn.wireguard[0].peers[1].endpoint: endpoint "host:1": want an IP address and port`,
			`vpn.wireguard[0].peers[1].group: unknown group "nope"; vpn.wireguard[0].access.groups has Kids`,
			`vpn.wireguard[0].peers[2].name: peer name "a" is also vpn.wireguard[0].peers[1]`,
			`vpn.wireguard[0].peers[2].public_key: parse key:`,
			`vpn.wireguard[0].peers[3].addresses[0]: 10.100.0.255 is the pool's network or broadcast address`,
		}},
		{"names", `  wireguard:
    - {interface: wg0, pool: [vpn], endpoint: "x:1"}
  names: {server: "127.0.0.1", algorithm: md5, subdomain: "-"}
  reconcile: 0s
`, []string{
			`vpn.names.server: "127.0.0.1" is not host:port`,
			`vpn.names.key: missing; name the TSIG key`,
			`vpn.names: give the TSIG secret as secret or secret_file (one of them)`,
			`vpn.names.algorithm: unknown algorithm "md5"`,
			`vpn.names.subdomain: invalid label "-"`,
			`vpn.reconcile: must be from 1s to 1h, got 0s`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(head+tc.body), "edge.yaml", Section, DefaultConfig)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want config.Errors", err)
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors lack %q; got:\n%s", w, got)
				}
			}
			if len(errs) != len(tc.want) {
				t.Errorf("%d errors, want %d:\n%s", len(errs), len(tc.want), got)
			}
		})
	}
}

// FuzzConfig drives arbitrary vpn sections through the loader: no panic,
// and every error names a key of the section or the file's syntax.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(head + "  wireguard:\n    - {interface: wg0, pool: [vpn], endpoint: \"x:1\"}\n"))
	f.Add([]byte(head + "  wireguard:\n    - {interface: wg0, pool: [vpn, lan], endpoint: \"[::1]:1\", peers: [{name: a, public_key: \"kR5tbtQuP9kH1XgMWq4uvbDR0KsSLajK8bsS2ErwRQA=\", routes: [lan]}]}\n  names: {server: \"h:53\", key: k, secret: s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "edge.yaml", Section, DefaultConfig)
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T %v, want config.Errors", err, err)
			}
			return
		}
		// A valid section yields pools the allocator can use.
		for _, w := range cfg.Section.WireGuard {
			v4, v6 := w.poolPrefixes(&cfg.Site)
			pool := append(v4, v6...)
			if _, err := allocate(pool, routerAddrs(pool, w.Address), nil); err != nil {
				t.Errorf("a valid interface's pool gives no address: %v", err)
			}
		}
	})
}
