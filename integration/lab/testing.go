package lab

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/homeedge/edge/internal/nettest"
)

// logTailLines is how much of each process log a failed test prints.
const logTailLines = 40

// ForTest builds a lab for t, or skips t when the machine cannot host one
// (it fails instead when EDGE_REQUIRE_ROOT=1). The lab is closed when the
// test ends. If the test failed, the tail of every process log is printed,
// the log directory is kept (its path is printed), and with
// "go test -artifacts" the logs are copied to the test's artifact
// directory.
func ForTest(t testing.TB, opts Options) *Lab {
	t.Helper()
	nettest.RequireRoot(t)
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	l, err := New(t.Context(), opts)
	if errors.Is(err, ErrUnavailable) {
		nettest.Unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatalf("lab.New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.keepLogsOnClose()
			l.reportLogs(t)
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab %s: %v", l.runID, err)
		}
	})
	return l
}

// reportLogs prints the tail of every process log to t and, when the test
// binary runs with -artifacts, copies the logs into t.ArtifactDir().
func (l *Lab) reportLogs(t testing.TB) {
	procs := l.Procs()
	t.Logf("lab %s: logs of %d processes kept in %s", l.runID, len(procs), l.logDir)
	for _, p := range procs {
		state := "running"
		select {
		case <-p.Done():
			state = "exited: " + errString(p.Wait())
		default:
		}
		t.Logf("--- %s (pid %d, %s), last %d lines of %s:\n%s", p, p.Pid(), state, logTailLines, p.LogPath(), tail(p.Log(), logTailLines))
	}
	if f := flag.Lookup("test.artifacts"); f == nil || f.Value.String() != "true" {
		return
	}
	dir := t.ArtifactDir()
	entries, err := os.ReadDir(l.logDir)
	if err != nil {
		t.Logf("lab %s: copy logs: %v", l.runID, err)
		return
	}
	for _, e := range entries {
		if err := copyFile(filepath.Join(dir, e.Name()), filepath.Join(l.logDir, e.Name())); err != nil {
			t.Logf("lab %s: copy logs: %v", l.runID, err)
		}
	}
	t.Logf("lab %s: logs copied to %s", l.runID, dir)
}

func errString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
