package fleet

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/homeedge/edge/identity"
	"github.com/homeedge/edge/internal/nettest"
)

// The example fleet (examples/fleet) was generated once and committed; its
// secrets are encrypted to testdata/admin_ed25519, an example admin key.
const exampleDir = "../../examples/fleet"

func adminKey(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/admin_ed25519")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyTree copies the example fleet into a temp dir.
func copyTree(t testing.TB) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(exampleDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(exampleDir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func snapshot(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			m[rel], _ = os.ReadFile(path)
		}
		return nil
	})
	return m
}

// TestExampleIsCurrent: gen over the committed example changes nothing
// (byte for byte): the example is the golden output, and generation is
// idempotent.
func TestExampleIsCurrent(t *testing.T) {
	dir := copyTree(t)
	before := snapshot(t, dir)
	inv, err := LoadInventory(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Generate(inv, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) > 0 {
		after := snapshot(t, dir)
		for _, w := range res.Written {
			t.Errorf("gen rewrote %s:\n%s", w, lineDiff(string(before[w]), string(after[w])))
		}
	}
	nix := true
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		nix = false
		t.Log("nix-instantiate missing: .nix files not parsed")
	}
	if err := Check(inv, CheckOptions{Dir: dir, Identity: adminKey(t), Nix: nix}); err != nil {
		t.Errorf("Check of the example: %v", err)
	}
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("-%s\n+%s", x, y))
		}
	}
	return strings.Join(out, "\n")
}

// TestAddHost: a new host adds its own files and changes only the
// fleet-wide lists; no other host's identity moves.
func TestAddHost(t *testing.T) {
	dir := copyTree(t)
	before := snapshot(t, dir)
	yaml := string(before["fleet.yaml"]) + `  printer-server:
    system: x86_64-linux
    roles: [server]
    networks: [lan, nebula]
    hardware:
      firmware: uefi
      boot_disk: {id: nvme-New_Disk_0001, nvme: true}
      nics: [{name: eth0, mac: "aa:bb:cc:00:09:01", speed: 1000}]
`
	os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(yaml), 0o644)
	inv, err := LoadInventory(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(inv, Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Errorf("a new nebula host without the admin's key: %v, want an error asking for --identity", err)
	}
	res, err := Generate(inv, Options{Dir: dir, Identity: adminKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"fleet.yaml", "allocations.json", "fleet.nix", "flake.nix", "secrets.nix", "machines/router/edge.json"}
	for _, w := range res.Written {
		if strings.HasPrefix(w, "machines/printer-server/") || strings.HasPrefix(w, "secrets/printer-server/") {
			continue
		}
		if !slices.Contains(allowed, w) {
			t.Errorf("adding a host rewrote %s", w)
		}
	}
	for _, f := range []string{"machines/printer-server/facts.json", "machines/printer-server/default.nix", "machines/printer-server/hardware-configuration.nix",
		"secrets/printer-server/ssh_host_ed25519_key.age", "secrets/printer-server/nebula.key.age"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the new host lacks %s", f)
		}
	}
	if err := Check(inv, CheckOptions{Dir: dir, Identity: adminKey(t)}); err != nil {
		t.Errorf("Check after adding a host: %v", err)
	}
}

// TestRotate replaces one item and nothing else of the host's.
func TestRotate(t *testing.T) {
	dir := copyTree(t)
	inv, _ := LoadInventory(filepath.Join(dir, "fleet.yaml"))
	var old Facts
	readJSON(factsPath(dir, "pi"), &old)
	if _, err := Generate(inv, Options{Dir: dir, Rotate: []string{"pi/machine-id"}}); err != nil {
		t.Fatal(err)
	}
	var now Facts
	readJSON(factsPath(dir, "pi"), &now)
	if now.MachineID == old.MachineID || now.HostID != now.MachineID[:8] || now.SSHHostEd25519Pub != old.SSHHostEd25519Pub {
		t.Errorf("rotate pi/machine-id: %+v -> %+v", old, now)
	}
	if _, err := Generate(inv, Options{Dir: dir, Rotate: []string{"pi/nope"}}); err == nil {
		t.Errorf("rotate of an unknown item succeeded")
	}
}

// TestSecretsDecryptOnlyForTheirHost runs Debian's age: a host's own key
// (laid out by Bundle) decrypts its secrets and not another host's.
func TestSecretsDecryptOnlyForTheirHost(t *testing.T) {
	if _, err := exec.LookPath("age"); err != nil {
		nettest.Unavailable(t, "needs the age command (Debian package age)")
	}
	inv, err := LoadInventory(filepath.Join(exampleDir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, h := range []string{"router", "nas"} {
		out := t.TempDir()
		if err := Bundle(inv, exampleDir, h, adminKey(t), out); err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(out, "etc", "ssh", "ssh_host_ed25519_key")
		if fi, _ := os.Stat(key); fi == nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("bundle's host key mode: %v", fi)
		}
		keys[h] = key
	}
	secret := filepath.Join(exampleDir, "secrets", "router", "wireguard.key.age")
	if out, err := exec.Command("age", "-d", "-i", keys["router"], secret).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 44 {
		t.Errorf("age -d with the router's key: %v %q", err, out)
	}
	if out, err := exec.Command("age", "-d", "-i", keys["nas"], secret).CombinedOutput(); err == nil || !strings.Contains(string(out), "no identity matched") {
		t.Errorf("age -d of the router's secret with the nas's key: %v %q", err, out)
	}
}

func TestInventoryErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(exampleDir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"role", "roles: [media]", "roles: [medai]", `hosts.pi.roles[0]: unknown role "medai" (did you mean "media"?)`},
		{"system", "system: aarch64-linux\n    roles: [media]", "system: arm64\n    roles: [media]", `hosts.pi.system: unknown system "arm64"`},
		{"network", "networks: [lan]\n    hardware:\n      firmware: uboot", "networks: [lam]\n    hardware:\n      firmware: uboot", `hosts.pi.networks[0]: unknown network "lam"`},
		{"address", "addresses: {lan: 192.168.1.1, vpn: 10.100.0.1}", "addresses: {lan: 192.168.2.1, vpn: 10.100.0.1}", `hosts.router.addresses.lan: 192.168.2.1 is not in lan (192.168.1.0/24)`},
		{"mac", `"dc:a6:32:00:00:01"`, `"dc:a6:32:00:00"`, `hosts.pi.hardware.nics[0].mac: invalid MAC`},
		{"firmware", "firmware: uboot", "firmware: efi", `hosts.pi.hardware.firmware: unknown firmware "efi"`},
		{"unknown key", "board: raspberry-pi-4", "bord: raspberry-pi-4", `hosts.pi.hardware.bord: unknown key "bord" (did you mean "board"?)`},
		{"overlap", "nebula: {prefix: 10.200.0.0/16}", "nebula: {prefix: 10.100.0.0/16}", `networks.vpn.prefix: 10.100.0.0/24 overlaps network nebula`},
		{"router nics", `        - {name: wan, mac: "aa:bb:cc:00:00:01", speed: 2500, role: wan}`, `        - {name: wan, mac: "aa:bb:cc:00:00:01", speed: 2500}`, `hosts.router.hardware.nics: a router needs a nic with role wan and one with role lan`},
		{"admin key", "ssh: [\"ssh-ed25519", "ssh: [\"ssh-dss", `admins[0].ssh[0]: want an SSH public key`},
		{"role option", "builder: {max_jobs: 8, speed_factor: 4}", "builder: {max_job: 8}", `hosts.nas.options.builder.max_job: unknown key "max_job" (did you mean "max_jobs"?)`},
		// What reaches Nix or a udev rule must be a plain interface name.
		{"nic name injection", `{name: eth0, mac: "aa:bb:cc:00:01:01"`, `{name: "eth0\"; ${builtins.abort \"x\"}", mac: "aa:bb:cc:00:01:01"`, `hosts.nas.hardware.nics[0].name: invalid interface name`},
		{"nic name newline", `{name: eth0, mac: "aa:bb:cc:00:01:01"`, `{name: "eth0\nx", mac: "aa:bb:cc:00:01:01"`, `hosts.nas.hardware.nics[0].name: invalid interface name`},
		{"duplicate nic name", `{name: lan, mac: "aa:bb:cc:00:00:02"`, `{name: wan, mac: "aa:bb:cc:00:00:02"`, `hosts.router.hardware.nics[1].name: wan is also the name of nics[0]`},
		{"duplicate mac", `mac: "aa:bb:cc:00:01:01"`, `mac: "aa:bb:cc:00:00:01"`, `hosts.router.hardware.nics[0].mac: MAC aa:bb:cc:00:00:01 is also hosts.nas.hardware.nics[0]'s`},
		{"negative speed", `mac: "aa:bb:cc:00:01:01", speed: 10000}`, `mac: "aa:bb:cc:00:01:01", speed: -10}`, `hosts.nas.hardware.nics[0].speed: want the link speed in Mbit/s`},
		{"two disks one mount", "mount: /srv/bulk", "mount: /var/lib/libvirt/images", `data_disks[1].mount: /var/lib/libvirt/images is also the mount of data_disks[0]`},
		{"data disk on /boot", "mount: /data, fs: xfs", "mount: /boot, fs: xfs", `hosts.nas.hardware.data_disks[0].mount: /boot is the boot disk's`},
		{"boot disk as data", "{id: ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA1, mount: /data", "{id: nvme-WD_BLACK_SN770_1TB_22001A800001, mount: /data", `hosts.nas.hardware.data_disks[0].id: disk nvme-WD_BLACK_SN770_1TB_22001A800001 is the boot disk already`},
		{"same fixed address", "networks: [lan, nebula]\n    hardware:\n      firmware: uefi\n      boot_disk: {id: nvme-WD_BLACK", "networks: [lan, nebula]\n    addresses: {lan: 192.168.1.1}\n    hardware:\n      firmware: uefi\n      boot_disk: {id: nvme-WD_BLACK", `hosts.router.addresses.lan: 192.168.1.1 is also nas's address`},
		{"option without role", "metrics-server: {retention: 90d}", "metrics-server: {retention: 90days}", `hosts.logs.options.metrics-server.retention: want a duration such as 30d or 12w, got "90days"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(good), tc.from) {
				t.Fatalf("the example lacks %q", tc.from)
			}
			_, err := ParseInventory([]byte(strings.Replace(string(good), tc.from, tc.to, 1)), "fleet.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// BenchmarkGenerate200 generates a 200-host fleet from nothing (target:
// under 2 s).
func BenchmarkGenerate200(b *testing.B) {
	good, _ := os.ReadFile(filepath.Join(exampleDir, "fleet.yaml"))
	head, _, _ := strings.Cut(string(good), "hosts:\n")
	var y strings.Builder
	y.WriteString(strings.Replace(head, "prefix: 192.168.1.0/24", "prefix: 192.168.0.0/22", 1))
	y.WriteString("hosts:\n")
	for i := range 200 {
		fmt.Fprintf(&y, "  host%d:\n    system: x86_64-linux\n    roles: [server]\n    networks: [lan, nebula]\n    hardware:\n      firmware: uefi\n      boot_disk: {id: nvme-disk%d, nvme: true}\n      nics: [{name: eth0, mac: \"aa:bb:cc:00:%02x:%02x\", speed: 1000}]\n", i, i, i/256, i%256)
	}
	inv, err := ParseInventory([]byte(y.String()), "fleet.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		dir := b.TempDir()
		if _, err := Generate(inv, Options{Dir: dir}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckFindsProblems tampers with a generated tree in ways check must
// catch.
func TestCheckFindsProblems(t *testing.T) {
	dir := copyTree(t)
	inv, _ := LoadInventory(filepath.Join(dir, "fleet.yaml"))
	edit := func(path, from, to string) {
		b, _ := os.ReadFile(filepath.Join(dir, path))
		if !strings.Contains(string(b), from) {
			t.Fatalf("%s lacks %q", path, from)
		}
		os.WriteFile(filepath.Join(dir, path), []byte(strings.Replace(string(b), from, to, 1)), 0o644)
	}
	var pi, nas Facts
	readJSON(factsPath(dir, "pi"), &pi)
	readJSON(factsPath(dir, "nas"), &nas)
	edit("machines/pi/facts.json", `"host_id": "`+pi.HostID, `"host_id": "00000000`)
	edit("machines/pi/facts.json", `"lan": "`+pi.Addresses["lan"], `"lan": "`+nas.Addresses["lan"])
	os.Remove(filepath.Join(dir, "secrets", "gpu", "nebula.key.age"))
	// The laptop's WireGuard key, encrypted to the admin only.
	b, _ := os.ReadFile(filepath.Join(dir, "secrets", "router", "wireguard.key.age"))
	os.WriteFile(filepath.Join(dir, "secrets", "laptop", "wireguard.key.age"), b, 0o644)
	err := Check(inv, CheckOptions{Dir: dir, Identity: adminKey(t)})
	for _, want := range []string{
		"host pi: host_id \"00000000\" is not the first 8 hex digits of machine_id",
		"host pi: address " + nas.Addresses["lan"] + " is also nas's",
		"host gpu: secret secrets/gpu/nebula.key.age:",
		"host laptop: secret secrets/laptop/wireguard.key.age is not encrypted to root@laptop",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check lacks %q; got:\n%v", want, err)
		}
	}
}

// TestRekey: after an admin joins, rekey encrypts every secret to them
// too, without changing any key.
func TestRekey(t *testing.T) {
	dir := copyTree(t)
	newAdmin, err := os.ReadFile("testdata/admin2_ed25519.pub")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "fleet.yaml"))
	y := strings.Replace(string(b), "admins:\n", "admins:\n  - name: bob\n    ssh: [\""+strings.TrimSpace(string(newAdmin))+"\"]\n", 1)
	os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(y), 0o644)
	inv, err := LoadInventory(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	if err := Check(inv, CheckOptions{Dir: dir}); err == nil || !strings.Contains(err.Error(), "is not encrypted to new-admin") {
		t.Errorf("Check before rekey: %v, want secrets not encrypted to the new admin", err)
	}
	if _, err := Generate(inv, Options{Dir: dir, Rekey: true}); err == nil {
		t.Errorf("rekey without an identity succeeded")
	}
	if _, err := Generate(inv, Options{Dir: dir, Rekey: true, Identity: adminKey(t)}); err != nil {
		t.Fatal(err)
	}
	bob, _ := os.ReadFile("testdata/admin2_ed25519")
	if err := Check(inv, CheckOptions{Dir: dir, Identity: bob}); err != nil {
		t.Errorf("Check with the new admin's key after rekey: %v", err)
	}
	after := snapshot(t, dir)
	for _, f := range []string{"machines/nas/facts.json", "machines/router/facts.json"} {
		if !bytes.Equal(before[f], after[f]) {
			t.Errorf("rekey changed %s", f)
		}
	}
}

// TestRotateSSHKeepsOtherKeys: a new SSH host key re-encrypts the host's
// WireGuard key to it and keeps the key (the router's rotation used to cut
// every laptop off); it needs an admin's key for that, and an item the
// host does not have is an error.
func TestRotateSSHKeepsOtherKeys(t *testing.T) {
	dir := copyTree(t)
	inv, _ := LoadInventory(filepath.Join(dir, "fleet.yaml"))
	var old Facts
	readJSON(factsPath(dir, "router"), &old)
	wgSecret := filepath.Join(dir, secretPath("router", "wireguard.key"))
	decrypt := func() string {
		t.Helper()
		enc, err := os.ReadFile(wgSecret)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := identity.Decrypt(enc, adminKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return string(plain)
	}
	before := decrypt()

	if _, err := Generate(inv, Options{Dir: dir, Rotate: []string{"router/ssh"}}); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Fatalf("rotate router ssh without an admin key = %v, want a request for --identity", err)
	}
	if _, err := Generate(inv, Options{Dir: dir, Rotate: []string{"router/ssh"}, Identity: adminKey(t)}); err != nil {
		t.Fatal(err)
	}
	var now Facts
	readJSON(factsPath(dir, "router"), &now)
	if now.SSHHostEd25519Pub == old.SSHHostEd25519Pub {
		t.Errorf("the SSH host key did not change")
	}
	if now.WireGuardPub != old.WireGuardPub || now.MachineID != old.MachineID {
		t.Errorf("rotate router ssh changed other keys: wireguard %s -> %s", old.WireGuardPub, now.WireGuardPub)
	}
	if after := decrypt(); after != before {
		t.Errorf("the WireGuard key's secret changed")
	}
	// The new host key itself opens it: it was encrypted again to it.
	hostEnc, _ := os.ReadFile(filepath.Join(dir, secretPath("router", "ssh_host_ed25519_key")))
	hostKey, err := identity.Decrypt(hostEnc, adminKey(t))
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := os.ReadFile(wgSecret)
	if plain, err := identity.Decrypt(enc, hostKey); err != nil || string(plain) != before {
		t.Errorf("the router's new host key does not open its WireGuard secret: %v", err)
	}
	if err := Check(inv, CheckOptions{Dir: dir, Identity: adminKey(t)}); err != nil {
		t.Errorf("Check after rotating the router's SSH key: %v", err)
	}
	for _, r := range []string{"nas/wireguard", "laptop/nebula"} {
		if !strings.Contains(r, "nebula") || !slices.Contains(inv.Hosts["laptop"].Networks, "nebula") {
			if _, err := Generate(inv, Options{Dir: dir, Rotate: []string{r}}); err == nil || !strings.Contains(err.Error(), "has no") {
				t.Errorf("rotate %s = %v, want an error: the host has no such key", r, err)
			}
		}
	}
}

// TestNebulaKeyReadable: the Nebula key's secret belongs to the user the
// NixOS module runs nebula@fleet as (nebula-fleet, its nameToId), not to
// root alone, or the daemon cannot read it after boot.
func TestNebulaKeyReadable(t *testing.T) {
	for _, h := range []string{"nas", "router", "laptop"} {
		b, err := os.ReadFile(filepath.Join(exampleDir, "machines", h, "default.nix"))
		if err != nil {
			t.Fatal(err)
		}
		want := `age.secrets."nebula.key" = { file = ../../secrets/` + h + `/nebula.key.age; owner = "nebula-fleet"; group = "nebula-fleet"; mode = "0400"; };`
		if !strings.Contains(string(b), want) {
			t.Errorf("machines/%s/default.nix lacks %s", h, want)
		}
	}
}
