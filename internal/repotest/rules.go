package repotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Module is the suite's module path.
const Module = "github.com/homeedge/edge"

// Package is what `go list -json` says of one package.
type Package struct {
	ImportPath string
	Dir        string
	Doc        string
	Name       string
	Imports    []string
	// TestImports and XTestImports are the imports of the package's
	// tests and of its external test package.
	TestImports  []string
	XTestImports []string
	Deps         []string
	Standard     bool
	GoFiles      []string
}

// ListPackages runs `go list -json` with args in the module root.
func ListPackages(root string, args ...string) ([]Package, error) {
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return nil, fmt.Errorf("go list: %v\n%s", err, stderr)
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p Package
		if err := dec.Decode(&p); err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// EdgectlAllowed are the only packages of this module that edgectl may
// link: its own, the admin API types and client, and the suite facts.
var EdgectlAllowed = []string{
	Module + "/cmd/edgectl",
	Module + "/cmd/edgectl/cli",
	Module + "/internal/ctlapi",
	Module + "/internal/suite",
}

// CheckEdgectlDeps returns a violation for every dependency of edgectl
// that is neither the standard library nor allowed: a daemon's package or
// a third-party module would make the CLI big and slow to start.
func CheckEdgectlDeps(deps []Package) []string {
	var bad []string
	for _, d := range deps {
		switch {
		case d.Standard:
		case strings.HasPrefix(d.ImportPath, Module+"/") || d.ImportPath == Module:
			if !contains(EdgectlAllowed, d.ImportPath) {
				bad = append(bad, fmt.Sprintf("edgectl depends on %s; it may use only %s", d.ImportPath, strings.Join(EdgectlAllowed, ", ")))
			}
		default:
			bad = append(bad, fmt.Sprintf("edgectl depends on the third-party package %s; keep the CLI on the standard library", d.ImportPath))
		}
	}
	sort.Strings(bad)
	return bad
}

// Domain packages are the suite's parts (docs/architecture.md); each may be imported
// by cmd/* and, for shared libraries, by the named users.
var domains = []string{"dns", "firewall", "vpn", "lb", "proxy", "identity", "nixos", "netfilter"}

// sharedLibraries are the allowed imports between domain packages.
var sharedLibraries = map[string][]string{
	"lb":        {"proxy", "dns"},
	"identity":  {"nixos", "vpn"},
	"netfilter": {"firewall", "vpn", "lb"},
}

// CheckImportDirection returns a violation for every import that breaks
// the one-way flow of docs/architecture.md: cmd -> domain -> internal, never back;
// internal imports no domain package; domain packages import each other
// only through the named shared libraries; firewall depends on no other
// domain package but the shared library named for it (netfilter).
func CheckImportDirection(pkgs []Package) []string {
	var bad []string
	for _, p := range pkgs {
		from, ok := strings.CutPrefix(p.ImportPath, Module+"/")
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			to, ok := strings.CutPrefix(imp, Module+"/")
			if !ok {
				continue
			}
			if why := importRule(from, to); why != "" {
				bad = append(bad, fmt.Sprintf("%s imports %s: %s", from, to, why))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func importRule(from, to string) string {
	fromTop, toTop := top(from), top(to)
	switch {
	case toTop == "cmd" && !strings.HasPrefix(from, cmdOf(to)):
		return "nothing imports a command's package"
	case fromTop == "internal" && contains(domains, toTop):
		return "internal packages import no domain package"
	case toTop == "integration" && fromTop != "integration" && fromTop != "cmd":
		return "only the integration suite and commands (edge-lab) import the lab"
	case contains(domains, fromTop) && contains(domains, toTop) && fromTop != toTop:
		if fromTop == "firewall" && !contains(sharedLibraries[toTop], fromTop) {
			return "firewall depends on no other domain package"
		}
		if !contains(sharedLibraries[toTop], fromTop) {
			return fmt.Sprintf("domain packages talk over the network or the admin API; %s is not a shared library of %s", toTop, fromTop)
		}
	}
	return ""
}

// NftablesModule is the nftables library only package netfilter may use.
const NftablesModule = "github.com/google/nftables"

// CheckNftablesImports returns a violation for every package outside
// netfilter/ whose code or tests import google/nftables (docs/architecture.md: the
// daemons program nftables through the one library, so that its checks,
// chunked set loads and error labels apply to all of them).
func CheckNftablesImports(pkgs []Package) []string {
	var bad []string
	for _, p := range pkgs {
		if p.ImportPath == Module+"/netfilter" || strings.HasPrefix(p.ImportPath, Module+"/netfilter/") {
			continue
		}
		for _, list := range []struct {
			what    string
			imports []string
		}{{"", p.Imports}, {" (tests)", p.TestImports}, {" (external tests)", p.XTestImports}} {
			for _, imp := range list.imports {
				if imp == NftablesModule || strings.HasPrefix(imp, NftablesModule+"/") {
					bad = append(bad, fmt.Sprintf("%s imports %s%s: only netfilter/ uses google/nftables; program the kernel through netfilter/nft", p.ImportPath, imp, list.what))
				}
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func top(path string) string {
	first, _, _ := strings.Cut(path, "/")
	return first
}

// cmdOf is the command directory that owns a cmd/ package.
func cmdOf(path string) string {
	parts := strings.SplitN(path, "/", 3)
	if len(parts) < 2 {
		return path
	}
	return parts[0] + "/" + parts[1]
}

// CheckPackageDocs returns a violation for every package without a doc
// comment (STYLE.md: every package says what it provides).
func CheckPackageDocs(pkgs []Package) []string {
	var bad []string
	for _, p := range pkgs {
		if strings.HasPrefix(p.ImportPath, Module) && len(p.GoFiles) > 0 && strings.TrimSpace(p.Doc) == "" {
			bad = append(bad, fmt.Sprintf("%s has no package doc comment", p.ImportPath))
		}
	}
	return bad
}

// CheckGofmt returns a violation for every file that gofmt would change.
func CheckGofmt(files map[string][]byte) []string {
	var bad []string
	for name, src := range files {
		out, err := format.Source(src)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: does not parse: %v", name, err))
		case !bytes.Equal(out, src):
			bad = append(bad, fmt.Sprintf("%s: not gofmt-formatted (run gofmt -w %s)", name, name))
		}
	}
	sort.Strings(bad)
	return bad
}

// GoFiles reads every .go file under root, skipping testdata and hidden
// directories.
func GoFiles(root string) (map[string][]byte, error) {
	files := make(map[string][]byte)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			files[rel] = b
		}
		return nil
	})
	return files, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
