//go:build integration

package integration

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamplesCheck runs the shipped examples through a daemon's -check,
// as an operator would.
func TestExamplesCheck(t *testing.T) {
	tests := []struct {
		daemon string
		file   string
		code   int
		output string
	}{
		{"edge-testd", "testd.yaml", 0, "greeting: hello from the router"},
		{"edge-dns", "edge.yaml", 0, "name: home.arpa"},
		{"edge-firewall", "edge.yaml", 0, "masquerade:\n      - wan"},
		{"edge-vpn", "edge.yaml", 0, "interface: wg0"},
		{"edge-testd", "broken/unknown-key.yaml", 78, `unknown-key.yaml:9:3: testd.greting: unknown key "greting" (did you mean "greeting"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.daemon+" "+tc.file, func(t *testing.T) {
			out, err := exec.Command(bin(tc.daemon), "-check", "-config", filepath.Join("..", "examples", tc.file)).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.output) {
				t.Errorf("%s -check -config examples/%s = %d\n%s\nwant %d and %q", tc.daemon, tc.file, code, out, tc.code, tc.output)
			}
		})
	}
}
