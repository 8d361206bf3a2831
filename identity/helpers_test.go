package identity

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/nettest"
)

// needTool returns the path of the command name, or skips t when it is not
// installed (fails it under EDGE_REQUIRE_ROOT=1).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		nettest.Unavailable(t, "needs the "+name+" command")
	}
	return p
}

// writeFile writes data to name in dir with mode 0600 and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs a command with stdin and returns stdout, stderr and its error.
func run(stdin []byte, name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustRun is run that fails t when the command fails.
func mustRun(t testing.TB, stdin []byte, name string, args ...string) string {
	t.Helper()
	out, errOut, err := run(stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errOut)
	}
	return out
}

// pemBody returns the base64 lines of a PEM file, to check that an error or
// String does not contain key material.
func pemBody(p []byte) []string {
	var out []string
	for _, l := range strings.Split(string(p), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") && len(l) >= 16 {
			out = append(out, l)
		}
	}
	return out
}
