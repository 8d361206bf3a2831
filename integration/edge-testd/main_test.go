package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/daemon/daemontest"
)

// listening is the TCP sockets in LISTEN state on port (hex, as
// /proc/net/tcp writes it), which a failed start or reload must leave as
// they were. Other ports are left out: tests of other packages bind and
// close theirs meanwhile.
func listening(t *testing.T, port string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	var out string
	for i, line := range splitLines(string(b)) {
		var sl, local, remote, state string
		if i == 0 || len(line) == 0 {
			continue
		}
		fmt.Sscan(line, &sl, &local, &remote, &state)
		if state == "0A" && strings.HasSuffix(local, ":"+port) {
			out += local + "\n"
		}
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestFaults fails each step of the start and of a reload in turn: a
// failed start leaves no listener, a failed reload changes neither the
// listeners nor the status, and the commit is told the runner's
// generation.
func TestFaults(t *testing.T) {
	listen := freeAddr(t)
	body := func(greeting string) string {
		return fmt.Sprintf("testd:\n  metrics: {listen: off}\n  listen: %q\n  greeting: %s\n", listen, greeting)
	}
	_, p, _ := net.SplitHostPort(listen)
	n, _ := strconv.Atoi(p)
	port := fmt.Sprintf("%04X", n)
	snapshot := func() string { return listening(t, port) }
	d, steps := daemontest.EachStartFault(t, spec, body("one"), snapshot)
	if len(steps) != 3 {
		t.Errorf("start steps = %q, want listen, check listen, build", steps)
	}
	d.WriteConfig(body("two"))
	steps = d.EachReloadFault(snapshot)
	if len(steps) != 2 {
		t.Errorf("reload steps = %q, want check listen, build", steps)
	}
	var st struct {
		Greeting   string
		Generation int64
	}
	d.Detail(&st)
	if run := d.Status().Config.Generation; st.Greeting != "two" || st.Generation != 2 || run != 2 {
		t.Errorf("after the reload: greeting %q, service generation %d, runner generation %d; want two, 2, 2", st.Greeting, st.Generation, run)
	}
}
