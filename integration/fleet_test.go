//go:build integration

// The router's edge config that edge-fleet generated for the example fleet
// (examples/fleet/machines/router/edge.json) runs in the lab: edge-dns,
// edge-firewall and edge-vpn start on it (paths moved into the test's
// folder, the lan interface renamed to the lab's), and a lan client
// resolves the fleet's hosts through the router.

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homeedge/edge/integration/lab"
)

func TestFleetRouterConfig(t *testing.T) {
	const ex = "../examples/fleet"
	raw, err := os.ReadFile(filepath.Join(ex, "machines", "router", "edge.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The router's WireGuard key, decrypted with the example admin key as
	// agenix would with the router's own.
	wgKey := filepath.Join(dir, "wireguard.key")
	out, err := exec.Command("age", "-d", "-i", "../nixos/fleet/testdata/admin_ed25519", "-o", wgKey,
		filepath.Join(ex, "secrets", "router", "wireguard.key.age")).CombinedOutput()
	if err != nil {
		t.Fatalf("age -d: %v\n%s", err, out)
	}
	os.Chmod(wgKey, 0o600)
	cfg["admin"] = map[string]any{"socket_dir": filepath.Join(dir, "run")}
	cfg["state_dir"] = filepath.Join(dir, "state")
	site := cfg["site"].(map[string]any)
	site["interfaces"] = map[string]any{"wan": lab.IfaceWAN, "lan": lab.IfaceLAN}
	vpn := cfg["vpn"].(map[string]any)
	wg := vpn["wireguard"].([]any)[0].(map[string]any)
	wg["private_key_file"] = wgKey
	b, _ := json.MarshalIndent(cfg, "", "  ")
	path := filepath.Join(dir, "edge.json")
	os.WriteFile(path, b, 0o644)

	for _, d := range []string{"edge-dns", "edge-firewall", "edge-vpn"} {
		if out, err := exec.Command(bin(d), "-check", "-config", path).CombinedOutput(); err != nil {
			t.Fatalf("%s -check: %v\n%s", d, err, out)
		}
	}
	l := lab.ForTest(t, lab.Options{})
	for _, d := range []string{"edge-dns", "edge-firewall", "edge-vpn"} {
		startDaemon(t, l, lab.NodeRouter, d, path)
	}
	var nas struct {
		Addresses map[string]string `json:"addresses"`
	}
	factsB, _ := os.ReadFile(filepath.Join(ex, "machines", "nas", "facts.json"))
	json.Unmarshal(factsB, &nas)
	ctx := t.Context()
	got, err := l.Run(ctx, lab.NodeClient, "dig", "+short", "+time=2", "@"+lab.RouterLANAddr4, "nas.home.arpa")
	if err != nil || strings.TrimSpace(string(got)) != nas.Addresses["lan"] {
		t.Errorf("nas.home.arpa from a lan client = %q (%v), want %s from its facts", got, err, nas.Addresses["lan"])
	}
	// The laptop is a WireGuard peer of the router, with its fleet key.
	var laptop struct {
		WireGuardPub string `json:"wireguard_pub"`
	}
	lb, _ := os.ReadFile(filepath.Join(ex, "machines", "laptop", "facts.json"))
	json.Unmarshal(lb, &laptop)
	peers, err := l.Run(ctx, lab.NodeRouter, "wg", "show", "wg0", "peers")
	if err != nil || strings.TrimSpace(string(peers)) != laptop.WireGuardPub {
		t.Errorf("wg0's peers = %q (%v), want the laptop's key %s", peers, err, laptop.WireGuardPub)
	}
}
