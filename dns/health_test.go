package dns

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestHealthCheckedAnswers(t *testing.T) {
	// Two backends on loopback addresses, same port.
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := a.Addr().(*net.TCPAddr).Port
	b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	defer a.Close()
	ts := startServer(t, fmt.Sprintf(`  zones:
    - name: example.net
      records:
        - {name: app, type: A, values: [127.0.0.1, 127.0.0.2], health: {type: tcp, port: %d, interval: 100ms, timeout: 50ms, rise: 1, fall: 1}}
`, port))
	get := func() string {
		r := ts.query("app.example.net.", mdns.TypeA)
		var out []string
		for _, rr := range r.Answer {
			out = append(out, rr.(*mdns.A).A.String())
		}
		return strings.Join(out, " ")
	}
	waitAnswer := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		got := ""
		for time.Now().Before(deadline) {
			if got = get(); got == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("answer = %q, want %q", got, want)
	}
	waitAnswer("127.0.0.1 127.0.0.2")
	b.Close()
	waitAnswer("127.0.0.1")
	b, err = net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitAnswer("127.0.0.1 127.0.0.2")
	// Every backend down: all are answered, rather than nothing.
	a.Close()
	b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		down := 0
		for _, st := range ts.srv.health.Status() {
			if !st.Up {
				down++
			}
		}
		if down == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checks did not see both backends down: %+v", ts.srv.health.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitAnswer("127.0.0.1 127.0.0.2")
}
