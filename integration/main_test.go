//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binDir holds the binaries built for this run; other users may run them.
var binDir string

// binaries are built once for every test, from this checkout.
var binaries = map[string]string{
	"edgectl":       "./cmd/edgectl",
	"edge-testd":    "./integration/edge-testd",
	"edge-dns":      "./cmd/edge-dns",
	"edge-firewall": "./cmd/edge-firewall",
	"edge-probe":    "./integration/edge-probe",
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "edge-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	binDir = dir
	// The binaries are built with -race, whose runtime sleeps a second at
	// exit unless told otherwise; edgectl and edge-probe run hundreds of
	// times.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	for name, pkg := range binaries {
		cmd := exec.Command("go", "build", "-race", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

func bin(name string) string { return filepath.Join(binDir, name) }
