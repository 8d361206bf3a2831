package dns

import (
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestRateLimits(t *testing.T) {
	ts := startServer(t, "  inside: [lan]\n"+zones+"  rrl: {responses_per_second: 5, errors_per_second: 2, window: 1s, slip: 2, queries_per_second: 1000}\n")
	// One UDP socket, many questions, no retries: count what comes back.
	ask := func(name string, n int) (answers, slips, silent int) {
		conn, err := net.Dial("udp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		b, _ := m.Pack()
		buf := make([]byte, 1500)
		for range n {
			conn.Write(b)
		}
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for range n {
			k, err := conn.Read(buf)
			if err != nil {
				silent++
				continue
			}
			var r mdns.Msg
			if r.Unpack(buf[:k]) != nil {
				t.Fatal("bad reply")
			}
			if r.Truncated && len(r.Answer) == 0 {
				slips++
			} else {
				answers++
			}
		}
		return
	}
	a, s, d := ask("www.example.net.", 20)
	if a < 5 || a > 7 || s == 0 || d == 0 {
		t.Errorf("20 quick questions from outside: %d answered, %d slipped, %d dropped; want about 5 answered and the rest split", a, s, d)
	}
	// Errors share a budget per zone whatever the name.
	errs := 0
	for i := range 8 {
		if a, _, _ := ask(string(rune('a'+i))+"-nope.example.net.", 1); a == 1 {
			errs++
		}
	}
	if errs > 3 {
		t.Errorf("%d of 8 NXDOMAINs for random names answered, want about 2", errs)
	}
	// TCP is never limited: that is where slipped clients go.
	c := &mdns.Client{Net: "tcp", Timeout: 2 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion("www.example.net.", mdns.TypeA)
	if r, _, err := c.Exchange(m, ts.addr); err != nil || answers(r) != "192.0.2.10" {
		t.Errorf("TCP while limited = %v, %v", r, err)
	}
}
