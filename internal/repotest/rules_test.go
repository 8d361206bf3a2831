package repotest

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// root is the module's root directory.
func root(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestGofmt(t *testing.T) {
	files, err := GoFiles(root(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d Go files; is the root right?", len(files))
	}
	for _, v := range CheckGofmt(files) {
		t.Error(v)
	}
}

func TestEdgectlDeps(t *testing.T) {
	deps, err := ListPackages(root(t), "-deps", "./cmd/edgectl")
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) < 20 {
		t.Fatalf("go list -deps found only %d packages", len(deps))
	}
	for _, v := range CheckEdgectlDeps(deps) {
		t.Error(v)
	}
}

// TestNftablesOnlyInNetfilter: no package outside netfilter/, nor its
// tests, imports google/nftables.
func TestNftablesOnlyInNetfilter(t *testing.T) {
	pkgs, err := ListPackages(root(t), "-tags", "integration", "./...")
	if err != nil {
		t.Fatal(err)
	}
	users := 0
	for _, p := range pkgs {
		if contains(p.Imports, NftablesModule) {
			users++
		}
	}
	if users == 0 {
		t.Fatal("no package imports google/nftables; is the listing right?")
	}
	for _, v := range CheckNftablesImports(pkgs) {
		t.Error(v)
	}
}

func TestImportDirection(t *testing.T) {
	pkgs, err := ListPackages(root(t), "-tags", "integration", "./...")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range CheckImportDirection(pkgs) {
		t.Error(v)
	}
	for _, v := range CheckPackageDocs(pkgs) {
		t.Error(v)
	}
}

// The rules are fed violations: a rule that stopped checking fails here.

func TestRulesCatchViolations(t *testing.T) {
	if v := CheckGofmt(map[string][]byte{"a.go": []byte("package a\nfunc  f() {}\n"), "b.go": []byte("package b\n\nfunc f() {}\n")}); len(v) != 1 || !strings.Contains(v[0], "a.go: not gofmt-formatted") {
		t.Errorf("CheckGofmt(badly formatted) = %q, want one violation for a.go", v)
	}
	if v := CheckGofmt(map[string][]byte{"c.go": []byte("package c\nfunc {")}); len(v) != 1 || !strings.Contains(v[0], "does not parse") {
		t.Errorf("CheckGofmt(unparsable) = %q, want a parse violation", v)
	}

	deps := []Package{
		{ImportPath: "fmt", Standard: true},
		{ImportPath: Module + "/internal/ctlapi"},
		{ImportPath: Module + "/internal/store"},
		{ImportPath: Module + "/dns"},
		{ImportPath: "gopkg.in/yaml.v3"},
	}
	v := CheckEdgectlDeps(deps)
	if len(v) != 3 || !strings.Contains(strings.Join(v, "\n"), "internal/store") || !strings.Contains(strings.Join(v, "\n"), "third-party package gopkg.in/yaml.v3") {
		t.Errorf("CheckEdgectlDeps(with daemon and third-party deps) = %q, want 3 violations", v)
	}

	pkgs := []Package{
		{ImportPath: Module + "/internal/config", Imports: []string{Module + "/dns"}},
		{ImportPath: Module + "/firewall", Imports: []string{Module + "/lb", Module + "/internal/store"}},
		{ImportPath: Module + "/proxy", Imports: []string{Module + "/lb"}},
		{ImportPath: Module + "/dns", Imports: []string{Module + "/vpn"}},
		{ImportPath: Module + "/vpn", Imports: []string{Module + "/identity", Module + "/cmd/edgectl/cli"}},
		{ImportPath: Module + "/cmd/edgectl", Imports: []string{Module + "/cmd/edgectl/cli"}},
		{ImportPath: Module + "/internal/daemon", Imports: []string{Module + "/integration/lab"}},
	}
	want := []string{
		"dns imports vpn: domain packages talk over the network",
		"firewall imports lb: firewall depends on no other domain package",
		"internal/config imports dns: internal packages import no domain package",
		"internal/daemon imports integration/lab: only the integration suite",
		"vpn imports cmd/edgectl/cli: nothing imports a command's package",
	}
	got := CheckImportDirection(pkgs)
	if len(got) != len(want) {
		t.Fatalf("CheckImportDirection = %d violations:\n%s\nwant %d", len(got), strings.Join(got, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("violation %d = %q, want %q", i, got[i], w)
		}
	}

	pkgs = []Package{
		{ImportPath: Module + "/netfilter/nft", Imports: []string{NftablesModule, NftablesModule + "/expr"}, TestImports: []string{NftablesModule}},
		{ImportPath: Module + "/vpn", Imports: []string{"fmt", NftablesModule + "/expr"}},
		{ImportPath: Module + "/dns", TestImports: []string{NftablesModule}},
		{ImportPath: Module + "/lb", XTestImports: []string{NftablesModule + "/binaryutil"}},
		{ImportPath: Module + "/netfilterx", Imports: []string{NftablesModule}},
		{ImportPath: "github.com/google/nftables/expr", Imports: []string{NftablesModule}},
	}
	want = []string{
		"github.com/google/nftables/expr imports github.com/google/nftables: only netfilter/",
		Module + "/dns imports github.com/google/nftables (tests): only netfilter/",
		Module + "/lb imports github.com/google/nftables/binaryutil (external tests): only netfilter/",
		Module + "/netfilterx imports github.com/google/nftables: only netfilter/",
		Module + "/vpn imports github.com/google/nftables/expr: only netfilter/",
	}
	got = CheckNftablesImports(pkgs)
	if len(got) != len(want) {
		t.Fatalf("CheckNftablesImports = %d violations:\n%s\nwant %d", len(got), strings.Join(got, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("violation %d = %q, want %q", i, got[i], w)
		}
	}

	pkgs = []Package{
		{ImportPath: Module + "/firewall", Imports: []string{Module + "/netfilter/nft", Module + "/netfilter/ruleset"}},
		{ImportPath: Module + "/vpn", Imports: []string{Module + "/netfilter/nft"}},
		{ImportPath: Module + "/dns", Imports: []string{Module + "/netfilter/ruleset"}},
		{ImportPath: Module + "/netfilter/nft", Imports: []string{Module + "/firewall/compile", Module + "/internal/prefixes"}},
		{ImportPath: Module + "/internal/nettest", Imports: []string{Module + "/netfilter/nft"}},
	}
	want = []string{
		"dns imports netfilter/ruleset: domain packages talk over the network or the admin API; netfilter is not a shared library of dns",
		"internal/nettest imports netfilter/nft: internal packages import no domain package",
		"netfilter/nft imports firewall/compile: domain packages talk over the network or the admin API; firewall is not a shared library of netfilter",
	}
	got = CheckImportDirection(pkgs)
	if diff := strings.Join(got, "\n"); diff != strings.Join(want, "\n") {
		t.Errorf("CheckImportDirection(netfilter users) =\n%s\nwant\n%s", diff, strings.Join(want, "\n"))
	}

	if v := CheckPackageDocs([]Package{{ImportPath: Module + "/x", GoFiles: []string{"x.go"}}}); len(v) != 1 {
		t.Errorf("CheckPackageDocs(undocumented) = %q, want one violation", v)
	}
}
