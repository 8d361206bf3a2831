package clientconf

import (
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode"
)

// renderLines is the order of the lines Render writes, each named by how
// it starts; optional lines may be absent.
var renderLines = []struct {
	prefixes []string
	optional bool
}{
	{[]string{"# edge-vpn peer"}, false},
	{[]string{"[Interface]"}, false},
	{[]string{"PrivateKey = ", noPrivateKey}, false},
	{[]string{"Address = "}, false},
	{[]string{"DNS = "}, false},
	{[]string{"MTU = "}, true},
	{[]string{""}, false},
	{[]string{"[Peer]"}, false},
	{[]string{"PublicKey = "}, false},
	{[]string{"PresharedKey = "}, true},
	{[]string{"Endpoint = "}, true},
	{[]string{"AllowedIPs = "}, false},
	{[]string{"PersistentKeepalive = "}, true},
}

// checkStructure fails t unless out is made of the lines of renderLines,
// in order, each ended by "\n" and free of control characters and
// Unicode line breaks: no field may add a line or break one.
func checkStructure(t *testing.T, out string) {
	t.Helper()
	body, ok := strings.CutSuffix(out, "\n")
	if !ok {
		t.Fatalf("output does not end with a newline:\n%q", out)
	}
	lines := strings.Split(body, "\n")
	i := 0
	for _, want := range renderLines {
		matched := false
		if i < len(lines) {
			for _, p := range want.prefixes {
				if p == "" && lines[i] == "" || p != "" && strings.HasPrefix(lines[i], p) {
					matched = true
				}
			}
		}
		switch {
		case matched:
			i++
		case !want.optional:
			t.Fatalf("line %d: want one starting with %q, output:\n%q", i, want.prefixes, out)
		}
	}
	if i != len(lines) {
		t.Fatalf("%d lines, want %d; output:\n%q", len(lines), i, out)
	}
	for n, line := range lines {
		if strings.ContainsFunc(line, func(r rune) bool {
			return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
		}) {
			t.Fatalf("line %d holds a control character or line break: %q", n, line)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add("laptop", clientKey, serverKey, psk, "vpn.example.net:51820", "home.arpa", "", 1420, int64(25*time.Second))
	f.Add("", "", "", "", "", "", "", 0, int64(0))
	f.Add("a\nb", "\n", "\r", "x\u2028", "[::1]:1\n[Peer]", "a\r\nMTU = 1", "wg0\nDNS = 1.1.1.1", -1, int64(-1))
	f.Add("\u0085\u2029", clientKey+"\n", serverKey[:43]+"\r", "\x00", "vpn:51820#", "\t", "%", 65536, int64(1500*time.Millisecond))
	f.Fuzz(func(t *testing.T, name, priv, pub, presh, endpoint, search, zone string, mtu int, keepalive int64) {
		c := fullTunnel()
		c.Name = name
		c.PrivateKey = priv
		c.ServerPublicKey = pub
		c.PresharedKey = presh
		c.Endpoint = endpoint
		c.DNSSearch = []string{search}
		c.MTU = mtu
		c.Keepalive = time.Duration(keepalive)
		if zone != "" {
			c.DNS = append(c.DNS, netip.MustParseAddr("fe80::1").WithZone(zone))
		}
		out := c.Render()
		checkStructure(t, out)

		err := c.Validate()
		if strings.ContainsAny(name+priv+pub+presh+endpoint+search+zone, "\r\n") && err == nil {
			t.Fatalf("Validate accepted a field with a line break: %+v", c)
		}
		if err != nil {
			return
		}
		// A valid config is written as given.
		for _, line := range []string{
			"PrivateKey = " + priv,
			"PublicKey = " + pub,
			"Endpoint = " + endpoint,
		} {
			if priv == "" && strings.HasPrefix(line, "PrivateKey") {
				continue
			}
			if !strings.Contains(out, "\n"+line+"\n") {
				t.Fatalf("valid config: output lacks %q:\n%s", line, out)
			}
		}
		if !strings.Contains(out, ", "+search+"\n") {
			t.Fatalf("valid config: DNS line lacks %q:\n%s", search, out)
		}
	})
}
