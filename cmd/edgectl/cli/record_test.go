package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
)

// fakeDNS serves the records API and keeps the last change it got.
func fakeDNS(t *testing.T, dir string) *ctlapi.DNSRecordChange {
	t.Helper()
	last := new(ctlapi.DNSRecordChange)
	change := func(verb string) ctlsock.HandlerFunc {
		return func(r *http.Request) (any, error) {
			if err := ctlsock.DecodeBody(r, last); err != nil {
				return nil, err
			}
			if last.Name == "www.example.net" {
				return nil, ctlapi.Errorf(409, "www.example.net. A is declared in the config (config); change it there")
			}
			return ctlapi.DNSRecordResult{Serial: 1795692016, Records: []ctlapi.DNSRecord{{Name: last.Name + ".", Type: last.Type, TTL: 300, Value: last.Value}}}, nil
		}
	}
	serveFake(t, dir, "dns", "v0.1.0",
		ctlsock.Route{Method: "GET", Path: ctlapi.PathDNSRecords, Handle: func(r *http.Request) (any, error) {
			if z := r.URL.Query().Get("zone"); z != "" && z != "home.arpa" {
				return nil, ctlapi.Errorf(404, "no zone %s", z)
			}
			return []ctlapi.DNSRecord{
				{Name: "home.arpa.", Type: "SOA", TTL: 300, Value: "ns1.home.arpa. hostmaster.home.arpa. 1795692016 3600 900 604800 300", Zone: "home.arpa.", Source: "config"},
				{Name: "nas.home.arpa.", Type: "A", TTL: 300, Value: "192.168.1.10", Zone: "home.arpa.", Source: "config"},
				{Name: "laptop.vpn.home.arpa.", Type: "A", TTL: 60, Value: "10.100.0.2", Zone: "home.arpa.", Source: "dynamic"},
			}, nil
		}},
		ctlsock.Route{Method: "POST", Path: ctlapi.PathDNSRecords, Write: true, Handle: change("add")},
		ctlsock.Route{Method: "DELETE", Path: ctlapi.PathDNSRecords, Write: true, Handle: change("rm")},
	)
	return last
}

func TestRecord(t *testing.T) {
	dir := t.TempDir()
	last := fakeDNS(t, dir)

	code, out, _ := run("--socket-dir", dir, "record", "ls", "home.arpa")
	if code != 0 {
		t.Fatalf("record ls = %d", code)
	}
	golden(t, "record-ls.golden", out)

	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
		want   ctlapi.DNSRecordChange
	}{
		{[]string{"record", "add", "nas2.home.arpa", "A", "192.168.1.11"}, 0, "added nas2.home.arpa. 300 A 192.168.1.11\nzone serial 1795692016\n", "", ctlapi.DNSRecordChange{Name: "nas2.home.arpa", Type: "A", Value: "192.168.1.11"}},
		{[]string{"record", "add", "--ttl", "60", "home.arpa", "MX", "10", "mail.home.arpa."}, 0, "added home.arpa. 300 MX 10 mail.home.arpa.", "", ctlapi.DNSRecordChange{Name: "home.arpa", Type: "MX", Value: "10 mail.home.arpa.", TTL: 60}},
		{[]string{"record", "add", "--ttl", "1m", "home.arpa", "MX", "10", "mail.home.arpa."}, 0, "added", "", ctlapi.DNSRecordChange{Name: "home.arpa", Type: "MX", Value: "10 mail.home.arpa.", TTL: 60}},
		{[]string{"record", "add", "--ttl", "soon", "home.arpa", "MX", "10", "mail.home.arpa."}, ExitUsage, "", `invalid --ttl "soon"; write whole seconds (300) or a duration`, ctlapi.DNSRecordChange{}},
		{[]string{"record", "add", "t.home.arpa", "TXT", "--", "-starts with a dash"}, 0, "added", "", ctlapi.DNSRecordChange{Name: "t.home.arpa", Type: "TXT", Value: "-starts with a dash"}},
		{[]string{"record", "rm", "nas2.home.arpa", "A"}, 0, "removed nas2.home.arpa.", "", ctlapi.DNSRecordChange{Name: "nas2.home.arpa", Type: "A"}},
		{[]string{"record", "add", "www.example.net", "A", "192.0.2.1"}, ExitFailure, "", "dns: www.example.net. A is declared in the config (config); change it there\n", ctlapi.DNSRecordChange{Name: "www.example.net", Type: "A", Value: "192.0.2.1"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			*last = ctlapi.DNSRecordChange{}
			code, out, errb := run(append([]string{"--socket-dir", dir}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errb, tc.stderr) {
				t.Errorf("edgectl %q = %d\nstdout %q\nstderr %q\nwant %d, %q, %q", tc.args, code, out, errb, tc.code, tc.stdout, tc.stderr)
			}
			if *last != tc.want {
				t.Errorf("daemon got %+v, want %+v", *last, tc.want)
			}
		})
	}
	for _, args := range [][]string{{"record"}, {"record", "add", "x"}, {"record", "add", "--bogus", "a", "A", "1.2.3.4"}, {"record", "frob"}, {"record", "rm"}} {
		if code, _, _ := run(append([]string{"--socket-dir", dir}, args...)...); code != ExitUsage {
			t.Errorf("edgectl %q = %d, want %d", args, code, ExitUsage)
		}
	}
	if code, _, errb := run("--socket-dir", dir, "record", "ls", "nope.org"); code != ExitFailure || !strings.Contains(errb, "no zone nope.org") {
		t.Errorf("record ls nope.org = %d %q", code, errb)
	}
}

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		err  string
	}{
		{"", 0, ""},
		{"300", 300, ""},
		{"5m", 300, ""},
		{"1h30m", 5400, ""},
		{"1d", 86400, ""},
		{"2147483647", 2147483647, ""},
		{"2147483648", 0, "more than the largest TTL"},
		{"1500ms", 0, "not a whole number of seconds"},
		{"-5m", 0, "invalid --ttl"},
		{"soon", 0, "invalid --ttl"},
		{"xd", 0, "invalid --ttl"},
	}
	for _, tc := range tests {
		got, err := parseTTL(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseTTL(%q) error = %v, want one containing %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseTTL(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
