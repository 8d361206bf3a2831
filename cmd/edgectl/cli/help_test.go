package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
)

// TestHelpNeverActs asks for help every way at every level, against fake
// daemons that record any request: help must be printed and nothing sent
// (peer add --help once created a live peer named "help").
func TestHelpNeverActs(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	any := func(r *http.Request) (any, error) { rec.note(r, nil); return map[string]string{}, nil }
	var routes []ctlsock.Route
	for _, p := range []string{ctlapi.PathStatus, ctlapi.PathReload, ctlapi.PathLogLevel, ctlapi.PathDNSRecords, ctlapi.PathVPNPeers,
		ctlapi.PathVPNPeer, ctlapi.PathVPNPeerConfig, ctlapi.PathFWApply, ctlapi.PathFWConfirm, ctlapi.PathFWDiff, ctlapi.PathFWShow, ctlapi.PathFWBans} {
		for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
			routes = append(routes, ctlsock.Route{Method: m, Path: p, Handle: any})
		}
	}
	for _, d := range []string{"dns", "vpn", "firewall"} {
		serveFake(t, dir, d, "v0.1.0", routes...)
	}
	var cases []cliCase
	for _, c := range commands {
		want := "usage: edgectl " + c.name
		if c.name == "help" {
			want = "usage: edgectl [--socket-dir DIR]" // help's help is edgectl's
		}
		for _, form := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}, {"--help", c.name}} {
			cases = append(cases, cliCase{args: form, stdout: want})
		}
		for _, s := range subcommands[c.name] {
			want := "usage: edgectl " + c.name + " " + s.name
			for _, form := range [][]string{
				{c.name, s.name, "--help"},
				{c.name, s.name, "help-me", "-h"},
				{c.name, s.name, "x", "--help", "--for", "1h"},
				{"help", c.name, s.name},
				{"-h", c.name, s.name, "x"},
			} {
				cases = append(cases, cliCase{args: form, stdout: want})
			}
			for _, alias := range s.aliases {
				cases = append(cases, cliCase{args: []string{c.name, alias, "--help"}, stdout: want})
			}
			for _, f := range s.flags {
				if !strings.Contains(helpText(t, c.name, s.name), f.word()) {
					t.Errorf("help of %s %s lacks %s", c.name, s.name, f.word())
				}
			}
		}
		cases = append(cases, cliCase{args: []string{c.name, "help"}, stdout: want})
	}
	cases = append(cases,
		cliCase{args: []string{"--help"}, stdout: "commands:"},
		cliCase{args: []string{"peer", "nosuch", "--help"}, code: ExitUsage, stderr: `unknown peer command "nosuch"; use add, ls, show, config, rm, enable, disable or rename`},
		cliCase{args: []string{"nosuch", "--help"}, code: ExitUsage, stderr: `unknown command "nosuch"`},
		// After "--" a --help is a value: a TXT record that reads "--help".
		cliCase{args: []string{"record", "add", "t.home.arpa", "TXT", "--", "--help"}, request: "POST /v1/dns/records"},
	)
	runCases(t, dir, &rec.seen, cases)
}

func helpText(t *testing.T, words ...string) string {
	t.Helper()
	code, out, errb := run(append([]string{"help"}, words...)...)
	if code != ExitOK {
		t.Fatalf("help %v: exit %d: %s", words, code, errb)
	}
	return out
}
