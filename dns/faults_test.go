package dns

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/daemon/daemontest"
	"github.com/homeedge/edge/internal/textdiff"
)

// faultLab is edge-dns run by the real runner (daemontest) on a loopback
// port, IPv4 and IPv6, with what a changed config adds at hand: GeoIP
// files, an upstream, a TSIG key file, a query log path and a backend
// for a health check.
type faultLab struct {
	t    *testing.T
	port int
	dir  string
	// srv is the Server the runner runs, once New succeeded.
	srv      atomic.Pointer[Server]
	country  string
	asn      string
	upstream string
	keyFile  string
	queryLog string
	backend  int
	// quiet leaves out the question the resolver answers, whose cache
	// counters are in the status.
	quiet bool
}

func newFaultLab(t *testing.T) *faultLab {
	t.Helper()
	l := &faultLab{t: t, port: freeDualPort(t), dir: t.TempDir()}
	l.country, l.asn = writeGeo(t, l.dir, "DE")
	l.upstream = startUpstream(t).addr
	l.keyFile = filepath.Join(l.dir, "edge-vpn.key")
	if err := os.WriteFile(l.keyFile, []byte("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.queryLog = filepath.Join(l.dir, "queries.jsonl")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	l.backend = ln.Addr().(*net.TCPAddr).Port
	return l
}

// freeDualPort is a port free for UDP and TCP on 127.0.0.1 and ::1.
func freeDualPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		port := freeUDPPort(t)
		var closers []func() error
		ok := true
		for _, try := range []func() (func() error, error){
			func() (func() error, error) {
				c, err := net.ListenPacket("udp6", fmt.Sprintf("[::1]:%d", port))
				return closeOf(c, err)
			},
			func() (func() error, error) {
				c, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", port))
				return closeOf(c, err)
			},
		} {
			c, err := try()
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, c)
		}
		for _, c := range closers {
			c()
		}
		if ok {
			return port
		}
	}
	t.Skip("no port free on both 127.0.0.1 and ::1")
	return 0
}

func closeOf[C interface{ Close() error }](c C, err error) (func() error, error) {
	if err != nil {
		return nil, err
	}
	return c.Close, nil
}

// spec is edge-dns's spec, keeping the Server New made.
func (l *faultLab) spec() daemon.Spec[Config] {
	return daemon.Spec[Config]{Name: "dns", Defaults: DefaultConfig, New: func(env daemon.Env, cfg *config.File[Config]) (daemon.Service[Config], error) {
		svc, err := New(env, cfg)
		if err == nil {
			l.srv.Store(svc.(*Server))
		}
		return svc, err
	}}
}

const faultSite = `site:
  domain: example.net
  local_domain: home.arpa
  networks:
    loop: [127.0.0.0/8, "::1/128"]
`

// first is the config started with: one zone, nothing else.
func (l *faultLab) first() string {
	return faultSite + fmt.Sprintf(`dns:
  metrics: {listen: off}
  listen: ["127.0.0.1:%d", "[::1]:%d"]
  zones:
    - name: example.net
      records:
        - {name: www, type: A, value: 192.0.2.10}
        - {name: geo, type: A, value: 192.0.2.80, geo: [{country: [DE], value: 192.0.2.81}]}
`, l.port, l.port)
}

// second changes the zone and adds every part a reload prepares: GeoIP
// databases, a resolver, a TSIG key read from a file, a query log and a
// health-checked record.
func (l *faultLab) second() string {
	return faultSite + fmt.Sprintf(`dns:
  metrics: {listen: off}
  listen: ["127.0.0.1:%d", "[::1]:%d"]
  geoip: {country: %s, asn: %s}
  upstreams: {servers: [{address: %q}], timeout: 500ms}
  updates:
    keys: [{name: edge-vpn, secret_file: %s, zones: [example.net]}]
  query_log: {path: %s, sample: 1}
  zones:
    - name: example.net
      records:
        - {name: www, type: A, value: 192.0.2.11}
        - {name: geo, type: A, value: 192.0.2.80, geo: [{country: [DE], value: 192.0.2.81}]}
        - {name: app, type: A, value: 127.0.0.1, health: {type: tcp, port: %d, interval: 1h}}
`, l.port, l.port, l.country, l.asn, l.upstream, l.keyFile, l.queryLog, l.backend)
}

// sockets are the listening sockets of /proc/net/{tcp,tcp6,udp,udp6} on
// the lab's port: local address, state and inode, so a socket closed and
// opened again shows too.
func (l *faultLab) sockets() string {
	var out []string
	hexPort := fmt.Sprintf(":%04X", l.port)
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile("/proc/net/" + proto)
		if err != nil {
			l.t.Skipf("no /proc/net/%s: %v", proto, err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 10 || !strings.HasSuffix(f[1], hexPort) {
				continue
			}
			// Listening only: LISTEN for TCP, unconnected for UDP (the
			// queries' own connections come and go).
			if strings.HasPrefix(proto, "tcp") && f[3] != "0A" || strings.HasPrefix(proto, "udp") && f[3] != "07" {
				continue
			}
			out = append(out, fmt.Sprintf("%s %s state %s inode %s", proto, f[1], f[3], f[9]))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// files are the process's open files in the lab's directory or named
// state.db, and whether the query log exists.
func (l *faultLab) files() string {
	var out []string
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && (strings.HasPrefix(target, l.dir) || strings.HasSuffix(target, "/state.db")) {
			out = append(out, "open "+target)
		}
	}
	slices.Sort(out)
	_, err := os.Stat(l.queryLog)
	out = append(out, fmt.Sprintf("query log exists: %v", err == nil))
	return strings.Join(out, "\n")
}

// storeDump is every key of the state store with its revisions and
// value, and a hash of the file.
func (l *faultLab) storeDump(stateDir string) string {
	s := l.srv.Load()
	kvs, rev, err := s.store.List(context.Background(), "")
	if err != nil {
		l.t.Fatalf("list store: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "revision %d\n", rev)
	for _, kv := range kvs {
		fmt.Fprintf(&b, "%s create=%d mod=%d version=%d %s\n", kv.Key, kv.CreateRev, kv.ModRev, kv.Version, kv.Value)
	}
	file, err := os.ReadFile(filepath.Join(stateDir, "state.db"))
	if err != nil {
		l.t.Fatal(err)
	}
	fmt.Fprintf(&b, "state.db sha256 %x\n", sha256.Sum256(file))
	return b.String()
}

// gauges are the metrics a prepare must not move: what is served, the
// databases, checks and upstreams in use.
func (l *faultLab) gauges() string {
	mfs, err := l.srv.Load().registry.(prometheus.Gatherer).Gather()
	if err != nil {
		l.t.Fatal(err)
	}
	keep := []string{"edge_dns_zones", "edge_dns_zone_serial", "edge_dns_geoip_build_epoch_seconds", "edge_dns_health_up", "edge_dns_upstream_up", "edge_dns_cache_entries"}
	var out []string
	for _, mf := range mfs {
		if !slices.Contains(keep, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			v := m.GetGauge().GetValue()
			out = append(out, fmt.Sprintf("%s{%s} %v", mf.GetName(), strings.Join(labels, ","), v))
		}
	}
	return strings.Join(out, "\n")
}

// answers asks a fixed set of questions over UDP on IPv4 and TCP on
// IPv6, as dig would.
func (l *faultLab) answers() string {
	type question struct {
		name  string
		qtype uint16
		ecs   string
	}
	questions := []question{
		{"example.net.", mdns.TypeSOA, ""},
		{"www.example.net.", mdns.TypeA, ""},
		{"app.example.net.", mdns.TypeA, ""},
		{"geo.example.net.", mdns.TypeA, "198.51.100.0"},
		{"www.other.org.", mdns.TypeA, ""},
	}
	var b strings.Builder
	for _, network := range []string{"udp", "tcp"} {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port))
		if network == "tcp" {
			addr = net.JoinHostPort("::1", strconv.Itoa(l.port))
		}
		c := &mdns.Client{Net: network, Timeout: 2 * time.Second}
		for _, q := range questions {
			if l.quiet && q.name == "www.other.org." {
				continue
			}
			m := new(mdns.Msg)
			m.SetQuestion(q.name, q.qtype)
			m.RecursionDesired = true
			if q.ecs != "" {
				m.SetEdns0(1232, false)
				m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP(q.ecs).To4()})
			}
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				fmt.Fprintf(&b, "%s %s %s: %v\n", network, q.name, mdns.TypeToString[q.qtype], err)
				continue
			}
			fmt.Fprintf(&b, "%s %s %s: %s", network, q.name, mdns.TypeToString[q.qtype], mdns.RcodeToString[r.Rcode])
			for _, rr := range r.Answer {
				fmt.Fprintf(&b, " | %s", strings.TrimPrefix(rr.String(), rr.Header().String()))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// TestReloadFaults fails each step of a reload's prepare in turn, and of
// a record change: the listeners, the state store (to the byte), the
// answers, the open files, the gauges and the status stay as they were.
// The reload that passes every step is then live, as the runner's
// generation.
func TestReloadFaults(t *testing.T) {
	l := newFaultLab(t)
	d := daemontest.Start(t, l.spec(), l.first())
	// A run-time record, so there are records to read.
	if _, err := d.Client.Do(context.Background(), http.MethodPost, ctlapi.PathDNSRecords, ctlapi.DNSRecordChange{Name: "dyn.example.net", Type: "A", Value: "192.0.2.20"}, nil); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		return strings.Join([]string{l.sockets(), l.storeDump(d.StateDir()), l.answers(), l.files(), l.gauges()}, "\n---\n")
	}
	before := l.answers()
	for _, want := range []string{"www.example.net. A: NOERROR | 192.0.2.10", "geo.example.net. A: NOERROR | 192.0.2.80", "www.other.org. A: REFUSED"} {
		if !strings.Contains(before, want) {
			t.Fatalf("answers of the first config lack %q:\n%s", want, before)
		}
	}

	d.WriteConfig(l.second())
	steps := d.EachReloadFault(snapshot)
	want := []string{"check restart-only settings", "read records", "read serials", "open geoip", "open resolver", "build zones", "read tsig keys", "open query log"}
	if !slices.Equal(steps, want) {
		t.Errorf("reload steps = %q, want %q", steps, want)
	}
	after := l.answers()
	for _, want := range []string{"www.example.net. A: NOERROR | 192.0.2.11", "geo.example.net. A: NOERROR | 192.0.2.81", "www.other.org. A: NOERROR | 203.0.113.7", "app.example.net. A: NOERROR | 127.0.0.1"} {
		if !strings.Contains(after, want) {
			t.Errorf("answers after the reload lack %q:\n%s", want, after)
		}
	}
	var st ctlapi.DNSStatus
	d.Detail(&st)
	if run := d.Status().Config.Generation; run != 2 || st.Generation != run {
		t.Errorf("after the reload: runner generation %d, service generation %d; want 2 and 2", run, st.Generation)
	}

	// A record change: every step failing in turn changes nothing either.
	l.quiet = true
	after = l.answers()
	add := func() error {
		return doRecord(d, http.MethodPost, ctlapi.DNSRecordChange{Name: "new.example.net", Type: "A", Value: "192.0.2.21"})
	}
	before, beforeStatus := snapshot(), d.StatusText()
	steps = nil
	for n := 0; ; n++ {
		if n > 20 {
			t.Fatalf("more than 20 record change steps: %q", steps)
		}
		d.Faults.FailNth(n)
		err := add()
		if err == nil {
			break
		}
		seen := d.Faults.Seen()
		if !strings.Contains(err.Error(), "injected failure at step") || len(seen) != n+1 {
			t.Fatalf("record change failing at step %d failed otherwise: %v (steps %q)", n, err, seen)
		}
		steps = append(steps, seen[n])
		if diff := textDiff(before, snapshot()); diff != "" {
			t.Errorf("a record change failing at step %q changed the state:\n%s", seen[n], diff)
		}
		if diff := textDiff(beforeStatus, d.StatusText()); diff != "" {
			t.Errorf("a record change failing at step %q changed the status:\n%s", seen[n], diff)
		}
	}
	d.Faults.FailAt("")
	if want := []string{"read records", "read serials", "build zones", "read tsig keys", "store records"}; !slices.Equal(steps, want) {
		t.Errorf("record change steps = %q, want %q", steps, want)
	}
	if got := l.answers(); got == after {
		t.Errorf("the record change that passed every step changed no answer (the SOA serial at least)")
	}

	// The listeners, the TCP limits and a confirmation are refused by
	// the prepare, before anything is opened.
	second := l.second()
	for _, tc := range []struct{ name, from, to, want string }{
		{"listen", fmt.Sprintf(`"[::1]:%d"`, l.port), `"[::1]:1"`, "dns.listen: the listeners change only on restart"},
		{"limits", "  metrics: {listen: off}\n", "  metrics: {listen: off}\n  limits: {tcp_connections: 10}\n", "dns.limits: the TCP limits"},
	} {
		before := snapshot()
		d.WriteConfig(strings.Replace(second, tc.from, tc.to, 1))
		if _, err := d.Reload(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("reload changing %s = %v, want an error saying %q", tc.name, err, tc.want)
		}
		if diff := textDiff(before, snapshot()); diff != "" {
			t.Errorf("a reload refused for %s changed the state:\n%s", tc.name, diff)
		}
	}
}

// doRecord changes a run-time record through the admin API.
func doRecord(d *daemontest.Daemon, method string, c ctlapi.DNSRecordChange) error {
	_, err := d.Client.Do(context.Background(), method, ctlapi.PathDNSRecords, c, nil)
	return err
}

// TestStartFaults fails each step of New in turn: a failed start leaves
// no socket bound and no file open (the GeoIP databases, the query log,
// the state store) and no query log it created.
func TestStartFaults(t *testing.T) {
	l := newFaultLab(t)
	snapshot := func() string { return l.sockets() + "\n---\n" + l.files() }
	d, steps := daemontest.EachStartFault(t, l.spec(), l.second(), snapshot)
	addr4, addr6 := fmt.Sprintf("127.0.0.1:%d", l.port), fmt.Sprintf("[::1]:%d", l.port)
	want := []string{"open store", "check restart-only settings", "read records", "read serials", "open geoip", "open resolver", "build zones", "read tsig keys", "open query log",
		"listen udp " + addr4, "listen tcp " + addr4, "listen udp " + addr6, "listen tcp " + addr6}
	if !slices.Equal(steps, want) {
		t.Errorf("start steps = %q, want %q", steps, want)
	}
	if got := l.answers(); !strings.Contains(got, "www.example.net. A: NOERROR | 192.0.2.11") {
		t.Errorf("after the start that passed every step: %s", got)
	}
	var st ctlapi.DNSStatus
	d.Detail(&st)
	if run := d.Status().Config.Generation; run != 1 || st.Generation != 1 {
		t.Errorf("after the start: runner generation %d, service generation %d; want 1 and 1", run, st.Generation)
	}
}

// textDiff is a unified diff of a and b, empty when they are equal.
func textDiff(a, b string) string {
	if a == b {
		return ""
	}
	return textdiff.Unified("before", "after", textdiff.SplitLines(a), textdiff.SplitLines(b), 3, 1000)
}
