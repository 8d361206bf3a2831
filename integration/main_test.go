//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homeedge/edge/integration/lab"
)

// binDir holds the binaries built for this run; other users may run them.
var binDir string

// binaries are built once for every test, from this checkout.
var binaries = map[string]string{
	"edgectl":       "./cmd/edgectl",
	"edge-testd":    "./integration/edge-testd",
	"edge-dns":      "./cmd/edge-dns",
	"edge-firewall": "./cmd/edge-firewall",
	"edge-vpn":      "./cmd/edge-vpn",
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

// runExit runs cmd and returns its exit code and combined output; a
// command that cannot start at all fails t.
func runExit(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	return -1, ""
}

// startDaemon starts bin(name) -config cfg in node and waits until it
// logs that it is ready.
func startDaemon(t *testing.T, l *lab.Lab, node, name, cfg string) *lab.Proc {
	t.Helper()
	p, err := l.Start(node, name, []string{bin(name), "-config", cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitLog(ctx, "msg=ready"); err != nil {
		t.Fatal(err)
	}
	return p
}

// daemonLab is a lab, a folder for a test's files and the config file in
// it, and the daemon of the suite a test started from that config.
type daemonLab struct {
	t   *testing.T
	l   *lab.Lab
	dir string
	cfg string
	p   *lab.Proc
}

func newDaemonLab(t *testing.T) *daemonLab {
	t.Helper()
	l := lab.ForTest(t, lab.Options{})
	dir := t.TempDir()
	return &daemonLab{t: t, l: l, dir: dir, cfg: filepath.Join(dir, "edge.yaml")}
}

// edgectl runs edgectl against the sockets in the test's folder; it
// returns the exit code and the output.
func (d *daemonLab) edgectl(args ...string) (int, string) {
	d.t.Helper()
	return runExit(d.t, exec.Command(bin("edgectl"), append([]string{"--socket-dir", filepath.Join(d.dir, "run")}, args...)...))
}

// mustEdgectl is edgectl that fails the test on a non-zero exit.
func (d *daemonLab) mustEdgectl(args ...string) string {
	d.t.Helper()
	code, out := d.edgectl(args...)
	if code != 0 {
		d.t.Fatalf("edgectl %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// run runs a command in node, within a minute.
func (d *daemonLab) run(node string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := d.l.Run(ctx, node, args[0], args[1:]...)
	return string(out), err
}

// mustRun is run that fails the test when the command fails.
func (d *daemonLab) mustRun(node string, args ...string) string {
	d.t.Helper()
	out, err := d.run(node, args...)
	if err != nil {
		d.t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), node, err, out)
	}
	return out
}
