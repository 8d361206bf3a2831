package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
)

// fakeVPN serves edge-vpn's API and records each request.
func fakeVPN(t *testing.T, dir string) *[]string {
	t.Helper()
	rec := &recorder{}
	record := rec.note
	hs := time.Now().Add(-42 * time.Second)
	peer := ctlapi.VPNPeer{Name: "laptop", Interface: "wg0", Addresses: []string{"10.100.0.2", "fd00:100::2"}, State: "active",
		DNSName: "laptop.vpn.home.arpa", LastHandshake: &hs, RxBytes: 2048, TxBytes: 10}
	conf := ctlapi.VPNPeerConfig{Peer: peer, Config: "[Interface]\nPrivateKey = x\n", PrivateKey: true, QRText: "QR\n", QRPNG: []byte("PNG")}
	serveFake(t, dir, "vpn", "v0.1.0",
		ctlsock.Route{Method: "POST", Path: ctlapi.PathVPNPeers, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.VPNPeerAdd
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			record(r, req)
			if req.Name == "dup" {
				return nil, ctlapi.Errorf(http.StatusConflict, "peer dup exists; choose another name, or remove it first")
			}
			return conf, nil
		}},
		ctlsock.Route{Method: "GET", Path: ctlapi.PathVPNPeers, Handle: func(r *http.Request) (any, error) {
			record(r, nil)
			return []ctlapi.VPNPeer{peer}, nil
		}},
		ctlsock.Route{Method: "DELETE", Path: ctlapi.PathVPNPeers, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.VPNPeerRef
			ctlsock.DecodeBody(r, &req)
			record(r, req)
			return peer, nil
		}},
		ctlsock.Route{Method: "GET", Path: ctlapi.PathVPNPeer, Handle: func(r *http.Request) (any, error) {
			record(r, nil)
			return peer, nil
		}},
		ctlsock.Route{Method: "POST", Path: ctlapi.PathVPNPeer, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.VPNPeerUpdate
			ctlsock.DecodeBody(r, &req)
			record(r, req)
			p := peer
			if req.Enabled != nil && !*req.Enabled {
				p.State = "disabled"
			}
			return p, nil
		}},
		ctlsock.Route{Method: "GET", Path: ctlapi.PathVPNPeerConfig, Write: true, Handle: func(r *http.Request) (any, error) {
			record(r, nil)
			c := conf
			c.PrivateKey = false
			return c, nil
		}},
	)
	return &rec.seen
}

func TestPeer(t *testing.T) {
	dir := t.TempDir()
	seen := fakeVPN(t, dir)
	png := filepath.Join(dir, "qr.png")
	runCases(t, dir, seen, []cliCase{
		{[]string{"peer", "add", "laptop"}, 0, `POST /v1/vpn/peers {"name":"laptop"}`, "[Interface]\nPrivateKey = x\n", "added peer laptop on wg0: 10.100.0.2, fd00:100::2 (laptop.vpn.home.arpa)\nthe config holds the peer's private key"},
		{[]string{"-o", "conf", "peer", "add", "laptop", "--full-tunnel", "--psk", "--expires", "30d"}, 0,
			`POST /v1/vpn/peers {"name":"laptop","full_tunnel":true,"preshared_key":true,"expires":"30d"}`, "[Interface]", ""},
		{[]string{"peer", "add", "--pubkey", "KEY", "guest", "--group", "kids", "--access", "lan", "--access", "192.168.1.10"}, 0,
			`POST /v1/vpn/peers {"name":"guest","public_key":"KEY","group":"kids","access":["lan","192.168.1.10"]}`, "", ""},
		{[]string{"peer", "add", "laptop", "--qr"}, 0, `POST /v1/vpn/peers {"name":"laptop","qr":"terminal"}`, "QR\n", ""},
		{[]string{"peer", "add", "laptop", "--qr-png", png}, 0, `POST /v1/vpn/peers {"name":"laptop","qr":"png"}`, "", "wrote the QR code of laptop's config to " + png},
		{[]string{"peer", "add", "dup"}, ExitFailure, `POST /v1/vpn/peers {"name":"dup"}`, "", "vpn: peer dup exists"},
		{[]string{"peer", "add"}, ExitUsage, "", "", "usage: edgectl peer add NAME"},
		{[]string{"peer", "add", "x", "--qr", "--qr-png", "f"}, ExitUsage, "", "", "usage: edgectl peer add NAME"},
		{[]string{"peer", "ls"}, 0, `GET /v1/vpn/peers`, "laptop  wg0        10.100.0.2,fd00:100::2  active  42s ago", ""},
		{[]string{"peer", "show", "laptop"}, 0, `GET /v1/vpn/peer?name=laptop`, "dns name:       laptop.vpn.home.arpa\n", ""},
		{[]string{"peer", "config", "laptop", "--qr"}, 0, `GET /v1/vpn/peer/config?name=laptop&qr=terminal`, "QR\n", ""},
		{[]string{"-o", "conf", "peer", "config", "laptop"}, 0, `GET /v1/vpn/peer/config?name=laptop`, "[Interface]", ""},
		{[]string{"peer", "rm", "laptop"}, 0, `DELETE /v1/vpn/peers {"name":"laptop"}`, "removed laptop (10.100.0.2, fd00:100::2)\n", ""},
		{[]string{"peer", "disable", "laptop"}, 0, `POST /v1/vpn/peer {"name":"laptop","enabled":false}`, "laptop: disabled\n", ""},
		{[]string{"peer", "enable", "laptop", "--expires", "7d"}, 0, `POST /v1/vpn/peer {"name":"laptop","enabled":true,"expires":"7d"}`, "laptop: active\n", ""},
		{[]string{"peer", "disable", "laptop", "--expires", "7d"}, ExitUsage, "", "", "usage: edgectl peer enable"},
		{[]string{"peer", "rename", "laptop", "old-laptop"}, 0, `POST /v1/vpn/peer {"name":"laptop","rename":"old-laptop"}`, "", ""},
		{[]string{"-o", "conf", "peer", "ls"}, ExitUsage, "", "", "-o conf is for peer add and peer config"},
		{[]string{"peer", "fly"}, ExitUsage, "", "", `unknown peer command "fly"`},
	})

	if b, err := os.ReadFile(png); err != nil || string(b) != "PNG" {
		t.Errorf("--qr-png wrote %q, %v", b, err)
	}
	if fi, err := os.Stat(png); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("--qr-png file mode %v, want 0600 (it may hold a private key)", fi.Mode().Perm())
	}
}

// TestPeerQRPNGOutputs: an unwritable --qr-png stops the add before the
// peer exists (its private key would have nowhere to go); a written PNG
// comes with the config on stdout; -o json writes the file too.
func TestPeerQRPNGOutputs(t *testing.T) {
	dir := t.TempDir()
	seen := fakeVPN(t, dir)
	png, jsonPNG := filepath.Join(dir, "a.png"), filepath.Join(dir, "j.png")
	runCases(t, dir, seen, []cliCase{
		{[]string{"peer", "add", "laptop", "--qr-png", filepath.Join(dir, "nosuch", "qr.png")}, ExitFailure, "", "", "cannot write the QR code to " + dir + "/nosuch/qr.png, so nothing was done"},
		{[]string{"peer", "config", "laptop", "--qr-png", "/proc/nosuch.png"}, ExitFailure, "", "", "cannot write the QR code"},
		{[]string{"peer", "add", "laptop", "--qr-png", png}, 0, `POST /v1/vpn/peers {"name":"laptop","qr":"png"}`, "[Interface]\nPrivateKey = x\n", "wrote the QR code"},
		{[]string{"-o", "json", "peer", "add", "laptop", "--qr-png", jsonPNG}, 0, `POST /v1/vpn/peers {"name":"laptop","qr":"png"}`, `"private_key": true`, ""},
		{[]string{"peer", "add", "dup", "--qr-png", filepath.Join(dir, "dup.png")}, ExitFailure, `POST /v1/vpn/peers {"name":"dup","qr":"png"}`, "", "peer dup exists"},
	})
	for _, p := range []string{png, jsonPNG} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "PNG" {
			t.Errorf("%s holds %q, %v; want the PNG", p, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dup.png")); !os.IsNotExist(err) {
		t.Errorf("a failed add left its PNG file behind: %v", err)
	}
}
