package repotest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// envFuncs are the os functions that read the process environment.
var envFuncs = map[string]bool{"Getenv": true, "LookupEnv": true, "Environ": true, "ExpandEnv": true}

// envAllowed are the top folders whose code may read the environment:
// commands (flags and environment are theirs to read), plumbing
// (sd_notify's NOTIFY_SOCKET), and the test suites and tools.
var envAllowed = []string{"cmd", "internal", "integration", "scripts", "bench"}

// CheckNoEnv returns a violation for every call in a domain package's
// non-test file that reads the environment: a domain package takes what
// it needs from its config and its Env, so that a test (or a second
// instance in one process) decides it, not the process.
func CheckNoEnv(files map[string][]byte) []string {
	var bad []string
	for name, src := range files {
		top, _, _ := strings.Cut(filepath.ToSlash(name), "/")
		if strings.HasSuffix(name, "_test.go") || contains(envAllowed, top) || !strings.Contains(name, "/") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: does not parse: %v", name, err))
			continue
		}
		osName := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "os" {
				osName = "os"
				if imp.Name != nil {
					osName = imp.Name.Name
				}
			}
		}
		if osName == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || !envFuncs[sel.Sel.Name] {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == osName {
				bad = append(bad, fmt.Sprintf("%s: os.%s in a domain package; read the environment in the command and pass the value in",
					fset.Position(sel.Pos()), sel.Sel.Name))
			}
			return true
		})
	}
	sort.Strings(bad)
	return bad
}
