package dns

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestQueryLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "queries.jsonl")
	section := "  query_log: {path: " + path + ", sample: 1}\n" + zones
	ts := startServer(t, section)
	ts.query("www.example.net.", mdns.TypeA)
	ts.query("www.example.net.", mdns.TypeA) // from the cache
	ts.query("www.other.org.", mdns.TypeA)
	read := func() []queryEntry {
		var out []queryEntry
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(path)
			out = out[:0]
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var e queryEntry
				if json.Unmarshal([]byte(line), &e) == nil {
					out = append(out, e)
				}
			}
			if len(out) >= 3 {
				return out
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("query log has %d lines, want 3", len(out))
		return nil
	}
	got := read()
	want := []string{"authoritative www.example.net. A NOERROR", "cache www.example.net. A NOERROR", "refused www.other.org. A REFUSED"}
	for i, w := range want {
		e := got[i]
		if s := e.Source + " " + e.Name + " " + e.Type + " " + e.Rcode; s != w || e.Client != "127.0.0.1" || e.Proto != "udp" {
			t.Errorf("line %d = %+v, want %s from 127.0.0.1 over udp", i, e, w)
		}
	}
	// Rotation: the file is moved away and a reload opens a new one.
	os.Rename(path, path+".1")
	if err := ts.reload(section); err != nil {
		t.Fatal(err)
	}
	ts.query("mail.example.net.", mdns.TypeA)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), "mail.example.net.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new log file after a reload")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestQueryLogResolverRcode checks that resolver answers are logged with
// their rcode over TCP as over UDP.
func TestQueryLogResolverRcode(t *testing.T) {
	up := startUpstream(t)
	path := filepath.Join(t.TempDir(), "queries.jsonl")
	ts := startServer(t, "  inside: [loop]\n  upstreams: {servers: [{address: \""+up.addr+"\"}]}\n  query_log: {path: "+path+", sample: 1}\n"+zones)
	m := new(mdns.Msg)
	m.SetQuestion("www.other.org.", mdns.TypeA)
	if _, _, err := (&mdns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, ts.addr); err != nil {
		t.Fatal(err)
	}
	ts.query("www.other.net.", mdns.TypeA, func(m *mdns.Msg) { m.RecursionDesired = true })
	want := []string{"tcp www.other.org. NOERROR", "udp www.other.net. NXDOMAIN"}
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		got = nil
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e queryEntry
			if json.Unmarshal([]byte(line), &e) == nil && e.Source == "resolver" {
				got = append(got, e.Proto+" "+e.Name+" "+e.Rcode)
			}
		}
		if len(got) >= 2 {
			break
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("resolver lines of the query log = %q, want %q", got, want)
	}
}
