package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// complete runs the bash completion on line (the word being completed is
// the last, possibly empty) and returns what it offers.
func complete(t *testing.T, script, socketDir, line string) []string {
	t.Helper()
	words := strings.Split(line, " ")
	prog := script + `
COMP_WORDS=(` + quoteWords(words) + `)
COMP_CWORD=` + itoa(len(words)-1) + `
_edgectl
printf '%s\n' "${COMPREPLY[@]}"
`
	cmd := exec.Command("bash", "--norc", "--noprofile")
	cmd.Stdin = strings.NewReader(prog)
	cmd.Env = append(os.Environ(), "EDGE_SOCKET_DIR="+socketDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func quoteWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = "'" + w + "'"
	}
	return strings.Join(q, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	_, script, _ := run("completion", "bash")
	dir := t.TempDir()
	// A suite daemon's socket and one of another daemon: each listed once.
	for _, n := range []string{"dns", "testd"} {
		os.WriteFile(filepath.Join(dir, n+".sock"), nil, 0o600)
	}
	tests := []struct {
		line string
		want []string // each must be offered
		not  []string // none of these
	}{
		{"edgectl ", []string{"status", "peer", "fw", "record", "completion"}, nil},
		{"edgectl status ", []string{"dns", "firewall", "testd"}, nil},
		{"edgectl peer ", []string{"add", "ls", "show", "config", "rm", "enable", "disable", "rename"}, []string{"dns"}},
		{"edgectl peer add laptop --", []string{"--pubkey", "--full-tunnel", "--qr-png", "--access", "--socket-dir", "--help"}, []string{"--for"}},
		{"edgectl fw ban 203.0.113.7 --", []string{"--for", "--comment"}, []string{"--pubkey"}},
		{"edgectl record add nas.home.arpa A 1.2.3.4 --", []string{"--ttl"}, nil},
		{"edgectl -o ", []string{"table", "json", "conf"}, nil},
		{"edgectl --socket-dir /tmp fw ", []string{"apply", "confirm", "bans"}, nil},
		{"edgectl log-level dns ", []string{"debug", "warn"}, []string{"dns"}},
		{"edgectl help peer ", []string{"add", "rename"}, nil},
	}
	for _, tc := range tests {
		got := complete(t, script, dir, tc.line)
		for _, w := range tc.want {
			if !contains(got, w) {
				t.Errorf("completing %q offers %q, missing %s", tc.line, got, w)
			}
		}
		for _, w := range tc.not {
			if contains(got, w) {
				t.Errorf("completing %q offers %s (%q)", tc.line, w, got)
			}
		}
		seen := map[string]bool{}
		for _, w := range got {
			if seen[w] {
				t.Errorf("completing %q offers %s twice", tc.line, w)
			}
			seen[w] = true
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestFishCompletionHasSubcommandFlags(t *testing.T) {
	_, script, _ := run("completion", "fish")
	for _, want := range []string{
		`__fish_seen_subcommand_from peer; and not __fish_seen_subcommand_from add ls show config rm enable disable rename" -a "add ls show config rm enable disable rename"`,
		`__fish_seen_subcommand_from peer; and __fish_seen_subcommand_from add" -l pubkey -r`,
		`-s o -l output -r -a "table json conf"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("fish completion lacks %q", want)
		}
	}
	if path, err := exec.LookPath("fish"); err == nil {
		if out, err := exec.Command(path, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("fish -n: %v\n%s", err, out)
		}
	}
}
