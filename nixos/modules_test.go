package nixos

// The NixOS modules in modules/ are checked offline, in three steps:
//
//  1. Parsing. Every .nix file under modules/ and testdata/, and every nix
//     block of docs/nixos.md, parses with nix-instantiate --parse; a
//     copy with a syntax error does not, so the check checks.
//
//  2. Evaluation. nixpkgs is not available offline, so testdata/eval.nix
//     calls the modules with a stub lib (testdata/stub-lib.nix) and pkgs
//     (testdata/stub-pkgs.nix) whose values have nixpkgs' shapes: mkIf is
//     { _type = "if"; condition; content; }, a derivation is an attribute
//     set with an outPath and the arguments it was made from. eval.nix
//     then merges what the modules return the way the module system does
//     for these modules (priorities, mkIf, mkMerge, list concatenation),
//     checks the values of declared options against their types, and
//     returns the merged config with the failed assertions. The tests read
//     that as JSON (nix-instantiate --eval --strict --json) and check the
//     units, the assertions and the rendered config file. eval.nix says
//     what it leaves out; a full nixosSystem evaluation needs nixpkgs.
//
//  3. The daemons. The config file rendered from docs/nixos.md's example is
//     loaded by the real edge-dns, edge-firewall and edge-vpn -check, and
//     the firewall's boot ruleset (-render) loads with nft in a throwaway
//     network namespace (root only).
//
// Without nix-instantiate the tests skip, or fail under
// EDGE_REQUIRE_ROOT=1.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/homeedge/edge/internal/nettest"
)

var update = flag.Bool("update", false, "rewrite testdata/router.golden.json")

// The stub's made-up store paths (testdata/stub-pkgs.nix).
const (
	storePrefix = "/nix/store/00000000000000000000000000000000-"
	packagePath = storePrefix + "edge-0-unstable"
	configPath  = storePrefix + "edge.yaml"
)

// requireNix returns the path of nix-instantiate, or skips t without it.
func requireNix(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nix-instantiate")
	if err != nil {
		nettest.Unavailable(t, "needs nix-instantiate (Debian package nix-bin, installed by make deps)")
	}
	return path
}

// nix runs nix-instantiate with args and returns its standard output. Its
// standard error, less Debian's warning about the nixbld group, is the
// error's text.
func nix(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(requireNix(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		var msg []string
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if !strings.Contains(line, "'build-users-group' does not exist") {
				msg = append(msg, line)
			}
		}
		return nil, errors.New(strings.Join(msg, "\n"))
	}
	return stdout.Bytes(), nil
}

var nixBlock = regexp.MustCompile("(?s)```nix\n(.*?)```")

// readmeBlocks returns the nix blocks of docs/nixos.md.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/nixos.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range nixBlock.FindAllStringSubmatch(string(doc), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 2 {
		t.Fatalf("docs/nixos.md has %d nix blocks, want the flake and router-edge.nix", len(blocks))
	}
	return blocks
}

// routerModule writes docs/nixos.md's router-edge.nix into a temporary
// directory and returns the Nix expression that imports it.
func routerModule(t *testing.T) string {
	t.Helper()
	for _, b := range readmeBlocks(t) {
		if strings.HasPrefix(b, "# router-edge.nix\n") {
			path := filepath.Join(t.TempDir(), "router-edge.nix")
			if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
				t.Fatal(err)
			}
			return `import "` + path + `"`
		}
	}
	t.Fatal(`docs/nixos.md has no nix block starting with "# router-edge.nix"`)
	return ""
}

func TestNixFilesParse(t *testing.T) {
	requireNix(t)
	var files []string
	for _, pattern := range []string{"modules/*.nix", "testdata/*.nix", "../flake.nix"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, want := range []string{"default", "common", "unit", "package", "dns", "firewall", "vpn", "lb", "proxy"} {
		if !slices.Contains(files, "modules/"+want+".nix") {
			t.Errorf("modules/%s.nix is missing", want)
		}
	}
	dir := t.TempDir()
	for i, b := range readmeBlocks(t) {
		path := filepath.Join(dir, "readme-"+string(rune('a'+i))+".nix")
		if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	for _, f := range files {
		if _, err := nix(t, "--parse", f); err != nil {
			t.Errorf("nix-instantiate --parse %s: %v", f, err)
		}
	}
}

// TestNixParseRejectsBrokenFile shows that the parse check can fail.
func TestNixParseRejectsBrokenFile(t *testing.T) {
	requireNix(t)
	src, err := os.ReadFile("modules/dns.nix")
	if err != nil {
		t.Fatal(err)
	}
	broken := bytes.Replace(src, []byte("assertion = "), []byte("assertion = = "), 1)
	if bytes.Equal(broken, src) {
		t.Fatal(`modules/dns.nix has no "assertion = " to break`)
	}
	path := filepath.Join(t.TempDir(), "dns.nix")
	if err := os.WriteFile(path, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = nix(t, "--parse", path)
	if err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("nix-instantiate --parse of a broken file: err = %v, want a syntax error", err)
	}
}

// unit is a systemd.services entry.
type unit struct {
	Description      string
	After            []string
	Before           []string
	Wants            []string
	WantedBy         []string
	Conflicts        []string
	RestartTriggers  []string
	RestartIfChanged *bool
	UnitConfig       map[string]any
	ServiceConfig    map[string]any
}

// nixosConfig is the part of the evaluated config the tests read.
type nixosConfig struct {
	Systemd struct {
		Services map[string]unit
		Tmpfiles struct{ Rules []string }
	}
	Boot struct {
		Kernel struct{ Sysctl map[string]any }
	}
	Networking struct {
		Firewall struct{ Enable bool }
	}
	Environment struct {
		Etc            map[string]struct{ Source string }
		SystemPackages []string
	}
	Users struct {
		Groups map[string]any
	}
	Assertions []struct {
		Assertion bool
		Message   string
	}
}

// evaluated is what evalModules returns.
type evaluated struct {
	Config           nixosConfig
	RawConfig        json.RawMessage
	FailedAssertions []string
	TypeErrors       []string
	// ConfigText is /etc/edge/edge.yaml; CheckScript builds it.
	ConfigText  string
	CheckScript string
	// RenderScript builds the boot ruleset; BootScript is
	// edge-firewall-boot's ExecStart when that is a script.
	RenderScript string
	BootScript   *string
	Package      struct {
		Pname       string
		SubPackages []string
		Ldflags     []string
		VendorHash  string
	}
}

// evalModules evaluates the edge modules with the given NixOS modules
// (Nix expressions) through testdata/eval.nix.
func evalModules(t *testing.T, users ...string) *evaluated {
	t.Helper()
	r, err := tryEval(t, users...)
	if err != nil {
		t.Fatalf("evaluating the modules: %v", err)
	}
	return r
}

func tryEval(t *testing.T, users ...string) (*evaluated, error) {
	t.Helper()
	evalNix, err := filepath.Abs("testdata/eval.nix")
	if err != nil {
		t.Fatal(err)
	}
	expr := `let
  r = import "` + evalNix + `" { users = [ ` + wrap(users) + ` ]; };
  edge = r.config.services.edge;
  boot = r.config.systemd.services.edge-firewall-boot or null;
in {
  inherit (r) failedAssertions typeErrors;
  config = r.config;
  configText = edge.configFile.unchecked.text;
  checkScript = edge.configFile.script;
  renderScript = edge.firewall.bootRuleset.script;
  bootScript = if boot != null && builtins.isAttrs boot.serviceConfig.ExecStart then boot.serviceConfig.ExecStart.text else null;
  package = { inherit (edge.package) pname subPackages ldflags vendorHash; };
}
`
	path := filepath.Join(t.TempDir(), "eval.nix")
	if err := os.WriteFile(path, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := nix(t, "--eval", "--strict", "--json", path)
	if err != nil {
		return nil, err
	}
	var r evaluated
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("decoding the evaluation: %v", err)
	}
	var raw struct{ Config json.RawMessage }
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	r.RawConfig = raw.Config
	if err := json.Unmarshal(raw.Config, &r.Config); err != nil {
		t.Fatalf("decoding the config: %v", err)
	}
	return &r, nil
}

func wrap(exprs []string) string {
	var b strings.Builder
	for _, e := range exprs {
		b.WriteString("(" + e + ") ")
	}
	return b.String()
}

// evalRouter evaluates docs/nixos.md's example with extra modules.
func evalRouter(t *testing.T, extra ...string) *evaluated {
	t.Helper()
	r := evalModules(t, append([]string{routerModule(t)}, extra...)...)
	if len(r.TypeErrors) > 0 {
		t.Errorf("type errors:\n%s", strings.Join(r.TypeErrors, "\n"))
	}
	if len(r.FailedAssertions) > 0 {
		t.Errorf("failed assertions:\n%s", strings.Join(r.FailedAssertions, "\n"))
	}
	return r
}

func TestDaemonUnits(t *testing.T) {
	// lb and proxy are not in docs/nixos.md's example: the suite does not
	// build them yet.
	r := evalRouter(t, `{ services.edge.lb.enable = true; services.edge.proxy.enable = true; }`)
	tests := []struct {
		daemon   string
		caps     []string
		families []string
		// devices is DeviceAllow; without it, PrivateDevices is set.
		devices []string
		after   []string
		before  []string
	}{
		{
			daemon:   "dns",
			caps:     []string{"CAP_NET_BIND_SERVICE"},
			families: []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"},
			after:    []string{"network.target"},
			before:   []string{"nss-lookup.target"},
		},
		{
			daemon:   "firewall",
			caps:     []string{"CAP_NET_ADMIN"},
			families: []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"},
			after:    []string{"edge-firewall-boot.service"},
			before:   []string{"network-pre.target"},
		},
		{
			daemon:   "vpn",
			caps:     []string{"CAP_NET_ADMIN"},
			families: []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"},
			devices:  []string{"/dev/net/tun rw"},
			after:    []string{"network-online.target", "edge-dns.service"},
		},
		{
			daemon:   "lb",
			caps:     []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"},
			families: []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"},
			after:    []string{"network-online.target"},
		},
		{
			daemon:   "proxy",
			caps:     []string{"CAP_NET_BIND_SERVICE"},
			families: []string{"AF_UNIX", "AF_INET", "AF_INET6"},
			after:    []string{"network-online.target", "edge-dns.service"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.daemon, func(t *testing.T) {
			name := "edge-" + tc.daemon
			u, ok := r.Config.Systemd.Services[name]
			if !ok {
				t.Fatalf("no systemd.services.%s", name)
			}
			sc := u.ServiceConfig
			want := map[string]any{
				"Type":                     "notify",
				"NotifyAccess":             "main",
				"ExecStart":                packagePath + "/bin/" + name + " -config /etc/edge/edge.yaml",
				"ExecReload":               storePrefix + "coreutils/bin/kill -HUP $MAINPID",
				"Restart":                  "on-failure",
				"RestartPreventExitStatus": 78.0,
				"WatchdogSec":              "30s",
				"DynamicUser":              true,
				"SupplementaryGroups":      []any{"edge"},
				"StateDirectory":           "edge/" + tc.daemon,
				"StateDirectoryMode":       "0700",
				"ReadWritePaths":           []any{"/run/edge"},
				"UMask":                    "0077",
				"ProtectSystem":            "strict",
				"ProtectHome":              true,
				"PrivateTmp":               true,
				"NoNewPrivileges":          true,
				"ProtectKernelTunables":    true,
				"ProtectKernelModules":     true,
				"ProtectControlGroups":     true,
				"RestrictNamespaces":       true,
				"LockPersonality":          true,
				"MemoryDenyWriteExecute":   true,
				"SystemCallArchitectures":  "native",
				"SystemCallFilter":         []any{"@system-service"},
				"CapabilityBoundingSet":    toAny(tc.caps),
				"AmbientCapabilities":      toAny(tc.caps),
				"RestrictAddressFamilies":  toAny(tc.families),
			}
			if tc.devices != nil {
				want["DeviceAllow"] = toAny(tc.devices)
				want["DevicePolicy"] = "closed"
			} else {
				want["PrivateDevices"] = true
			}
			for key, w := range want {
				if diff := cmp.Diff(w, sc[key]); diff != "" {
					t.Errorf("serviceConfig.%s (-want +got):\n%s", key, diff)
				}
			}
			if tc.devices == nil && sc["DeviceAllow"] != nil {
				t.Errorf("serviceConfig.DeviceAllow = %v, want none", sc["DeviceAllow"])
			}
			if tc.devices != nil && sc["PrivateDevices"] == true {
				t.Errorf("serviceConfig.PrivateDevices hides %v", tc.devices)
			}
			if sc["ProtectProc"] == "invisible" {
				t.Error("ProtectProc=invisible hides callers' /proc/<pid>/status from the admin API")
			}
			for _, key := range []string{"ExecStop", "ExecStopPost", "RuntimeDirectoryPreserve", "User"} {
				if v, ok := sc[key]; ok {
					t.Errorf("serviceConfig.%s = %v, want none", key, v)
				}
			}
			if diff := cmp.Diff(tc.after, u.After); diff != "" {
				t.Errorf("after (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.before, u.Before); diff != "" {
				t.Errorf("before (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"multi-user.target"}, u.WantedBy); diff != "" {
				t.Errorf("wantedBy (-want +got):\n%s", diff)
			}
			if len(u.RestartTriggers) != 1 {
				t.Errorf("restartTriggers = %v, want one hash of the daemon's config", u.RestartTriggers)
			}
		})
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func TestUnitsCredentials(t *testing.T) {
	r := evalRouter(t)
	for name, want := range map[string][]any{
		"edge-dns":      {"tsig:/run/secrets/edge-vpn.tsig"},
		"edge-vpn":      {"tsig:/run/secrets/edge-vpn.tsig"},
		"edge-firewall": {},
	} {
		if diff := cmp.Diff(want, r.Config.Systemd.Services[name].ServiceConfig["LoadCredential"]); diff != "" {
			t.Errorf("%s LoadCredential (-want +got):\n%s", name, diff)
		}
	}
}

// TestRestartTriggers: a daemon restarts for changes of the shared
// settings and its own section, not for another daemon's.
func TestRestartTriggers(t *testing.T) {
	triggers := func(r *evaluated) map[string]string {
		m := map[string]string{}
		for _, d := range []string{"dns", "firewall", "vpn"} {
			m[d] = strings.Join(r.Config.Systemd.Services["edge-"+d].RestartTriggers, " ")
		}
		return m
	}
	base := triggers(evalRouter(t))
	dnsChanged := triggers(evalRouter(t, `{ services.edge.dns.settings.listen = [ "0.0.0.0:53" ]; }`))
	shared := triggers(evalRouter(t, `{ services.edge.settings.log.format = "json"; }`))
	for d, old := range base {
		if got := dnsChanged[d] != old; got != (d == "dns") {
			t.Errorf("changing dns.settings: edge-%s trigger changed = %v, want %v", d, got, d == "dns")
		}
		if shared[d] == old {
			t.Errorf("changing the shared log format: edge-%s trigger did not change", d)
		}
	}
}

func TestFirewallBoot(t *testing.T) {
	r := evalRouter(t)
	boot, ok := r.Config.Systemd.Services["edge-firewall-boot"]
	if !ok {
		t.Fatal("no systemd.services.edge-firewall-boot")
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"wantedBy", boot.WantedBy, []string{"sysinit.target"}},
		{"wants", boot.Wants, []string{"network-pre.target"}},
		{"before", boot.Before, []string{"network-pre.target", "shutdown.target"}},
		{"unitConfig.DefaultDependencies", boot.UnitConfig["DefaultDependencies"], false},
		{"serviceConfig.Type", boot.ServiceConfig["Type"], "oneshot"},
		{"serviceConfig.RemainAfterExit", boot.ServiceConfig["RemainAfterExit"], true},
		{"serviceConfig.CapabilityBoundingSet", boot.ServiceConfig["CapabilityBoundingSet"], []any{"CAP_NET_ADMIN"}},
		{"restartIfChanged", boot.RestartIfChanged != nil && !*boot.RestartIfChanged, true},
		{"serviceConfig.ExecStart", boot.ServiceConfig["ExecStart"], storePrefix + "edge-firewall-boot"},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("edge-firewall-boot %s (-want +got):\n%s", c.what, diff)
		}
	}
	for _, key := range []string{"ExecStop", "ExecStopPost"} {
		if v, ok := boot.ServiceConfig[key]; ok {
			t.Errorf("edge-firewall-boot serviceConfig.%s = %v: the boot ruleset must stay loaded", key, v)
		}
	}
	if r.Config.Networking.Firewall.Enable {
		t.Error("networking.firewall.enable = true, want false by default with services.edge.firewall")
	}

	// The ruleset: with offload, and without as the fallback.
	ruleset := storePrefix + "edge-firewall-boot-ruleset"
	wantRender := []string{
		packagePath + "/bin/edge-firewall -render -config " + configPath + " > $out/edge.nft",
		"EDGE_FIREWALL_NO_OFFLOAD=1 " + packagePath + "/bin/edge-firewall -render -config " + configPath + " > $out/edge-no-offload.nft",
	}
	if diff := cmp.Diff(wantRender, renderLines(r.RenderScript)); diff != "" {
		t.Errorf("render commands (-want +got):\n%s\nscript:\n%s", diff, r.RenderScript)
	}
	if r.BootScript == nil {
		t.Fatal("edge-firewall-boot's ExecStart is not a script")
	}
	for _, want := range []string{
		"if ! " + storePrefix + "nftables/bin/nft -f " + ruleset + "/edge.nft; then",
		"exec " + storePrefix + "nftables/bin/nft -f " + ruleset + "/edge-no-offload.nft",
	} {
		if !strings.Contains(*r.BootScript, want) {
			t.Errorf("boot script lacks %q:\n%s", want, *r.BootScript)
		}
	}

	t.Run("bootOffload=false", func(t *testing.T) {
		r := evalRouter(t, `{ services.edge.firewall.bootOffload = false; }`)
		want := []string{"EDGE_FIREWALL_NO_OFFLOAD=1 " + packagePath + "/bin/edge-firewall -render -config " + configPath + " > $out/edge-no-offload.nft"}
		if diff := cmp.Diff(want, renderLines(r.RenderScript)); diff != "" {
			t.Errorf("render commands (-want +got):\n%s", diff)
		}
		got := r.Config.Systemd.Services["edge-firewall-boot"].ServiceConfig["ExecStart"]
		if want := storePrefix + "nftables/bin/nft -f " + ruleset + "/edge-no-offload.nft"; got != want {
			t.Errorf("ExecStart = %v, want %v", got, want)
		}
	})

	t.Run("bootSettings", func(t *testing.T) {
		r := evalRouter(t, `{ services.edge.firewall.bootSettings = { zones.wan.interfaces = [ "wan" ]; }; }`)
		for _, line := range renderLines(r.RenderScript) {
			if !strings.Contains(line, "-config "+storePrefix+"edge-firewall-boot.json ") {
				t.Errorf("render command %q does not use the boot settings' file", line)
			}
		}
	})
}

// renderLines returns the lines of script that run -render.
func renderLines(script string) []string {
	var lines []string
	for _, l := range strings.Split(script, "\n") {
		if l = strings.TrimSpace(l); strings.Contains(l, "-render") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestSysctls(t *testing.T) {
	r := evalRouter(t)
	want := map[string]any{"net.ipv4.ip_forward": 1.0, "net.ipv6.conf.all.forwarding": 1.0}
	if diff := cmp.Diff(want, r.Config.Boot.Kernel.Sysctl); diff != "" {
		t.Errorf("boot.kernel.sysctl (-want +got):\n%s", diff)
	}
	// They are defaults: a host's own value wins.
	r = evalRouter(t, `{ boot.kernel.sysctl."net.ipv6.conf.all.forwarding" = 0; }`)
	if got := r.Config.Boot.Kernel.Sysctl["net.ipv6.conf.all.forwarding"]; got != 0.0 {
		t.Errorf("net.ipv6.conf.all.forwarding = %v after the host set 0", got)
	}
}

func TestConfigFile(t *testing.T) {
	r := evalRouter(t)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.ConfigText), &doc); err != nil {
		t.Fatalf("the config file is not JSON: %v\n%s", err, r.ConfigText)
	}
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if diff := cmp.Diff([]string{"admin", "dns", "firewall", "log", "site", "state_dir", "version", "vpn"}, keys); diff != "" {
		t.Errorf("config file keys (-want +got):\n%s", diff)
	}
	if doc["version"] != 1.0 || doc["state_dir"] != "/var/lib/edge" {
		t.Errorf("version = %v, state_dir = %v; want 1, /var/lib/edge", doc["version"], doc["state_dir"])
	}
	if diff := cmp.Diff(map[string]any{"group": "edge", "socket_dir": "/run/edge"}, doc["admin"]); diff != "" {
		t.Errorf("admin (-want +got):\n%s", diff)
	}

	for _, d := range []string{"dns", "firewall", "vpn"} {
		want := packagePath + "/bin/edge-" + d + " -check -config " + storePrefix + "edge.json"
		if !strings.Contains(r.CheckScript, want) {
			t.Errorf("the config file's build does not run %q:\n%s", want, r.CheckScript)
		}
	}
	// The sandbox has none of the router's files: edge-firewall -check
	// must take a missing set file as empty there.
	if !strings.Contains(r.CheckScript, "export EDGE_FIREWALL_IGNORE_MISSING_FILES=1\n") {
		t.Errorf("the config file's build does not let edge-firewall -check do without the router's set files:\n%s", r.CheckScript)
	}
	if strings.Contains(r.CheckScript, "edge-lb") || strings.Contains(r.CheckScript, "edge-proxy") {
		t.Errorf("the check runs a daemon that is not enabled:\n%s", r.CheckScript)
	}
	if got := r.Config.Environment.Etc["edge/edge.yaml"].Source; got != configPath {
		t.Errorf("/etc/edge/edge.yaml = %q, want the checked file %q", got, configPath)
	}
	if !slices.Contains(r.Config.Environment.SystemPackages, packagePath) {
		t.Errorf("environment.systemPackages = %v, want the edge package (edgectl)", r.Config.Environment.SystemPackages)
	}
	if _, ok := r.Config.Users.Groups["edge"]; !ok {
		t.Errorf("users.groups = %v, want edge", r.Config.Users.Groups)
	}
	if diff := cmp.Diff([]string{"d /run/edge 0770 root edge - -"}, r.Config.Systemd.Tmpfiles.Rules); diff != "" {
		t.Errorf("tmpfiles rules (-want +got):\n%s", diff)
	}

	t.Run("lb enabled", func(t *testing.T) {
		r := evalRouter(t, `{ services.edge.lb = { enable = true; settings.mode = "userspace"; }; }`)
		if !strings.Contains(r.ConfigText, `"lb":{"mode":"userspace"}`) {
			t.Errorf("the config file lacks the lb section:\n%s", r.ConfigText)
		}
		if want := "has no bin/edge-lb"; !strings.Contains(r.CheckScript, want) {
			t.Errorf("the check does not say %q when edge-lb is missing:\n%s", want, r.CheckScript)
		}
	})

	t.Run("another group", func(t *testing.T) {
		r := evalRouter(t, `{ services.edge.group = "netadmin"; services.edge.settings.admin.world_readable = true; }`)
		if !strings.Contains(r.ConfigText, `"group":"netadmin"`) {
			t.Errorf("admin.group is not the group:\n%s", r.ConfigText)
		}
		if got := r.Config.Systemd.Services["edge-dns"].ServiceConfig["SupplementaryGroups"]; !cmp.Equal(got, []any{"netadmin"}) {
			t.Errorf("SupplementaryGroups = %v, want [netadmin]", got)
		}
		if diff := cmp.Diff([]string{"d /run/edge 0771 root netadmin - -"}, r.Config.Systemd.Tmpfiles.Rules); diff != "" {
			t.Errorf("tmpfiles rules (-want +got):\n%s", diff)
		}
	})
}

func TestAssertions(t *testing.T) {
	tests := []struct {
		name   string
		module string
		want   string // a failed assertion's text; "" for none
	}{
		{"nixos firewall", `{ networking.firewall.enable = true; }`, "the NixOS firewall's own"},
		{"nftables flushes", `{ networking.nftables.enable = true; }`, "networking.nftables.flushRuleset = false"},
		{"nftables without flush", `{ networking.nftables = { enable = true; flushRuleset = false; }; }`, ""},
		{"dnsmasq on 53", `{ services.dnsmasq.enable = true; }`, "services.dnsmasq.settings.port = 0"},
		{"dnsmasq for DHCP only", `{ services.dnsmasq = { enable = true; settings.port = 0; }; }`, ""},
		{"unbound on 53", `{ services.unbound.enable = true; }`, "services.edge.dns and services.unbound"},
		{"unbound elsewhere", `{ services.unbound = { enable = true; settings.server.port = 5353; }; }`, ""},
		{"admin group", `{ services.edge.settings.admin.group = "wheel"; }`, "Set services.edge.group instead"},
		{"state_dir", `{ services.edge.settings.state_dir = "/srv/edge"; }`, "Leave state_dir unset"},
		{"socket_dir outside /run", `{ services.edge.settings.admin.socket_dir = "/srv/edge"; }`, "Keep socket_dir under /run"},
	}
	router := routerModule(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evalModules(t, router, tc.module)
			got := strings.Join(r.FailedAssertions, "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("failed assertions:\n%s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("failed assertions = %q, want one saying %q", got, tc.want)
			case tc.want != "" && len(r.FailedAssertions) != 1:
				t.Errorf("%d failed assertions, want 1:\n%s", len(r.FailedAssertions), got)
			}
		})
	}
}

// TestVPNRuntimeDirectory: edge-vpn's unit has the runtime directory the
// daemon keeps its embedded devices' UAPI sockets in,
// <admin.socket_dir>/vpn (vpn/service.go runtimeDir), for each run, and
// not /run/wireguard, which other programs share.
func TestVPNRuntimeDirectory(t *testing.T) {
	for _, tc := range []struct{ module, want string }{
		{`{ }`, "edge/vpn"},
		{`{ services.edge.settings.admin.socket_dir = "/run/edge-x"; }`, "edge-x/vpn"},
	} {
		r := evalRouter(t, tc.module)
		sc := r.Config.Systemd.Services["edge-vpn"].ServiceConfig
		if sc["RuntimeDirectory"] != tc.want || sc["RuntimeDirectoryMode"] != "0700" {
			t.Errorf("%s: RuntimeDirectory %v mode %v, want %s 0700", tc.module, sc["RuntimeDirectory"], sc["RuntimeDirectoryMode"], tc.want)
		}
	}
}

// TestAssertionsNeedTheirDaemon: a module's checks apply only when its
// daemon is enabled.
func TestAssertionsNeedTheirDaemon(t *testing.T) {
	r := evalModules(t, `{ networking.firewall.enable = true; services.dnsmasq.enable = true; services.edge.vpn.enable = true; }`)
	if len(r.FailedAssertions) != 0 {
		t.Errorf("failed assertions without edge-firewall and edge-dns:\n%s", strings.Join(r.FailedAssertions, "\n"))
	}
	if !r.Config.Networking.Firewall.Enable {
		t.Error("networking.firewall.enable = false without edge-firewall")
	}
}

func TestNothingEnabled(t *testing.T) {
	r := evalModules(t)
	if len(r.Config.Systemd.Services) != 0 || len(r.Config.Environment.Etc) != 0 || len(r.Config.Assertions) != 0 {
		t.Errorf("modules with nothing enabled define units %v, files %v, assertions %v",
			r.Config.Systemd.Services, r.Config.Environment.Etc, r.Config.Assertions)
	}
	if len(r.TypeErrors) != 0 || len(r.FailedAssertions) != 0 {
		t.Errorf("type errors %v, failed assertions %v", r.TypeErrors, r.FailedAssertions)
	}
}

// TestEvalCatchesMistakes shows that the offline evaluation finds what
// NixOS would refuse: wrong types, unknown options, conflicting values.
func TestEvalCatchesMistakes(t *testing.T) {
	for _, tc := range []struct {
		module string
		want   string
	}{
		{`{ services.edge.group = 5; }`, "services.edge.group: a int, want str"},
		{`{ services.edge.dns.enabel = true; }`, "services.edge.dns.enabel: no such option"},
		{`{ services.edge.settings.admin.socket_dir = 5; }`, "services.edge.settings.admin.socket_dir: a int, want str"},
		{`{ services.edge.vpn.credentials.key = [ "/run/secrets/k" ]; }`, "services.edge.vpn.credentials: a set, want attrsOf str"},
	} {
		r := evalModules(t, tc.module)
		if !slices.Contains(r.TypeErrors, tc.want) {
			t.Errorf("%s: type errors = %q, want %q", tc.module, r.TypeErrors, tc.want)
		}
	}
	_, err := tryEval(t, routerModule(t), `{ systemd.services.edge-dns.serviceConfig.Type = "simple"; }`)
	if err == nil || !strings.Contains(err.Error(), "conflicting definitions of systemd.services.edge-dns.serviceConfig.Type") {
		t.Errorf("a conflicting unit Type: err = %v, want a conflict", err)
	}
}

func TestPackage(t *testing.T) {
	r := evalRouter(t)
	p := r.Package
	if p.Pname != "edge" {
		t.Errorf("pname = %q, want edge", p.Pname)
	}
	if diff := cmp.Diff([]string{"cmd/edge-dns", "cmd/edge-firewall", "cmd/edge-vpn", "cmd/edgectl"}, p.SubPackages); diff != "" {
		t.Errorf("subPackages (-want +got):\n%s", diff)
	}
	if want := "-X github.com/homeedge/edge/internal/suite.Version=0-unstable"; !slices.Contains(p.Ldflags, want) {
		t.Errorf("ldflags = %q, want %q", p.Ldflags, want)
	}
	if !strings.HasPrefix(p.VendorHash, "sha256-AAAA") {
		t.Errorf("vendorHash = %q, want lib.fakeHash by default", p.VendorHash)
	}
	// Every daemon the package builds has a module.
	for _, sp := range p.SubPackages {
		d, ok := strings.CutPrefix(sp, "cmd/edge-")
		if !ok {
			continue
		}
		if _, err := os.Stat("modules/" + d + ".nix"); err != nil {
			t.Errorf("%s has no module: %v", sp, err)
		}
	}
}

// TestGolden compares the whole evaluated config of docs/nixos.md's example
// with testdata/router.golden.json; -update rewrites it.
func TestGolden(t *testing.T) {
	r := evalRouter(t)
	var buf bytes.Buffer
	if err := json.Indent(&buf, r.RawConfig, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	const golden = "testdata/router.golden.json"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("evaluated config differs from %s (-want +got; go test -update rewrites it):\n%s", golden, diff)
	}
}

// TestFleetRouter evaluates the router that edge-fleet generates
// (examples/fleet): its services.edge settings must pass the modules'
// checks, and the config file must be the edge.json edge-fleet wrote.
func TestFleetRouter(t *testing.T) {
	machine, err := filepath.Abs("../examples/fleet/machines/router")
	if err != nil {
		t.Fatal(err)
	}
	// agenix's options, which the machine reads, are not loaded here.
	agenix := `{ age.secrets = { "nebula.key".path = "/run/agenix/nebula.key"; "wireguard.key".path = "/run/agenix/wireguard.key"; }; }`
	r := evalModules(t, `import "`+machine+`/default.nix"`, agenix)
	if len(r.TypeErrors) > 0 || len(r.FailedAssertions) > 0 {
		t.Errorf("type errors %q, failed assertions %q", r.TypeErrors, r.FailedAssertions)
	}
	for _, d := range []string{"dns", "firewall", "vpn"} {
		if _, ok := r.Config.Systemd.Services["edge-"+d]; !ok {
			t.Errorf("no systemd.services.edge-%s", d)
		}
	}
	data, err := os.ReadFile(filepath.Join(machine, "edge.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(r.ConfigText), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/etc/edge/edge.yaml differs from edge-fleet's edge.json (-want +got):\n%s", diff)
	}
}

// TestRenderedConfigLoads loads the config file docs/nixos.md's example
// renders with the daemons built from this checkout, as the module's
// build-time check does, and the boot ruleset with nft.
func TestRenderedConfigLoads(t *testing.T) {
	r := evalRouter(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "edge.json")
	if err := os.WriteFile(config, []byte(r.ConfigText), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/edge-dns", "./cmd/edge-firewall", "./cmd/edge-vpn")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, d := range []string{"dns", "firewall", "vpn"} {
		out, err := exec.Command(filepath.Join(dir, "edge-"+d), "-check", "-config", config).CombinedOutput()
		if err != nil {
			t.Errorf("edge-%s -check: %v\n%s\nconfig:\n%s", d, err, out, r.ConfigText)
		}
	}

	render := exec.Command(filepath.Join(dir, "edge-firewall"), "-render", "-config", config)
	render.Env = append(os.Environ(), "EDGE_FIREWALL_NO_OFFLOAD=1")
	var stderr bytes.Buffer
	render.Stderr = &stderr
	ruleset, err := render.Output()
	if err != nil {
		t.Fatalf("edge-firewall -render: %v\n%s", err, stderr.String())
	}
	if !bytes.Contains(ruleset, []byte("table inet edge")) {
		t.Fatalf("edge-firewall -render printed no table inet edge:\n%s", ruleset)
	}
	path := filepath.Join(dir, "edge-no-offload.nft")
	if err := os.WriteFile(path, ruleset, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("nft loads the boot ruleset", func(t *testing.T) {
		ns := nettest.NewNS(t, "edge-nixos", "nft")
		ns.Run(t, "", "nft", "-f", path)
		if out := ns.Run(t, "", "nft", "list", "table", "inet", "edge"); !strings.Contains(out, "chain") {
			t.Errorf("nft list table inet edge after loading the boot ruleset:\n%s", out)
		}
	})
}
