package cli

import (
	"net/http"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
)

// fakeFW serves edge-firewall's API and records each request's method,
// path and body.
func fakeFW(t *testing.T, dir string) *[]string {
	t.Helper()
	rec := &recorder{}
	record := rec.note
	deadline := time.Now().Add(time.Minute)
	serveFake(t, dir, "firewall", "v0.1.0",
		ctlsock.Route{Method: "POST", Path: ctlapi.PathFWApply, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.FWApplyRequest
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			record(r, req)
			res := ctlapi.FWApplyResult{Generation: 4, Changed: true, Diff: "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n",
				Summary: ctlapi.FWSummary{Chains: 9, Rules: 40, Sets: 4, Elements: 2, Offload: "off"}}
			if req.Confirm != "" {
				res.Pending = &ctlapi.FWPending{Generation: 4, Previous: 3, Deadline: deadline}
			}
			return res, nil
		}},
		ctlsock.Route{Method: "POST", Path: ctlapi.PathFWConfirm, Write: true, Handle: func(r *http.Request) (any, error) {
			record(r, nil)
			return nil, ctlapi.Errorf(http.StatusConflict, "nothing waits for a confirm")
		}},
		ctlsock.Route{Method: "GET", Path: ctlapi.PathFWDiff, Handle: func(r *http.Request) (any, error) {
			record(r, nil)
			return ctlapi.FWDiff{}, nil
		}},
		ctlsock.Route{Method: "GET", Path: ctlapi.PathFWShow, Handle: func(r *http.Request) (any, error) {
			record(r, nil)
			return ctlapi.FWShow{Ruleset: "table inet edge {\n}\n", Generation: 4}, nil
		}},
		ctlsock.Route{Method: "GET", Path: ctlapi.PathFWBans, Handle: func(r *http.Request) (any, error) {
			record(r, nil)
			return []ctlapi.FWBan{
				{Addr: "192.0.2.66", Source: "config", Active: true},
			}, nil
		}},
		ctlsock.Route{Method: "POST", Path: ctlapi.PathFWBans, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.FWBanRequest
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			record(r, req)
			return ctlapi.FWBanResult{Ban: ctlapi.FWBan{Addr: req.Addr, Source: "runtime", Active: true}, Warnings: []string{"a warning"}}, nil
		}},
		ctlsock.Route{Method: "DELETE", Path: ctlapi.PathFWBans, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.FWUnbanRequest
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			record(r, req)
			return ctlapi.FWBanResult{Ban: ctlapi.FWBan{Addr: req.Addr}}, nil
		}},
	)
	return &rec.seen
}

func TestFW(t *testing.T) {
	dir := t.TempDir()
	seen := fakeFW(t, dir)
	runCases(t, dir, seen, []cliCase{
		{[]string{"fw", "apply"}, 0, `POST /v1/fw/apply {}`, "applied generation 4: 40 rules in 9 chains, 4 sets with 2 elements, flow offload off", ""},
		{[]string{"fw", "apply", "--confirm"}, 0, `POST /v1/fw/apply {"confirm":"default"}`, "otherwise generation 3 comes back", ""},
		{[]string{"fw", "apply", "--confirm", "90s"}, 0, `POST /v1/fw/apply {"confirm":"90s"}`, "+y\n", ""},
		{[]string{"fw", "apply", "--confirm=5m"}, 0, `POST /v1/fw/apply {"confirm":"5m"}`, "edgectl fw confirm", ""},
		{[]string{"fw", "apply", "--bogus"}, ExitUsage, "", "", "unexpected \"--bogus\""},
		{[]string{"fw", "confirm"}, ExitFailure, `POST /v1/fw/confirm`, "", "firewall: nothing waits for a confirm\n"},
		{[]string{"fw", "diff"}, 0, `GET /v1/fw/diff`, "no changes", ""},
		{[]string{"fw", "show"}, 0, `GET /v1/fw/show?elements=20`, "table inet edge {\n}\n", ""},
		{[]string{"fw", "show", "--all"}, 0, `GET /v1/fw/show?elements=0`, "table inet edge", ""},
		{[]string{"fw", "show", "--elements", "5"}, 0, `GET /v1/fw/show?elements=5`, "table inet edge", ""},
		{[]string{"fw", "bans"}, 0, `GET /v1/fw/bans`, "192.0.2.66  never  config  yes     -   -", ""},
		{[]string{"fw", "ban", "203.0.113.7", "--for", "2h", "--comment", "ssh scans"}, 0,
			`POST /v1/fw/bans {"addr":"203.0.113.7","for":"2h","comment":"ssh scans"}`, "banned 203.0.113.7: never", "edgectl: warning: a warning\n"},
		{[]string{"fw", "ban"}, ExitUsage, "", "", "usage: edgectl fw ban ADDR"},
		{[]string{"fw", "unban", "203.0.113.7"}, 0, `DELETE /v1/fw/bans {"addr":"203.0.113.7"}`, "unbanned 203.0.113.7\n", ""},
		{[]string{"fw", "unban"}, ExitUsage, "", "", "usage: edgectl fw unban ADDR"},
		{[]string{"fw", "frobnicate"}, ExitUsage, "", "", "unknown fw command \"frobnicate\""},
		{[]string{"fw"}, ExitUsage, "", "", "usage: edgectl fw apply"},
	})

}
