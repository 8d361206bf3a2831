package dns

import (
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// dialFrom opens a TCP connection to addr from the loopback address src
// (every 127/8 address is the machine's own), so that one test can be
// several clients.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tcpQuery asks over a new connection from src and fails the test unless
// an answer comes within 2s.
func tcpQuery(t *testing.T, src, addr string) {
	t.Helper()
	co := &mdns.Conn{Conn: dialFrom(t, src, addr)}
	co.SetDeadline(time.Now().Add(2 * time.Second))
	m := new(mdns.Msg).SetQuestion("www.example.net.", mdns.TypeA)
	if err := co.WriteMsg(m); err != nil {
		t.Fatalf("query from %s: %v", src, err)
	}
	r, err := co.ReadMsg()
	if err != nil || r.Rcode != mdns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("query from %s over TCP: %v, %v; want an answer within 2s", src, r, err)
	}
}

// TestTCPOneClientCannotStarveOthers: one address holding idle
// connections, more than its share or every slot, does not keep another
// client's TCP query (a TC retry, AXFR, UPDATE) from being answered.
func TestTCPOneClientCannotStarveOthers(t *testing.T) {
	tests := []struct {
		name    string
		limits  string
		hostile int
	}{
		{"over its share", "  limits: {tcp_connections: 64, tcp_per_client: 4, tcp_idle: 30s}\n", 40},
		{"every slot taken", "  limits: {tcp_connections: 8, tcp_per_client: 8, tcp_idle: 30s}\n", 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, zones+tc.limits)
			for range tc.hostile {
				dialFrom(t, "127.0.0.2", ts.addr)
			}
			time.Sleep(50 * time.Millisecond) // let the server accept them
			tcpQuery(t, "127.0.0.3", ts.addr)
			tcpQuery(t, "127.0.0.4", ts.addr)
			refused := counterValue(t, ts, "edge_dns_tcp_refused_total")
			evicted := counterValue(t, ts, "edge_dns_tcp_evicted_total")
			if refused+evicted == 0 {
				t.Errorf("no TCP connection refused or evicted; the gate did nothing")
			}
		})
	}
}

// counterValue sums a counter's series in the server's registry.
func counterValue(t *testing.T, ts *testServer, name string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
