package wireguard

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func filledKey(b byte) wgtypes.Key {
	var k wgtypes.Key
	for i := range k {
		k[i] = b
	}
	return k
}

// TestUAPISet: every setting of a wgtypes.Config in the protocol's
// words; a removed peer carries nothing else.
func TestUAPISet(t *testing.T) {
	priv, psk := filledKey(1), filledKey(3)
	port, mark := 51820, 7
	keepalive := 25 * time.Second
	got := uapiSet(wgtypes.Config{
		PrivateKey: &priv, ListenPort: &port, FirewallMark: &mark,
		Peers: []wgtypes.PeerConfig{
			{PublicKey: filledKey(2), Remove: true, PresharedKey: &psk},
			{PublicKey: filledKey(4), PresharedKey: &psk, Endpoint: &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 51821},
				PersistentKeepaliveInterval: &keepalive, ReplaceAllowedIPs: true,
				AllowedIPs: []net.IPNet{ipNet(pfxs("10.98.0.2/32")[0]), ipNet(pfxs("fd98::/64")[0])}},
		},
	})
	want := strings.Join([]string{
		"private_key=" + strings.Repeat("01", 32),
		"listen_port=51820",
		"fwmark=7",
		"public_key=" + strings.Repeat("02", 32),
		"remove=true",
		"public_key=" + strings.Repeat("04", 32),
		"preshared_key=" + strings.Repeat("03", 32),
		"endpoint=[2001:db8::1]:51821",
		"persistent_keepalive_interval=25",
		"replace_allowed_ips=true",
		"allowed_ip=10.98.0.2/32",
		"allowed_ip=fd98::/64",
	}, "\n") + "\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uapiSet (-want +got):\n%s", diff)
	}
}

// TestUAPIDevice reads a get answer as wireguard-go writes it.
func TestUAPIDevice(t *testing.T) {
	text := strings.Join([]string{
		"private_key=" + strings.Repeat("01", 32),
		"listen_port=51820",
		"fwmark=7",
		"public_key=" + strings.Repeat("02", 32),
		"preshared_key=" + strings.Repeat("00", 32),
		"protocol_version=1",
		"last_handshake_time_sec=0",
		"last_handshake_time_nsec=0",
		"tx_bytes=0",
		"rx_bytes=0",
		"persistent_keepalive_interval=0",
		"public_key=" + strings.Repeat("04", 32),
		"preshared_key=" + strings.Repeat("03", 32),
		"protocol_version=1",
		"endpoint=[2001:db8::1]:51821",
		"last_handshake_time_sec=1700000000",
		"last_handshake_time_nsec=5",
		"tx_bytes=10",
		"rx_bytes=20",
		"persistent_keepalive_interval=25",
		"allowed_ip=10.98.0.2/32",
		"errno=0",
	}, "\n") + "\n\n"
	d, err := uapiDevice("wg0", text)
	if err != nil {
		t.Fatal(err)
	}
	priv := filledKey(1)
	want := &wgtypes.Device{Name: "wg0", Type: wgtypes.Userspace, PrivateKey: priv, PublicKey: priv.PublicKey(), ListenPort: 51820, FirewallMark: 7,
		Peers: []wgtypes.Peer{
			{PublicKey: filledKey(2), ProtocolVersion: 1},
			{PublicKey: filledKey(4), PresharedKey: filledKey(3), ProtocolVersion: 1, Endpoint: &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 51821},
				LastHandshakeTime: time.Unix(1700000000, 5), TransmitBytes: 10, ReceiveBytes: 20, PersistentKeepaliveInterval: 25 * time.Second,
				AllowedIPs: []net.IPNet{ipNet(pfxs("10.98.0.2/32")[0])}},
		}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("uapiDevice (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"listen_port=70000\n", "public_key=zz\n", "nonsense\n", "errno=22\n"} {
		if _, err := uapiDevice("wg0", bad); err == nil || !strings.Contains(err.Error(), "device wg0") {
			t.Errorf("uapiDevice(%q) = %v, want an error naming the device", bad, err)
		}
	}
}
