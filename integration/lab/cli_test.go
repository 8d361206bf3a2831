package lab

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestMainUsage(t *testing.T) {
	tests := []struct {
		args   []string
		status int
		stderr string
	}{
		{nil, 2, "usage: edge-lab"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"up", "extra"}, 2, "up takes no arguments"},
		{[]string{"up", "-nosuch"}, 2, "flag provided but not defined: -nosuch"},
		{[]string{"ls", "x"}, 2, "ls takes no arguments"},
		{[]string{"down", "not-an-id"}, 2, `"not-an-id" is not a run id`},
		{[]string{"exec"}, 2, "exec needs a node and a command"},
		{[]string{"exec", "client"}, 2, "exec needs a node and a command"},
		{[]string{"exec", "client", "--"}, 2, "exec needs a node and a command"},
		{[]string{"exec", "-lab", "xyz", "client", "--", "true"}, 2, `-lab "xyz" is not a run id`},
		{[]string{"clean", "x"}, 2, "clean takes no arguments"},
		{[]string{"help"}, 0, ""},
		{[]string{"down", "-h"}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			c := &cli{state: fakeState(t, nil), now: time.Now, stdout: &stdout, stderr: &stderr}
			status := c.main(context.Background(), tc.args)
			if status != tc.status || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("main(%q) = %d, stderr %q; want %d, stderr containing %q", tc.args, status, stderr.String(), tc.status, tc.stderr)
			}
			if tc.status == 0 && !strings.Contains(stdout.String(), "usage: edge-lab") {
				t.Errorf("main(%q) printed no usage on stdout", tc.args)
			}
		})
	}
}

func TestLs(t *testing.T) {
	st := fakeState(t, map[int]uint64{100: 5})
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, m := range []*marker{
		{RunID: "aaaaaa", Nodes: []string{"a", "b"}, OwnerPID: 100, OwnerStart: 5, Started: started, LogDir: "/tmp/edge-lab-aaaaaa"},
		{RunID: "bbbbbb", Nodes: []string{"a"}, OwnerPID: 300, Started: started.Add(time.Hour), LogDir: "/tmp/edge-lab-bbbbbb"},
		{RunID: "cccccc", Nodes: []string{"a"}, OwnerPID: 0, Started: started, LogDir: "/tmp/edge-lab-cccccc"},
	} {
		if err := st.writeMarker(m); err != nil {
			t.Fatal(err)
		}
	}
	addNamespaces(t, st, "edge-aaaaaa-a", "edge-aaaaaa-b", "edge-cccccc-a", "edge-121212-a")

	var stdout, stderr bytes.Buffer
	c := &cli{state: st, now: func() time.Time { return started.Add(90 * time.Minute) }, stdout: &stdout, stderr: &stderr}
	if status := c.main(context.Background(), []string{"ls"}); status != 0 {
		t.Fatalf("ls = %d, stderr %s", status, stderr.String())
	}
	golden(t, "ls.golden", stdout.Bytes())
}

func TestExecPicksLab(t *testing.T) {
	st := fakeState(t, nil)
	var stdout, stderr bytes.Buffer
	c := &cli{state: st, now: time.Now, stdout: &stdout, stderr: &stderr}

	if status := c.main(context.Background(), []string{"exec", "client", "--", "true"}); status != 1 ||
		!strings.Contains(stderr.String(), "no persistent lab") {
		t.Errorf("exec without labs = %d, stderr %q; want 1, no persistent lab", status, stderr.String())
	}

	for _, id := range []string{"aaaaaa", "bbbbbb"} {
		if err := st.writeMarker(&marker{RunID: id, Nodes: []string{"client"}}); err != nil {
			t.Fatal(err)
		}
	}
	stderr.Reset()
	if status := c.main(context.Background(), []string{"exec", "client", "--", "true"}); status != 1 ||
		!strings.Contains(stderr.String(), "2 persistent labs (aaaaaa, bbbbbb): choose one with -lab") {
		t.Errorf("exec with two labs = %d, stderr %q; want 1, choose one with -lab", status, stderr.String())
	}

	stderr.Reset()
	if status := c.main(context.Background(), []string{"exec", "-lab", "aaaaaa", "nosuch", "--", "true"}); status != 1 ||
		!strings.Contains(stderr.String(), `lab aaaaaa has no node "nosuch"`) {
		t.Errorf("exec in a missing node = %d, stderr %q; want 1, has no node", status, stderr.String())
	}

	stderr.Reset()
	if status := c.main(context.Background(), []string{"exec", "-lab", "cccccc", "client", "true"}); status != 1 ||
		!strings.Contains(stderr.String(), "no lab cccccc") {
		t.Errorf("exec in a missing lab = %d, stderr %q; want 1, no lab", status, stderr.String())
	}
}
