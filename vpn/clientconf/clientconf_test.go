package clientconf

import (
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/nettest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Keys made with wg genkey, wg pubkey and wg genpsk for these tests only.
const (
	clientKey  = "gDkiVabKtDfVeqYorolkaxuX++LcmWEJEZiCkJ+Imm8="
	clientKey2 = "2Mk+WZY75nzBxzlGCuTANyPMh4bp5az/GpQ4HXj5XEo="
	serverKey  = "3vGtdvSYf5er6v+Af5QC6V53ykkuaL/D3KFLuqbcm1I="
	psk        = "Tf+tzLlgE/aK3j90CMjz71L9o69bt9s9zzEwoil9ods="
)

func prefixes(s ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(s))
	for i, x := range s {
		ps[i] = netip.MustParsePrefix(x)
	}
	return ps
}

func addrs(s ...string) []netip.Addr {
	as := make([]netip.Addr, len(s))
	for i, x := range s {
		as[i] = netip.MustParseAddr(x)
	}
	return as
}

// fullTunnel has every field set.
func fullTunnel() Config {
	return Config{
		Name:            "laptop",
		PrivateKey:      clientKey,
		Addresses:       prefixes("10.100.0.2/32", "fd00:100::2/128"),
		DNS:             addrs("10.100.0.1", "fd00:100::1"),
		DNSSearch:       []string{"home.arpa"},
		MTU:             1420,
		ServerPublicKey: serverKey,
		PresharedKey:    psk,
		Endpoint:        "vpn.example.net:51820",
		AllowedIPs:      prefixes("0.0.0.0/0", "::/0"),
		Keepalive:       25 * time.Second,
	}
}

// splitTunnel routes only the home networks and has no preshared key,
// MTU, keepalive or search domain.
func splitTunnel() Config {
	return Config{
		Name:            "phone-anna",
		PrivateKey:      clientKey2,
		Addresses:       prefixes("10.100.0.3/32", "fd00:100::3/128"),
		DNS:             addrs("192.168.1.1"),
		ServerPublicKey: serverKey,
		Endpoint:        "[2001:db8::1]:51820",
		AllowedIPs:      prefixes("192.168.1.0/24", "fd00:1::/64", "10.100.0.0/24"),
	}
}

// noPrivateKeyConfig is for a device that keeps its own key.
func noPrivateKeyConfig() Config {
	return Config{
		Name:            "router-parents",
		Addresses:       prefixes("10.100.0.4/32"),
		DNS:             addrs("10.100.0.1"),
		DNSSearch:       []string{"home.arpa", "lan.example.net"},
		ServerPublicKey: serverKey,
		PresharedKey:    psk,
		Endpoint:        "203.0.113.7:51820",
		AllowedIPs:      prefixes("192.168.1.0/24"),
		Keepalive:       25 * time.Second,
	}
}

var goldenCases = []struct {
	file string
	c    Config
	// stripped are the lines `wg-quick strip` must keep, comments and
	// blank lines left out: what `wg setconf` reads.
	stripped []string
}{
	{"full.conf", fullTunnel(), []string{
		"[Interface]",
		"PrivateKey = " + clientKey,
		"[Peer]",
		"PublicKey = " + serverKey,
		"PresharedKey = " + psk,
		"Endpoint = vpn.example.net:51820",
		"AllowedIPs = 0.0.0.0/0, ::/0",
		"PersistentKeepalive = 25",
	}},
	{"split.conf", splitTunnel(), []string{
		"[Interface]",
		"PrivateKey = " + clientKey2,
		"[Peer]",
		"PublicKey = " + serverKey,
		"Endpoint = [2001:db8::1]:51820",
		"AllowedIPs = 192.168.1.0/24, fd00:1::/64, 10.100.0.0/24",
	}},
	{"nokey.conf", noPrivateKeyConfig(), []string{
		"[Interface]",
		"[Peer]",
		"PublicKey = " + serverKey,
		"PresharedKey = " + psk,
		"Endpoint = 203.0.113.7:51820",
		"AllowedIPs = 192.168.1.0/24",
		"PersistentKeepalive = 25",
	}},
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			if err := tc.c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := tc.c.Render()
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Render() differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}

// requireCommand returns the path of the command name, or skips or fails
// t as unavailable says when it is missing.
func requireCommand(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		nettest.Unavailable(t, "needs "+name+" (Debian package "+pkg+")")
	}
	return path
}

// TestRenderWGQuickStrip feeds each rendered config to `wg-quick strip`,
// which drops the wg-quick-only settings (Address, DNS, MTU) and prints
// what `wg setconf` reads.
func TestRenderWGQuickStrip(t *testing.T) {
	wgQuick := requireCommand(t, "wg-quick", "wireguard-tools")
	nettest.RequireRoot(t) // wg-quick re-runs itself through sudo otherwise
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			// wg-quick takes the interface name from the file name.
			path := filepath.Join(dir, "wg0.conf")
			if err := os.WriteFile(path, []byte(tc.c.Render()), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(wgQuick, "strip", path)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("wg-quick strip: %v\n%s", err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("wg-quick strip wrote to stderr:\n%s", stderr.String())
			}
			var got []string
			for line := range strings.Lines(string(out)) {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				got = append(got, line)
			}
			if strings.Join(got, "\n") != strings.Join(tc.stripped, "\n") {
				t.Errorf("wg-quick strip kept:\n%s\nwant:\n%s\nfull output:\n%s", strings.Join(got, "\n"), strings.Join(tc.stripped, "\n"), out)
			}
		})
	}
}

func TestRenderNoPrivateKey(t *testing.T) {
	out := noPrivateKeyConfig().Render()
	want := "[Interface]\n# PrivateKey = (this device's own key; edge-vpn does not have it)\nAddress = "
	if !strings.Contains(out, want) {
		t.Errorf("Render() without a private key lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "\nPrivateKey") {
		t.Errorf("Render() without a private key has a PrivateKey line:\n%s", out)
	}
}

func TestRenderKeepaliveRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]string{
		25 * time.Second:        "PersistentKeepalive = 25\n",
		1500 * time.Millisecond: "PersistentKeepalive = 2\n",
		time.Nanosecond:         "PersistentKeepalive = 1\n",
		-time.Second:            "",
		0:                       "",
	} {
		c := fullTunnel()
		c.Keepalive = d
		out := c.Render()
		if want == "" {
			if strings.Contains(out, "PersistentKeepalive") {
				t.Errorf("Keepalive %v: got a PersistentKeepalive line:\n%s", d, out)
			}
		} else if !strings.HasSuffix(out, want) {
			t.Errorf("Keepalive %v: output does not end with %q:\n%s", d, want, out)
		}
	}
}

func TestRenderStripsLineBreaks(t *testing.T) {
	c := fullTunnel()
	c.Name = "laptop\n[Peer]\nPublicKey = evil"
	c.Endpoint = "vpn.example.net:51820\r\nAllowedIPs = 0.0.0.0/0"
	c.DNSSearch = []string{"home.arpa\u2028x", "\u0085"}
	c.PresharedKey = "\n"
	out := c.Render()
	want := "# edge-vpn peer laptop[Peer]PublicKey = evil\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("first line: got %q, want %q", strings.SplitAfter(out, "\n")[0], want)
	}
	for _, s := range []string{"\r", "\u2028", "\u0085", "PresharedKey"} {
		if strings.Contains(out, s) {
			t.Errorf("output contains %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "\nEndpoint = vpn.example.net:51820AllowedIPs = 0.0.0.0/0\n") ||
		!strings.Contains(out, "\nDNS = 10.100.0.1, fd00:100::1, home.arpax\n") {
		t.Errorf("values not stripped in place:\n%s", out)
	}
	if err := c.Validate(); err == nil {
		t.Error("Validate accepted fields with line breaks")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error; none: valid
	}{
		{"full tunnel", func(*Config) {}, nil},
		{"split tunnel", func(c *Config) { *c = splitTunnel() }, nil},
		{"no private key", func(c *Config) { *c = noPrivateKeyConfig() }, nil},
		{"empty name", func(c *Config) { c.Name = "" }, nil},
		{"IPv4 endpoint", func(c *Config) { c.Endpoint = "192.0.2.1:51820" }, nil},
		{"IPv6 endpoint", func(c *Config) { c.Endpoint = "[2001:db8::1]:443" }, nil},
		{"fqdn endpoint", func(c *Config) { c.Endpoint = "vpn.example.net.:51820" }, nil},
		{"keepalive in ms", func(c *Config) { c.Keepalive = 2500 * time.Millisecond }, nil},
		{"IPv4-only low MTU", func(c *Config) { c.Addresses = prefixes("10.100.0.2/32"); c.MTU = 1000 }, nil},

		{"missing server key", func(c *Config) { c.ServerPublicKey = "" }, []string{"ServerPublicKey: missing"}},
		{"short server key", func(c *Config) { c.ServerPublicKey = serverKey[:43] }, []string{"ServerPublicKey: is 43 characters long"}},
		{"long private key", func(c *Config) { c.PrivateKey = clientKey + "A" }, []string{"PrivateKey: is 45 characters long"}},
		{"key not base64", func(c *Config) { c.PresharedKey = strings.Repeat("!", 43) + "=" }, []string{"PresharedKey: is not a 32-byte key"}},
		{"key without padding", func(c *Config) { c.PrivateKey = strings.Repeat("A", 44) }, []string{"PrivateKey: is not a 32-byte key"}},
		{"key with stray bits", func(c *Config) { c.PrivateKey = clientKey[:42] + "9=" }, []string{"PrivateKey: is not a 32-byte key"}},
		{"key with newline", func(c *Config) { c.PresharedKey = psk[:43] + "\n" }, []string{"PresharedKey: contains a line feed"}},
		{"no addresses", func(c *Config) { c.Addresses = nil }, []string{"Addresses: no addresses"}},
		{"invalid address", func(c *Config) { c.Addresses = []netip.Prefix{{}} }, []string{"Addresses[0]: invalid prefix"}},
		{"no allowed IPs", func(c *Config) { c.AllowedIPs = nil }, []string{"AllowedIPs: no allowed IPs"}},
		{"allowed IP host bits", func(c *Config) { c.AllowedIPs = prefixes("192.168.1.1/24") }, []string{"AllowedIPs[0]: 192.168.1.1/24 has host bits set (the network is 192.168.1.0/24)"}},
		{"missing endpoint", func(c *Config) { c.Endpoint = "" }, []string{"Endpoint: missing"}},
		{"endpoint without port", func(c *Config) { c.Endpoint = "vpn.example.net" }, []string{`Endpoint: "vpn.example.net" has no port`}},
		{"endpoint empty port", func(c *Config) { c.Endpoint = "vpn.example.net:" }, []string{"has no port"}},
		{"IPv6 endpoint without port", func(c *Config) { c.Endpoint = "[2001:db8::1]" }, []string{"has no port"}},
		{"IPv6 endpoint without brackets", func(c *Config) { c.Endpoint = "2001:db8::1:51820" }, []string{"Endpoint:", "in brackets"}},
		{"IPv4 in brackets", func(c *Config) { c.Endpoint = "[192.0.2.1]:51820" }, []string{"Endpoint:", "only an IPv6 address"}},
		{"port zero", func(c *Config) { c.Endpoint = "vpn.example.net:0" }, []string{"Endpoint: port \"0\""}},
		{"port too big", func(c *Config) { c.Endpoint = "vpn.example.net:65536" }, []string{"Endpoint: port \"65536\""}},
		{"port name", func(c *Config) { c.Endpoint = "vpn.example.net:wireguard" }, []string{"Endpoint: port \"wireguard\""}},
		{"no host", func(c *Config) { c.Endpoint = ":51820" }, []string{"Endpoint:", "has no host"}},
		{"bad host", func(c *Config) { c.Endpoint = "vpn..example.net:51820" }, []string{"Endpoint:", "empty label"}},
		{"endpoint with space", func(c *Config) { c.Endpoint = "vpn example.net:51820" }, []string{"Endpoint:", "contains ' '"}},
		{"endpoint with newline", func(c *Config) { c.Endpoint = "vpn.example.net:51820\nPublicKey = x" }, []string{"Endpoint:", "contains a line feed"}},
		{"name with newline", func(c *Config) { c.Name = "laptop\n[Peer]" }, []string{"Name:", "contains a line feed"}},
		{"name with CR", func(c *Config) { c.Name = "laptop\r" }, []string{"Name:", "contains a carriage return"}},
		{"name with line separator", func(c *Config) { c.Name = "a\u2028b" }, []string{"Name:", "U+2028"}},
		{"name not UTF-8", func(c *Config) { c.Name = "\xff" }, []string{"Name:", "not valid UTF-8"}},
		{"invalid DNS", func(c *Config) { c.DNS = []netip.Addr{{}} }, []string{"DNS[0]: invalid address"}},
		{"DNS with zone", func(c *Config) { c.DNS = addrs("fe80::1%wg0") }, []string{"DNS[0]:", "has a zone"}},
		{"DNS unspecified", func(c *Config) { c.DNS = addrs("0.0.0.0") }, []string{"DNS[0]:", "unspecified"}},
		{"search without DNS", func(c *Config) { c.DNS = nil }, []string{"DNSSearch: search domains need"}},
		{"numeric search domain", func(c *Config) { c.DNSSearch = []string{"10.1"} }, []string{"DNSSearch[0]:", "DNS server address"}},
		{"search domain with comma", func(c *Config) { c.DNSSearch = []string{"a,b"} }, []string{"DNSSearch[0]:", "contains ','"}},
		{"search domain with newline", func(c *Config) { c.DNSSearch = []string{"home.arpa\nMTU = 1"} }, []string{"DNSSearch[0]:", "contains a line feed"}},
		{"empty search domain", func(c *Config) { c.DNSSearch = []string{""} }, []string{"DNSSearch[0]:"}},
		{"negative MTU", func(c *Config) { c.MTU = -1 }, []string{"MTU: -1 is outside"}},
		{"tiny MTU", func(c *Config) { c.MTU = 100 }, []string{"MTU: 100 is outside"}},
		{"huge MTU", func(c *Config) { c.MTU = 70000 }, []string{"MTU: 70000 is outside"}},
		{"MTU too low for IPv6", func(c *Config) { c.MTU = 1200 }, []string{"MTU: 1200 is below 1280"}},
		{"negative keepalive", func(c *Config) { c.Keepalive = -time.Second }, []string{"Keepalive:", "negative"}},
		{"keepalive too long", func(c *Config) { c.Keepalive = 65536 * time.Second }, []string{"Keepalive:", "over 65535"}},
		{"several problems", func(c *Config) { c.ServerPublicKey = ""; c.AllowedIPs = nil }, []string{"ServerPublicKey: missing", "AllowedIPs: no allowed IPs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fullTunnel()
			tt.edit(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted the config, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestValidateHidesKeys checks that errors about keys do not repeat them.
func TestValidateHidesKeys(t *testing.T) {
	c := fullTunnel()
	c.PrivateKey = clientKey[:40]
	c.PresharedKey = psk[:42] + "9="
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad keys")
	}
	for _, k := range []string{c.PrivateKey, c.PresharedKey} {
		if strings.Contains(err.Error(), k) {
			t.Errorf("error %q repeats a key", err)
		}
	}
}
