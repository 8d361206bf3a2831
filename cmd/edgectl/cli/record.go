package cli

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
)

// record manages edge-dns's run-time records.
func (e *env) record(args []string) int {
	if len(args) == 0 {
		return e.usageError("usage: edgectl record ls [ZONE] | add NAME TYPE VALUE [--ttl SECONDS] | rm NAME [TYPE [VALUE]]")
	}
	switch args[0] {
	case "ls", "list":
		return e.recordList(args[1:])
	case "add":
		return e.recordAdd(args[1:])
	case "rm", "remove", "del":
		return e.recordRemove(args[1:])
	}
	return e.usageError("unknown record command %q; use ls, add or rm", args[0])
}

func (e *env) recordList(args []string) int {
	if len(args) > 1 || len(args) == 1 && strings.HasPrefix(args[0], "-") {
		return e.usageError("usage: edgectl record ls [ZONE]")
	}
	path := ctlapi.PathDNSRecords
	if len(args) == 1 {
		path += "?zone=" + url.QueryEscape(args[0])
	}
	var recs []ctlapi.DNSRecord
	if code, done := e.call("dns", http.MethodGet, path, nil, &recs); done {
		return code
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tTTL\tVALUE\tSOURCE")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Name, r.Type, r.TTL, r.Value, r.Source)
	}
	tw.Flush()
	return ExitOK
}

func (e *env) recordAdd(args []string) int {
	fs := flag.NewFlagSet("record add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ttlText := fs.String("ttl", "", "the TTL: seconds or a duration (default: the zone's)")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) < 3 {
		return e.usageError("usage: edgectl record add NAME TYPE VALUE [--ttl 300|5m|1h]   (e.g. record add nas.home.arpa A 192.168.1.10)")
	}
	ttl, err := parseTTL(*ttlText)
	if err != nil {
		return e.usageError("%v", err)
	}
	req := ctlapi.DNSRecordChange{Name: pos[0], Type: pos[1], Value: strings.Join(pos[2:], " "), TTL: ttl}
	return e.recordChange(http.MethodPost, req, "added")
}

func (e *env) recordRemove(args []string) int {
	pos, err := parseInterleaved(flag.NewFlagSet("record rm", flag.ContinueOnError), args)
	if err != nil || len(pos) < 1 {
		return e.usageError("usage: edgectl record rm NAME [TYPE [VALUE]]")
	}
	req := ctlapi.DNSRecordChange{Name: pos[0]}
	if len(pos) > 1 {
		req.Type = pos[1]
	}
	if len(pos) > 2 {
		req.Value = strings.Join(pos[2:], " ")
	}
	return e.recordChange(http.MethodDelete, req, "removed")
}

func (e *env) recordChange(method string, req ctlapi.DNSRecordChange, verb string) int {
	var res ctlapi.DNSRecordResult
	if code, done := e.call("dns", method, ctlapi.PathDNSRecords, req, &res); done {
		return code
	}
	for _, r := range res.Records {
		fmt.Fprintf(e.stdout, "%s %s %d %s %s\n", verb, r.Name, r.TTL, r.Type, r.Value)
	}
	fmt.Fprintf(e.stdout, "zone serial %d\n", res.Serial)
	return ExitOK
}

// parseInterleaved parses flags wherever they stand among the positional
// arguments, as people type them.
// After "--" everything is positional (a TXT value may start with "-").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return append(pos, tail...), nil
}

// maxTTL is the largest TTL DNS allows (RFC 2181 8).
const maxTTL = 1<<31 - 1

// parseTTL reads --ttl: whole seconds (300) or a duration with a unit
// (90s, 5m, 1h, 1d); "" is the zone's default (0).
func parseTTL(text string) (uint32, error) {
	if text == "" {
		return 0, nil
	}
	bad := fmt.Errorf("invalid --ttl %q; write whole seconds (300) or a duration such as 5m, 1h or 1d", text)
	if n, err := strconv.ParseUint(text, 10, 64); err == nil {
		if n > maxTTL {
			return 0, fmt.Errorf("--ttl %s is more than the largest TTL, %d seconds", text, maxTTL)
		}
		return uint32(n), nil
	}
	d, err := time.ParseDuration(text)
	if days, ok := strings.CutSuffix(text, "d"); ok && err != nil {
		n, nerr := strconv.ParseUint(days, 10, 32)
		d, err = time.Duration(n)*24*time.Hour, nerr
	}
	switch {
	case err != nil || d < 0:
		return 0, bad
	case d%time.Second != 0:
		return 0, fmt.Errorf("--ttl %s is not a whole number of seconds", text)
	case d > maxTTL*time.Second:
		return 0, fmt.Errorf("--ttl %s is more than the largest TTL, %d seconds", text, maxTTL)
	}
	return uint32(d / time.Second), nil
}
