package dns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/daemon"
)

// testServer runs edge-dns in-process on a loopback port.
type testServer struct {
	t      *testing.T
	srv    *Server
	addr   string
	dir    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	reg    *prometheus.Registry
}

func freeUDPPort(t *testing.T) int {
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		if ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func parseYAML(yaml string) (*config.File[Config], error) {
	return config.Parse([]byte(yaml), "edge.yaml", "dns", DefaultConfig)
}

func parseConfig(t *testing.T, dnsSection string) *config.File[Config] {
	t.Helper()
	yaml := "version: 1\nsite:\n  domain: example.net\n  local_domain: home.arpa\n  networks:\n    lan: [192.168.1.0/24]\n    loop: [127.0.0.0/8]\ndns:\n" + dnsSection
	f, err := parseYAML(yaml)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return f
}

func startServer(t *testing.T, dnsSection string) *testServer {
	t.Helper()
	port := freeUDPPort(t)
	dir := t.TempDir()
	section := fmt.Sprintf("  listen: [\"127.0.0.1:%d\"]\n", port) + dnsSection
	cfg := parseConfig(t, section)
	reg := prometheus.NewRegistry()
	svc, err := New(daemon.Env{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg, StateDir: dir}, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, srv: svc.(*Server), addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() { ts.done <- svc.Run(ctx) }()
	select {
	case <-ts.srv.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ts.once.Do(ts.stopOnce)
}

func (ts *testServer) stopOnce() {
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			ts.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		ts.t.Error("server did not stop")
	}
}

func (ts *testServer) reload(dnsSection string) error {
	port := ts.addr[strings.LastIndex(ts.addr, ":")+1:]
	return reloadNow(ts.srv, parseConfig(ts.t, "  listen: [\"127.0.0.1:"+port+"\"]\n"+dnsSection))
}

func (ts *testServer) query(name string, qtype uint16, opts ...func(*mdns.Msg)) *mdns.Msg {
	ts.t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	for _, o := range opts {
		o(m)
	}
	c := &mdns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, ts.addr)
	if err != nil {
		ts.t.Fatalf("query %s %s: %v", name, mdns.TypeToString[qtype], err)
	}
	return r
}

// envFor is the environment of a restarted server: same state, fresh
// metrics.
func envFor(ts *testServer) daemon.Env {
	return daemon.Env{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(), StateDir: ts.dir}
}

// answers renders a reply's answer data, sorted as given.
func answers(r *mdns.Msg) string {
	var parts []string
	for _, rr := range r.Answer {
		parts = append(parts, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	return strings.Join(parts, " ")
}

const zones = `  zones:
    - name: example.net
      records:
        - {name: www, type: A, value: 192.0.2.10}
        - {name: www, type: AAAA, value: "2001:db8::10"}
        - {name: big, type: TXT, values: ["` + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" + `", "b1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "c2cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", "d3dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", "e4eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "f5ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"]}
    - name: home.arpa
      records:
        - {name: nas, type: A, value: 192.168.1.10}
`

func TestQueryBasics(t *testing.T) {
	ts := startServer(t, "  inside: [lan]\n"+zones)

	r := ts.query("WwW.ExAmPlE.NeT.", mdns.TypeA)
	if r.Rcode != mdns.RcodeSuccess || !r.Authoritative || answers(r) != "192.0.2.10" || r.Question[0].Name != "WwW.ExAmPlE.NeT." {
		t.Errorf("mixed-case query = %v", r)
	}
	if r.IsEdns0() != nil {
		t.Errorf("reply has OPT though the query had none")
	}
	r = ts.query("nope.example.net.", mdns.TypeA)
	if r.Rcode != mdns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA {
		t.Errorf("NXDOMAIN = %v, want SOA in authority", r)
	}
	// The loopback client is outside here: no recursion, no inside zone.
	if r := ts.query("www.other.org.", mdns.TypeA); r.Rcode != mdns.RcodeRefused || r.RecursionAvailable {
		t.Errorf("foreign name from outside = %s RA=%v, want REFUSED without RA", mdns.RcodeToString[r.Rcode], r.RecursionAvailable)
	}
	if r := ts.query("nas.home.arpa.", mdns.TypeA); r.Rcode != mdns.RcodeRefused {
		t.Errorf("inside zone from outside = %s, want REFUSED", mdns.RcodeToString[r.Rcode])
	}

	// EDNS: OPT echoed, buffer honoured, BADVERS for version 1.
	r = ts.query("www.example.net.", mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(4096, true) })
	if o := r.IsEdns0(); o == nil || o.UDPSize() != ednsSize || !o.Do() {
		t.Errorf("EDNS reply OPT = %v, want size %d and DO copied", o, ednsSize)
	}
	r = ts.query("www.example.net.", mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(4096, false); m.IsEdns0().SetVersion(1) })
	if r.Rcode != mdns.RcodeBadVers || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 {
		t.Errorf("EDNS version 1 = %v, want BADVERS with OPT version 0", r)
	}

	// A big answer is truncated over plain UDP and whole over TCP.
	r = ts.query("big.example.net.", mdns.TypeTXT)
	if !r.Truncated {
		t.Errorf("600-byte TXT over 512-byte UDP not truncated")
	}
	c := &mdns.Client{Net: "tcp", Timeout: 2 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion("big.example.net.", mdns.TypeTXT)
	r, _, err := c.Exchange(m, ts.addr)
	if err != nil || r.Truncated || len(r.Answer) != 6 {
		t.Errorf("TXT over TCP = %v, %v; want 6 records untruncated", r, err)
	}
	r = ts.query("big.example.net.", mdns.TypeTXT, func(m *mdns.Msg) { m.SetEdns0(1232, false) })
	if r.Truncated || len(r.Answer) != 6 {
		t.Errorf("TXT with a 1232-byte buffer truncated: %v", r.Truncated)
	}

	// Other opcodes and classes.
	m = new(mdns.Msg)
	m.SetQuestion("www.example.net.", mdns.TypeA)
	m.Opcode = mdns.OpcodeStatus
	r, _, _ = (&mdns.Client{Timeout: 2 * time.Second}).Exchange(m, ts.addr)
	if r == nil || r.Rcode != mdns.RcodeNotImplemented {
		t.Errorf("STATUS opcode = %v, want NOTIMP", r)
	}
	r = ts.query("version.bind.", mdns.TypeTXT, func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS })
	if r.Rcode != mdns.RcodeRefused {
		t.Errorf("CHAOS query = %s, want REFUSED", mdns.RcodeToString[r.Rcode])
	}
}

func TestInsideClient(t *testing.T) {
	ts := startServer(t, "  inside: [lan, loop]\n"+zones+`  views:
    - name: inside
      match: {networks: [loop]}
      records:
        - {name: www.example.net, type: A, value: 192.168.1.10}
`)
	if r := ts.query("nas.home.arpa.", mdns.TypeA); answers(r) != "192.168.1.10" || r.RecursionAvailable {
		t.Errorf("inside zone for an inside client = %v (no upstreams: no RA)", r)
	}
	if r := ts.query("www.example.net.", mdns.TypeA); answers(r) != "192.168.1.10" {
		t.Errorf("view override = %v", r)
	}
	if r := ts.query("www.example.net.", mdns.TypeAAAA); len(r.Answer) != 0 || r.Rcode != mdns.RcodeSuccess {
		t.Errorf("AAAA of a view-owned name = %v, want NODATA (no leak)", r)
	}
	if r := ts.query("10.1.168.192.in-addr.arpa.", mdns.TypePTR); answers(r) != "nas.home.arpa. www.example.net." && answers(r) != "www.example.net. nas.home.arpa." {
		t.Errorf("PTR = %q", answers(r))
	}
}

func TestECS(t *testing.T) {
	ts := startServer(t, `  zones:
    - name: example.net
      records:
        - {name: www, type: A, value: 192.0.2.10}
        - {name: geo, type: A, value: 192.0.2.100, geo: [{networks: [198.51.100.0/24], value: 198.51.100.100}]}
`)
	ecs := func(prefix string, bits uint8) func(*mdns.Msg) {
		return func(m *mdns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: bits, Address: net.ParseIP(prefix).To4()})
		}
	}
	scope := func(r *mdns.Msg) int {
		for _, o := range r.IsEdns0().Option {
			if e, ok := o.(*mdns.EDNS0_SUBNET); ok {
				return int(e.SourceScope)
			}
		}
		return -1
	}
	r := ts.query("geo.example.net.", mdns.TypeA, ecs("198.51.100.0", 24))
	if answers(r) != "198.51.100.100" || scope(r) != 24 {
		t.Errorf("ECS 198.51.100.0/24 = %q scope %d, want the network's answer, scope 24", answers(r), scope(r))
	}
	r = ts.query("geo.example.net.", mdns.TypeA, ecs("203.0.113.0", 24))
	if answers(r) != "192.0.2.100" || scope(r) != 24 {
		t.Errorf("ECS 203.0.113.0/24 = %q scope %d, want the default, scope 24", answers(r), scope(r))
	}
	r = ts.query("www.example.net.", mdns.TypeA, ecs("203.0.113.0", 24))
	if scope(r) != 0 {
		t.Errorf("scope of a plain answer = %d, want 0", scope(r))
	}
	// No ECS: the source address decides (loopback: the default).
	if r := ts.query("geo.example.net.", mdns.TypeA); answers(r) != "192.0.2.100" {
		t.Errorf("geo without ECS = %q", answers(r))
	}
}

func TestReloadAndSerial(t *testing.T) {
	ts := startServer(t, zones)
	soa := func() uint32 {
		r := ts.query("example.net.", mdns.TypeSOA)
		return r.Answer[0].(*mdns.SOA).Serial
	}
	first := soa()
	if err := ts.reload(zones); err != nil {
		t.Fatal(err)
	}
	if got := soa(); got != first {
		t.Errorf("serial after a reload without change = %d, want %d", got, first)
	}
	changed := strings.Replace(zones, "192.0.2.10}", "192.0.2.11}", 1)
	if err := ts.reload(changed); err != nil {
		t.Fatal(err)
	}
	if r := ts.query("www.example.net.", mdns.TypeA); answers(r) != "192.0.2.11" {
		t.Errorf("after reload www = %q", answers(r))
	}
	if got := soa(); got <= first {
		t.Errorf("serial after a change = %d, want > %d", got, first)
	}
	// A broken zone file fails the config check, naming file and line;
	// one that breaks after the check fails the rebuild. Either way the
	// old zone keeps answering.
	bad := filepath.Join(ts.dir, "bad.zone")
	os.WriteFile(bad, []byte("$ORIGIN home.arpa.\nnas IN A 192.168.1.11\n"), 0o644)
	withFile := changed + "      file: " + bad + "\n"
	cfg := parseConfig(t, "  listen: [\""+ts.addr+"\"]\n"+withFile)
	os.WriteFile(bad, []byte("$ORIGIN home.arpa.\nnas IN A 300.0.0.1\n"), 0o644)
	if err := reloadNow(ts.srv, cfg); err == nil || !strings.Contains(err.Error(), "bad.zone") || !strings.Contains(err.Error(), "line: 2") {
		t.Errorf("reload with a broken zone file = %v, want an error naming the file and line", err)
	}
	if _, err := config.Parse([]byte("version: 1\ndns:\n  zones: [{name: home.arpa, file: "+bad+"}]\n"), "edge.yaml", "dns", DefaultConfig); err == nil || !strings.Contains(err.Error(), "dns.zones[0].file") {
		t.Errorf("config check of a broken zone file = %v, want dns.zones[0].file", err)
	}
	if r := ts.query("www.example.net.", mdns.TypeA); answers(r) != "192.0.2.11" {
		t.Errorf("after failed reload www = %q, want the old answer", answers(r))
	}
	port := freeUDPPort(t)
	if err := reloadNow(ts.srv, parseConfig(t, fmt.Sprintf("  listen: [\"127.0.0.1:%d\"]\n", port)+zones)); err == nil || !strings.Contains(err.Error(), "only on restart") {
		t.Errorf("reload with new listen = %v, want restart-only error", err)
	}
}

// reloadNow prepares cfg and commits it, as the runner does.
func reloadNow(s *Server, cfg *config.File[Config]) error {
	c, err := s.Prepare(cfg, daemon.Request{Reason: "test"})
	if err != nil {
		return err
	}
	c.Apply(0)
	return nil
}
