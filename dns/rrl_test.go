package dns

import (
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestRateLimits(t *testing.T) {
	ts := startServer(t, "  inside: [lan]\n"+zones+"  rrl: {responses_per_second: 5, errors_per_second: 2, window: 1s, slip: 2, queries_per_second: 1000}\n")
	// One UDP socket, a burst of questions, no retries: count what comes
	// back.
	burst := func(names []string) (answers, slips, silent int) {
		conn, err := net.Dial("udp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, name := range names {
			m := new(mdns.Msg)
			m.SetQuestion(name, mdns.TypeA)
			b, _ := m.Pack()
			conn.Write(b)
		}
		buf := make([]byte, 1500)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for range names {
			k, err := conn.Read(buf)
			if err != nil {
				silent++
				continue
			}
			var r mdns.Msg
			if r.Unpack(buf[:k]) != nil {
				t.Fatal("bad reply")
			}
			if r.Truncated && len(r.Answer) == 0 && len(r.Ns) == 0 {
				slips++
			} else {
				answers++
			}
		}
		return
	}
	same := make([]string, 20)
	for i := range same {
		same[i] = "www.example.net."
	}
	// A budget of 5 (plus what refills while a loaded machine schedules
	// the replies); the rest alternately slipped and dropped.
	a, s, d := burst(same)
	if a < 4 || a > 10 || s == 0 || d == 0 {
		t.Errorf("20 quick questions from outside: %d answered, %d slipped, %d dropped; want about 5 answered and the rest split", a, s, d)
	}
	// Errors share a budget per zone whatever the name.
	var random []string
	for i := range 8 {
		random = append(random, string(rune('a'+i))+"-nope.example.net.")
	}
	if a, _, _ := burst(random); a > 4 {
		t.Errorf("%d of 8 NXDOMAINs for random names answered, want about 2", a)
	}
	// TCP is never limited: that is where slipped clients go.
	c := &mdns.Client{Net: "tcp", Timeout: 2 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion("www.example.net.", mdns.TypeA)
	if r, _, err := c.Exchange(m, ts.addr); err != nil || answers(r) != "192.0.2.10" {
		t.Errorf("TCP while limited = %v, %v", r, err)
	}
}
