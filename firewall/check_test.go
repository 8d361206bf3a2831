package firewall

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/daemon"
)

// TestCheckReadsSetFiles: -check compiles the config as an apply would,
// so a set file that does not exist, or has a bad line, is an error
// naming the key and the path (exit 78), as the apply's would be; the
// NixOS module's build-time check, which cannot see the router's files,
// takes missing ones as empty instead.
func TestCheckReadsSetFiles(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "drop.txt")
	missing := filepath.Join(dir, "nope.txt")
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(list, []byte("203.0.113.0/24\n"), 0o644)
	os.WriteFile(bad, []byte("203.0.113.0/24\n203.0.113.300\n"), 0o644)
	config := func(file string) string {
		path := filepath.Join(dir, "edge.yaml")
		os.WriteFile(path, []byte(`version: 1
site:
  interfaces: {wan: eth0}
firewall:
  zones:
    wan: {interfaces: [wan]}
  sets:
    blocklist: {file: `+file+`}
  rules:
    - {name: drop-blocklist, from: wan, to: any, source_set: blocklist, action: drop}
`), 0o644)
		return path
	}
	for _, tc := range []struct {
		name      string
		file      string
		ignore    bool
		code      int
		wantError string
	}{
		{"file there", list, false, daemon.ExitOK, ""},
		{"file missing", missing, false, daemon.ExitConfig, "edge.yaml:8:23: firewall.sets.blocklist.file: set blocklist: read " + missing + ": no such file or directory"},
		{"bad line", bad, false, daemon.ExitConfig, "firewall.sets.blocklist.file: set blocklist: " + bad + ":2: invalid address or prefix \"203.0.113.300\""},
		{"file missing, ignored", missing, true, daemon.ExitOK, ""},
		{"bad line, not ignored", bad, true, daemon.ExitConfig, bad + ":2: invalid address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec
			spec.Check = Checker(tc.ignore)
			var out, errb bytes.Buffer
			code := daemon.Main(spec, []string{"-check", "-config", config(tc.file)}, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.wantError) {
				t.Errorf("edge-firewall -check = %d\nstderr: %s\nwant %d with %q", code, errb.String(), tc.code, tc.wantError)
			}
			if tc.code == daemon.ExitOK && !strings.Contains(out.String(), "blocklist:") {
				t.Errorf("-check printed no normalized config:\n%s", out.String())
			}
		})
	}
}
