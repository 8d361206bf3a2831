package dns

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
)

const tsigSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="

const updatableZones = zones + `  updates:
    keys:
      - {name: edge-vpn, secret: "` + tsigSecret + `", zones: [home.arpa]}
      - {name: xfr, secret: "` + tsigSecret + `"}
  transfers:
    secondaries:
      - {address: "127.0.0.1:1", key: xfr, notify: false}
`

// api calls one of the server's admin routes in-process.
func (ts *testServer) api(method string, body any) (int, string) {
	ts.t.Helper()
	var route ctlsock.Route
	for _, r := range ts.srv.Routes() {
		if r.Method == method {
			route = r
		}
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, ctlapi.PathDNSRecords, rd)
	out, err := route.Handle(req)
	if err != nil {
		if ae, ok := err.(*ctlapi.Error); ok {
			return ae.Status, ae.Message
		}
		return 500, err.Error()
	}
	b, _ := json.Marshal(out)
	return 200, string(b)
}

func TestRecordsAPI(t *testing.T) {
	ts := startServer(t, updatableZones)
	serial := func() uint32 { return ts.query("example.net.", mdns.TypeSOA).Answer[0].(*mdns.SOA).Serial }
	before := serial()

	code, body := ts.api("POST", ctlapi.DNSRecordChange{Name: "api.example.net", Type: "A", Value: "192.0.2.77", TTL: 60})
	if code != 200 {
		t.Fatalf("add = %d %s", code, body)
	}
	if r := ts.query("api.example.net.", mdns.TypeA); answers(r) != "192.0.2.77" || r.Answer[0].Header().Ttl != 60 {
		t.Errorf("added record = %v", r)
	}
	if serial() <= before {
		t.Errorf("serial did not grow after an add")
	}
	tests := []struct {
		name   string
		method string
		body   ctlapi.DNSRecordChange
		code   int
		msg    string
	}{
		{"config name", "POST", ctlapi.DNSRecordChange{Name: "www.example.net", Type: "A", Value: "192.0.2.9"}, 409, "www.example.net. A is declared in the config (edge.yaml:13); change it there"},
		{"outside zones", "POST", ctlapi.DNSRecordChange{Name: "www.other.org", Type: "A", Value: "192.0.2.9"}, 422, "www.other.org. is in no zone served here; zones: example.net., home.arpa."},
		{"bad value", "POST", ctlapi.DNSRecordChange{Name: "x.example.net", Type: "A", Value: "nope"}, 400, `invalid A value "nope"`},
		{"bad type", "POST", ctlapi.DNSRecordChange{Name: "x.example.net", Type: "WKS", Value: "x"}, 400, `unknown type "WKS"`},
		{"missing", "POST", ctlapi.DNSRecordChange{Name: "x.example.net"}, 400, "name, type and value are required"},
		{"remove config name", "DELETE", ctlapi.DNSRecordChange{Name: "www.example.net", Type: "A"}, 409, "declared in the config"},
		{"remove nothing", "DELETE", ctlapi.DNSRecordChange{Name: "zzz.example.net"}, 404, "no run-time record matches"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := ts.api(tc.method, tc.body)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s %+v = %d %q, want %d %q", tc.method, tc.body, code, msg, tc.code, tc.msg)
			}
		})
	}
	code, body = ts.api("GET", nil)
	if code != 200 || !strings.Contains(body, `"name":"api.example.net.","type":"A","ttl":60,"value":"192.0.2.77","zone":"example.net.","source":"dynamic"`) {
		t.Errorf("list = %d %s", code, body)
	}

	// Records survive a restart of the service.
	ts.stop()
	ts2 := restart(t, ts, updatableZones)
	if r := ts2.query("api.example.net.", mdns.TypeA); answers(r) != "192.0.2.77" {
		t.Errorf("after restart = %v", r)
	}
	code, body = ts2.api("DELETE", ctlapi.DNSRecordChange{Name: "api.example.net", Type: "A", Value: "192.0.2.77"})
	if code != 200 {
		t.Fatalf("remove = %d %s", code, body)
	}
	if r := ts2.query("api.example.net.", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Errorf("after remove = %v, want NXDOMAIN", r)
	}
}

// restart starts a new server on the same state directory and address.
func restart(t *testing.T, old *testServer, section string) *testServer {
	t.Helper()
	cfg := parseConfig(t, "  listen: [\""+old.addr+"\"]\n"+section)
	svc, err := New(envFor(old), cfg)
	if err != nil {
		t.Fatalf("New after restart: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, srv: svc.(*Server), addr: old.addr, dir: old.dir, cancel: cancel, done: make(chan error, 1), reg: old.reg}
	go func() { ts.done <- svc.Run(ctx) }()
	<-ts.srv.Ready()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) update(key string, build func(m *mdns.Msg)) *mdns.Msg {
	ts.t.Helper()
	m := new(mdns.Msg)
	m.SetUpdate("home.arpa.")
	build(m)
	c := &mdns.Client{Net: "tcp", Timeout: 2 * time.Second}
	if key != "" {
		m.SetTsig(key, mdns.HmacSHA256, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{key: tsigSecret}
		if key == "wrong." {
			c.TsigSecret[key] = "d3Jvbmctd3Jvbmctd3Jvbmc="
		}
	}
	r, _, err := c.Exchange(m, ts.addr)
	if err != nil && r == nil {
		ts.t.Fatalf("update: %v", err)
	}
	return r
}

func rr(s string) mdns.RR {
	r, err := mdns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

func TestUpdate(t *testing.T) {
	ts := startServer(t, "  inside: [loop]\n"+updatableZones)
	r := ts.update("edge-vpn.", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("laptop.vpn.home.arpa. 60 IN A 10.100.0.2")}) })
	if r.Rcode != mdns.RcodeSuccess {
		t.Fatalf("update = %s", mdns.RcodeToString[r.Rcode])
	}
	if r := ts.query("laptop.vpn.home.arpa.", mdns.TypeA); answers(r) != "10.100.0.2" {
		t.Errorf("after update = %v", r)
	}
	tests := []struct {
		name  string
		key   string
		build func(m *mdns.Msg)
		rcode int
	}{
		{"unsigned", "", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("x.home.arpa. 60 IN A 10.0.0.1")}) }, mdns.RcodeRefused},
		{"wrong secret", "wrong.", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("x.home.arpa. 60 IN A 10.0.0.1")}) }, mdns.RcodeNotAuth},
		{"key without zones", "xfr.", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("x.home.arpa. 60 IN A 10.0.0.1")}) }, mdns.RcodeRefused},
		{"config name", "edge-vpn.", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("nas.home.arpa. 60 IN A 10.0.0.1")}) }, mdns.RcodeRefused},
		{"outside zone", "edge-vpn.", func(m *mdns.Msg) { m.Insert([]mdns.RR{rr("x.example.net. 60 IN A 10.0.0.1")}) }, mdns.RcodeNotZone},
		{"prereq name not in use fails", "edge-vpn.", func(m *mdns.Msg) {
			m.NameNotUsed([]mdns.RR{rr("laptop.vpn.home.arpa. 0 IN A 0.0.0.0")})
			m.Insert([]mdns.RR{rr("laptop.vpn.home.arpa. 60 IN A 10.100.0.3")})
		}, mdns.RcodeYXDomain},
		{"prereq rrset exists", "edge-vpn.", func(m *mdns.Msg) {
			m.RRsetUsed([]mdns.RR{rr("phone.vpn.home.arpa. 0 IN A 0.0.0.0")})
		}, mdns.RcodeNXRrset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := ts.update(tc.key, tc.build); r.Rcode != tc.rcode {
				t.Errorf("update = %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tc.rcode])
			}
		})
	}
	if r := ts.query("laptop.vpn.home.arpa.", mdns.TypeA); answers(r) != "10.100.0.2" {
		t.Errorf("refused updates changed data: %v", r)
	}
	// Replace the address (delete RRset, add) in one update, and the PTR
	// follows.
	r = ts.update("edge-vpn.", func(m *mdns.Msg) {
		m.RemoveRRset([]mdns.RR{rr("laptop.vpn.home.arpa. 0 IN A 0.0.0.0")})
		m.Insert([]mdns.RR{rr("laptop.vpn.home.arpa. 60 IN A 192.168.1.50")})
	})
	if r.Rcode != mdns.RcodeSuccess {
		t.Fatalf("replace = %s", mdns.RcodeToString[r.Rcode])
	}
	if r := ts.query("laptop.vpn.home.arpa.", mdns.TypeA); answers(r) != "192.168.1.50" {
		t.Errorf("after replace = %v", r)
	}
	// Remove the name.
	r = ts.update("edge-vpn.", func(m *mdns.Msg) { m.RemoveName([]mdns.RR{rr("laptop.vpn.home.arpa. 0 IN ANY")}) })
	if r.Rcode != mdns.RcodeSuccess {
		t.Fatalf("remove name = %s", mdns.RcodeToString[r.Rcode])
	}
	if r := ts.query("laptop.vpn.home.arpa.", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Errorf("after remove = %v, want NXDOMAIN", r)
	}
}

func TestTransfers(t *testing.T) {
	ts := startServer(t, updatableZones)
	xfer := func(qtype uint16, serial uint32, key string) ([]mdns.RR, error) {
		m := new(mdns.Msg)
		if qtype == mdns.TypeIXFR {
			m.SetIxfr("example.net.", serial, "ns1.example.net.", "hostmaster.example.net.")
		} else {
			m.SetAxfr("example.net.")
		}
		tr := &mdns.Transfer{}
		if key != "" {
			m.SetTsig(key, mdns.HmacSHA256, 300, time.Now().Unix())
			tr.TsigSecret = map[string]string{key: tsigSecret}
		}
		ch, err := tr.In(m, ts.addr)
		if err != nil {
			return nil, err
		}
		var out []mdns.RR
		for env := range ch {
			if env.Error != nil {
				return out, env.Error
			}
			out = append(out, env.RR...)
		}
		return out, nil
	}
	rrs, err := xfer(mdns.TypeAXFR, 0, "xfr.")
	if err != nil || len(rrs) < 5 || rrs[0].Header().Rrtype != mdns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != mdns.TypeSOA {
		t.Fatalf("AXFR = %d records, %v", len(rrs), err)
	}
	first := rrs[0].(*mdns.SOA).Serial
	if _, err := xfer(mdns.TypeAXFR, 0, ""); err == nil {
		t.Errorf("unsigned AXFR succeeded")
	}
	if _, err := xfer(mdns.TypeAXFR, 0, "edge-vpn."); err == nil {
		t.Errorf("AXFR with a key that is no secondary's succeeded")
	}

	// A change, then IXFR from the first serial gives just the difference.
	time.Sleep(1100 * time.Millisecond) // serials follow the clock
	if code, body := ts.api("POST", ctlapi.DNSRecordChange{Name: "new.example.net", Type: "A", Value: "192.0.2.200"}); code != 200 {
		t.Fatalf("add = %d %s", code, body)
	}
	rrs, err = xfer(mdns.TypeIXFR, first, "xfr.")
	if err != nil {
		t.Fatalf("IXFR: %v", err)
	}
	var got []string
	for _, r := range rrs {
		got = append(got, r.Header().Name+" "+mdns.TypeToString[r.Header().Rrtype])
	}
	want := "example.net. SOA|example.net. SOA|example.net. SOA|new.example.net. A|example.net. SOA"
	if strings.Join(got, "|") != want {
		t.Errorf("IXFR = %s, want %s", strings.Join(got, "|"), want)
	}
	// Up to date: one SOA.
	cur := rrs[0].(*mdns.SOA).Serial
	if rrs, err = xfer(mdns.TypeIXFR, cur, "xfr."); err != nil || len(rrs) != 1 {
		t.Errorf("IXFR when current = %d records, %v; want 1 SOA", len(rrs), err)
	}
	// Unknown serial: a full transfer.
	if rrs, err = xfer(mdns.TypeIXFR, 12345, "xfr."); err != nil || len(rrs) < 5 {
		t.Errorf("IXFR from an unknown serial = %d records, %v; want the whole zone", len(rrs), err)
	}
}

// TestRecordSources: record ls says where each record comes from; the
// PTR made from a run-time record is the run time's, not the config's.
func TestRecordSources(t *testing.T) {
	ts := startServer(t, updatableZones)
	if code, body := ts.api("POST", ctlapi.DNSRecordChange{Name: "printer.home.arpa", Type: "A", Value: "192.168.1.20"}); code != 200 {
		t.Fatalf("add = %d %s", code, body)
	}
	code, body := ts.api("GET", nil)
	if code != 200 {
		t.Fatalf("list = %d %s", code, body)
	}
	var recs []ctlapi.DNSRecord
	if err := json.Unmarshal([]byte(body), &recs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"printer.home.arpa. A":           "dynamic",
		"20.1.168.192.in-addr.arpa. PTR": "dynamic",
		"10.1.168.192.in-addr.arpa. PTR": "config",
		"nas.home.arpa. A":               "config",
	}
	for _, r := range recs {
		if w, ok := want[r.Name+" "+r.Type]; ok {
			if r.Source != w {
				t.Errorf("%s %s source = %s, want %s", r.Name, r.Type, r.Source, w)
			}
			delete(want, r.Name+" "+r.Type)
		}
	}
	if len(want) > 0 {
		t.Errorf("record ls lacks %v", want)
	}
}
