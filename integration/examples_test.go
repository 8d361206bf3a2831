//go:build integration

package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// TestCheckRedactsSecrets runs every daemon's -check on the example config
// and a config of its own with secrets planted in every secret key: no
// output may carry one.
func TestCheckRedactsSecrets(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "examples", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := regexp.MustCompile(`secret: "([^"]+)"`).FindAllStringSubmatch(string(example), -1)
	if len(secrets) == 0 {
		t.Fatal("examples/edge.yaml has no secret to look for")
	}
	const planted = "cGxhbnRlZC1ieS10ZXN0Q2hlY2tSZWRhY3RzU2VjcmV0cw=="
	dir := t.TempDir()
	own := filepath.Join(dir, "edge.yaml")
	cfg := strings.ReplaceAll(string(example), secrets[0][1], planted)
	if err := os.WriteFile(own, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"edge-dns", "edge-firewall", "edge-vpn", "edge-testd"} {
		for _, file := range []string{filepath.Join("..", "examples", "edge.yaml"), own} {
			out, _ := exec.Command(bin(d), "-check", "-config", file).CombinedOutput()
			for _, s := range append([]string{planted}, secrets[0][1]) {
				if strings.Contains(string(out), s) {
					t.Errorf("%s -check -config %s prints a secret:\n%s", d, file, out)
				}
			}
			if (d == "edge-dns" || d == "edge-vpn") && !strings.Contains(string(out), "secret: (redacted)") {
				t.Errorf("%s -check -config %s shows no redacted secret:\n%s", d, file, out)
			}
		}
	}
}
