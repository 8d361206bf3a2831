package cli

import (
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
)

const fwUsage = "usage: edgectl fw apply [--confirm [DURATION]] | confirm | diff | show [--all | --elements N] | bans | ban ADDR [--for 1h] [--comment TEXT] | unban ADDR"

// fw talks to edge-firewall.
func (e *env) fw(args []string) int {
	if len(args) == 0 {
		return e.usageError(fwUsage)
	}
	noArgs := map[string]func() int{"confirm": e.fwConfirm, "diff": e.fwDiff, "bans": e.fwBans}
	if run, ok := noArgs[args[0]]; ok {
		if len(args) > 1 {
			return e.usageError("usage: edgectl fw %s", args[0])
		}
		return run()
	}
	switch args[0] {
	case "apply":
		return e.fwApply(args[1:])
	case "show":
		return e.fwShow(args[1:])
	case "ban":
		return e.fwBan(args[1:])
	case "unban":
		if len(args) != 2 || strings.HasPrefix(args[1], "-") {
			return e.usageError("usage: edgectl fw unban ADDR")
		}
		return e.fwBanChange(http.MethodDelete, ctlapi.FWUnbanRequest{Addr: args[1]})
	}
	return e.usageError("unknown fw command %q; use apply, confirm, diff, show, bans, ban or unban", args[0])
}

// fwApply: --confirm takes an optional duration (--confirm, --confirm 60s,
// --confirm=60s); without one the config's confirm.default_timeout holds.
func (e *env) fwApply(args []string) int {
	var req ctlapi.FWApplyRequest
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		if name != "--confirm" && name != "-confirm" {
			return e.usageError("usage: edgectl fw apply [--confirm [DURATION]]   (unexpected %q)", args[i])
		}
		switch {
		case hasValue:
			req.Confirm = value
		case i+1 < len(args) && args[i+1] != "" && args[i+1][0] >= '0' && args[i+1][0] <= '9':
			i++
			req.Confirm = args[i]
		default:
			req.Confirm = "default"
		}
	}
	var res ctlapi.FWApplyResult
	if code, done := e.call("firewall", http.MethodPost, ctlapi.PathFWApply, req, &res); done {
		return code
	}
	if !res.Changed {
		fmt.Fprintf(e.stdout, "nothing changed; generation %d is loaded\n", res.Generation)
		return ExitOK
	}
	fmt.Fprint(e.stdout, res.Diff)
	s := res.Summary
	fmt.Fprintf(e.stdout, "applied generation %d: %d rules in %d chains, %d sets with %d elements, flow offload %s\n",
		res.Generation, s.Rules, s.Chains, s.Sets, s.Elements, s.Offload)
	if p := res.Pending; p != nil {
		fmt.Fprintf(e.stdout, "run `edgectl fw confirm` before %s (in %s) to keep it; otherwise generation %d comes back\n",
			p.Deadline.Local().Format(time.TimeOnly), time.Until(p.Deadline).Round(time.Second), p.Previous)
	}
	return ExitOK
}

func (e *env) fwConfirm() int {
	var res ctlapi.FWConfirmResult
	if code, done := e.call("firewall", http.MethodPost, ctlapi.PathFWConfirm, nil, &res); done {
		return code
	}
	fmt.Fprintf(e.stdout, "confirmed generation %d\n", res.Generation)
	return ExitOK
}

func (e *env) fwDiff() int {
	var res ctlapi.FWDiff
	if code, done := e.call("firewall", http.MethodGet, ctlapi.PathFWDiff, nil, &res); done {
		return code
	}
	if !res.Changed {
		fmt.Fprintln(e.stdout, "no changes: the config file compiles to the loaded ruleset")
		return ExitOK
	}
	fmt.Fprint(e.stdout, res.Diff)
	return ExitOK
}

// fwShowElements is how many elements per set show lists unless told.
const fwShowElements = 20

func (e *env) fwShow(args []string) int {
	fs := flag.NewFlagSet("fw show", flag.ContinueOnError)
	all := fs.Bool("all", false, "list every set element")
	n := fs.Int("elements", fwShowElements, "list at most N elements per set")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) > 0 || *n < 0 {
		return e.usageError("usage: edgectl fw show [--all | --elements N]")
	}
	if *all {
		*n = 0
	}
	var res ctlapi.FWShow
	if code, done := e.call("firewall", http.MethodGet, ctlapi.PathFWShow+"?elements="+strconv.Itoa(*n), nil, &res); done {
		return code
	}
	fmt.Fprint(e.stdout, res.Ruleset)
	if p := res.Pending; p != nil {
		fmt.Fprintf(e.stdout, "# generation %d waits for `edgectl fw confirm` until %s; otherwise generation %d comes back\n",
			p.Generation, p.Deadline.Local().Format(time.TimeOnly), p.Previous)
	}
	return ExitOK
}

func (e *env) fwBans() int {
	var bans []ctlapi.FWBan
	if code, done := e.call("firewall", http.MethodGet, ctlapi.PathFWBans, nil, &bans); done {
		return code
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tENDS\tSOURCE\tACTIVE\tBY\tCOMMENT")
	for _, b := range bans {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Addr, banEnd(b), b.Source, yesNo(b.Active), dash(b.By), dash(b.Comment))
	}
	tw.Flush()
	return ExitOK
}

func (e *env) fwBan(args []string) int {
	fs := flag.NewFlagSet("fw ban", flag.ContinueOnError)
	length := fs.String("for", "", "how long (1h, 7d, forever); default the config's bans.default_timeout")
	comment := fs.String("comment", "", "why, kept with the ban")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 {
		return e.usageError("usage: edgectl fw ban ADDR [--for 1h] [--comment TEXT]")
	}
	return e.fwBanChange(http.MethodPost, ctlapi.FWBanRequest{Addr: pos[0], For: *length, Comment: *comment})
}

func (e *env) fwBanChange(method string, req any) int {
	var res ctlapi.FWBanResult
	if code, done := e.call("firewall", method, ctlapi.PathFWBans, req, &res); done {
		return code
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "edgectl: warning: %s\n", w)
	}
	switch {
	case method == http.MethodDelete:
		fmt.Fprintf(e.stdout, "unbanned %s\n", res.Ban.Addr)
	case res.Refreshed:
		fmt.Fprintf(e.stdout, "ban of %s refreshed: %s\n", res.Ban.Addr, banEnd(res.Ban))
	default:
		fmt.Fprintf(e.stdout, "banned %s: %s\n", res.Ban.Addr, banEnd(res.Ban))
	}
	return ExitOK
}

// banEnd says when a ban ends, in local time with the time left.
func banEnd(b ctlapi.FWBan) string {
	if b.Expires == nil {
		return "never"
	}
	left := time.Until(*b.Expires).Round(time.Second)
	return fmt.Sprintf("%s (in %s)", b.Expires.Local().Format(time.DateTime), left)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
