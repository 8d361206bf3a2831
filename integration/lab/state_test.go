package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNamespaceNames(t *testing.T) {
	if got := NamespaceName("0a1b2c", NodeRouter); got != "edge-0a1b2c-router" {
		t.Errorf("NamespaceName(0a1b2c, router) = %q, want edge-0a1b2c-router", got)
	}
	tests := []struct {
		name        string
		runID, node string
		ok          bool
	}{
		{"edge-0a1b2c-router", "0a1b2c", "router", true},
		{"edge-0a1b2c-outside-de", "0a1b2c", "outside-de", true},
		{"edge-0a1b2c-", "", "", false},
		{"edge-0A1B2C-router", "", "", false},
		{"edge-0a1b2-router", "", "", false},
		{"edge-0a1b2cd-router", "", "", false},
		{"edge-zzzzzz-router", "", "", false},
		{"other-0a1b2c-router", "", "", false},
		{"edge-0a1b2c", "", "", false},
	}
	for _, tc := range tests {
		runID, node, ok := parseNamespaceName(tc.name)
		if runID != tc.runID || node != tc.node || ok != tc.ok {
			t.Errorf("parseNamespaceName(%q) = %q, %q, %v, want %q, %q, %v", tc.name, runID, node, ok, tc.runID, tc.node, tc.ok)
		}
	}
	for range 20 {
		if id := randomRunID(); !validRunID(id) {
			t.Fatalf("randomRunID() = %q, not a valid run id", id)
		}
	}
}

func TestParseMarker(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // substring of the error; "" means it parses
	}{
		{"ok", `{"runid":"0a1b2c","nodes":["router","nas"],"owner_pid":42,"owner_start":7,"started":"2026-01-02T03:04:05Z","log_dir":"/tmp/edge-lab-0a1b2c"}`, ""},
		{"persistent", `{"runid":"0a1b2c","nodes":[],"owner_pid":0,"started":"2026-01-02T03:04:05Z","log_dir":""}`, ""},
		{"unknown field", `{"runid":"0a1b2c","owner":1}`, "unknown field"},
		{"bad runid", `{"runid":"../../x","owner_pid":1}`, "not 6 hex digits"},
		{"negative pid", `{"runid":"0a1b2c","owner_pid":-1}`, "negative owner_pid"},
		{"bad node", `{"runid":"0a1b2c","nodes":["../etc"],"owner_pid":1}`, `node "../etc"`},
		{"truncated", `{"runid":"0a1b2c",`, "decode marker"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMarker([]byte(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("parseMarker() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("parseMarker() = %v, want an error containing %q", err, tc.want)
			case tc.want == "" && m.RunID != "0a1b2c":
				t.Errorf("parseMarker().RunID = %q, want 0a1b2c", m.RunID)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	line := "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	got, err := parseProcStat(line)
	if err != nil || got.state != 'S' || got.start != 98765 {
		t.Errorf("parseProcStat() = %c, %d, %v, want S, 98765, nil", got.state, got.start, err)
	}
	for _, bad := range []string{"", "1234 (x S 1", "1234 (x) S 1 2 3"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) = nil error, want one", bad)
		}
	}
}

func TestProcessAlive(t *testing.T) {
	self := os.Getpid()
	start := processStart(self)
	if start == 0 {
		t.Fatalf("processStart(self) = 0")
	}
	if !processAlive(self, start) || !processAlive(self, 0) {
		t.Errorf("processAlive(self) = false, want true")
	}
	if processAlive(self, start+1) {
		t.Errorf("processAlive(self, other start time) = true, want false (pid reused)")
	}
	if processAlive(0, 0) {
		t.Errorf("processAlive(0) = true, want false")
	}

	// A child that exited but is not reaped yet is a zombie: dead.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := parseProcStat(string(data)); st.state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not exit", pid)
		}
	}
	if processAlive(pid, 0) {
		t.Errorf("processAlive(zombie %d) = true, want false", pid)
	}
}

func TestOwnLogDir(t *testing.T) {
	tests := []struct {
		dir  string
		want bool
	}{
		{"/tmp/edge-lab-0a1b2c", true},
		{"/var/tmp/x/edge-lab-0a1b2c", true},
		{"/tmp/edge-lab-ffffff", false},
		{"edge-lab-0a1b2c", false},
		{"/tmp/../edge-lab-0a1b2c", false},
		{"/", false},
		{"", false},
		{"/tmp", false},
	}
	for _, tc := range tests {
		if got := ownLogDir(tc.dir, "0a1b2c"); got != tc.want {
			t.Errorf("ownLogDir(%q, 0a1b2c) = %v, want %v", tc.dir, got, tc.want)
		}
	}
}

// fakeState returns a state over temporary directories whose liveness
// says yes only for the pids in alive (with their start times).
func fakeState(t *testing.T, alive map[int]uint64) state {
	t.Helper()
	st := state{
		markerDir: filepath.Join(t.TempDir(), "markers"),
		netnsDir:  filepath.Join(t.TempDir(), "netns"),
		alive: func(pid int, start uint64) bool {
			s, ok := alive[pid]
			return ok && (start == 0 || start == s)
		},
	}
	for _, dir := range []string{st.markerDir, st.netnsDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func addNamespaces(t *testing.T, st state, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(st.netnsDir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunsAndLeftovers(t *testing.T) {
	st := fakeState(t, map[int]uint64{100: 5, 200: 0})
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	markers := []*marker{
		{RunID: "aaaaaa", Nodes: []string{"a", "b"}, OwnerPID: 100, OwnerStart: 5, Started: started, LogDir: "/tmp/edge-lab-aaaaaa"}, // owner alive
		{RunID: "bbbbbb", Nodes: []string{"a"}, OwnerPID: 300, Started: started, LogDir: "/tmp/edge-lab-bbbbbb"},                     // owner dead
		{RunID: "cccccc", Nodes: []string{"a"}, OwnerPID: 0, Started: started},                                                       // persistent
		{RunID: "dddddd", Nodes: []string{"a"}, OwnerPID: 100, OwnerStart: 9, Started: started},                                      // pid 100 reused
		{RunID: "eeeeee", Nodes: []string{"a"}, OwnerPID: 400, Started: started},                                                     // dead, no namespaces left
	}
	for _, m := range markers {
		if err := st.writeMarker(m); err != nil {
			t.Fatal(err)
		}
	}
	// A marker that cannot be read: its run is left alone.
	if err := os.WriteFile(st.markerPath("ffffff"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	addNamespaces(t, st,
		"edge-aaaaaa-a", "edge-aaaaaa-b",
		"edge-bbbbbb-a",
		"edge-cccccc-a",
		"edge-dddddd-a",
		"edge-ffffff-a",
		"edge-121212-a", "edge-121212-b", // no marker: leftovers
		"docker-ns", "edge-zzzzzz-a", // not ours
	)
	// Stray files in the marker directory are ignored.
	os.WriteFile(filepath.Join(st.markerDir, "notes.txt"), nil, 0o644)

	all, err := st.runs()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range all {
		ids = append(ids, r.ID)
	}
	if got, want := strings.Join(ids, " "), "121212 aaaaaa bbbbbb cccccc dddddd eeeeee ffffff"; got != want {
		t.Errorf("runs() ids = %s, want %s", got, want)
	}
	if !reflect.DeepEqual(all[1].Marker, markers[0]) {
		t.Errorf("marker aaaaaa read back as %+v, want %+v", all[1].Marker, markers[0])
	}
	if got := strings.Join(all[0].Namespaces, " "); got != "edge-121212-a edge-121212-b" {
		t.Errorf("run 121212 namespaces = %s", got)
	}
	if all[6].MarkerErr == nil {
		t.Errorf("run ffffff: unreadable marker not reported")
	}

	dead, err := st.deadRuns()
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, r := range dead {
		ids = append(ids, r.ID)
	}
	if got, want := strings.Join(ids, " "), "121212 bbbbbb dddddd eeeeee"; got != want {
		t.Errorf("deadRuns() = %s, want %s", got, want)
	}
}

func TestNewRunIDAvoidsExisting(t *testing.T) {
	st := fakeState(t, nil)
	id, err := st.newRunID()
	if err != nil || !validRunID(id) {
		t.Fatalf("newRunID() = %q, %v", id, err)
	}
	if err := st.writeMarker(&marker{RunID: id, OwnerPID: 1}); err != nil {
		t.Fatal(err)
	}
	// Only a marker file, nothing left behind by writeMarker.
	entries, _ := os.ReadDir(st.markerDir)
	if len(entries) != 1 || entries[0].Name() != id+".json" {
		t.Errorf("marker dir holds %v, want only %s.json", entries, id)
	}
}
