package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The crash test runs the test binary itself as a child that writes to the
// store as fast as it can, and kills it with SIGKILL at a random moment.
// The child prints what it is about to do ("try") and, only after the call
// returned nil, that it was acknowledged ("ok"). The parent then reopens
// the file and checks that every acknowledged write is there, and that the
// one write in flight at the kill was applied entirely or not at all.

const (
	crashChildEnv = "EDGE_STORE_CRASH_CHILD" // path of the store; set only in the child
	crashSeedEnv  = "EDGE_STORE_CRASH_SEED"
	crashRounds   = 24
	crashHotKey   = "crash/hot"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
		crashChild(path, seed)
		os.Exit(0) // not reached: the parent kills the child
	}
	os.Exit(m.Run())
}

// crashWrite is one call the child makes: puts of values made by
// crashValue(key, n), and deletes.
type crashWrite struct {
	Puts map[string]int `json:"puts,omitempty"`
	Dels []string       `json:"dels,omitempty"`
}

// crashValue is the value written for key with payload size n, so the
// parent can recompute it from the short ack line.
func crashValue(key string, n int) []byte {
	return fmt.Appendf(nil, "%s#%d#%s", key, n, bytes.Repeat([]byte{byte('a' + n%26)}, n%3000))
}

// crashLine writes one line with a single write(2), which a pipe keeps
// whole (lines are far below PIPE_BUF).
func crashLine(format string, args ...any) {
	if _, err := os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n"); err != nil {
		os.Exit(3)
	}
}

func crashChild(path string, seed uint64) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s, err := OpenBolt(path, BoltOptions{LockTimeout: 10 * time.Second})
	if err != nil {
		fail(err)
	}
	rev, err := s.Rev(ctx)
	if err != nil {
		fail(err)
	}
	hot := 0
	var hotRev int64
	if kv, err := s.Get(ctx, crashHotKey); err == nil {
		hotRev = kv.ModRev
		if _, err := fmt.Sscanf(string(kv.Value), crashHotKey+"#%d#", &hot); err != nil {
			fail(fmt.Errorf("hot key value %q: %w", kv.Value, err))
		}
	} else if !errors.Is(err, ErrNotFound) {
		fail(err)
	}
	crashLine("ready %d", rev)

	var live []string // keys this child put and has not deleted
	for i := 0; ; i++ {
		key := func(j int) string { return fmt.Sprintf("crash/%d/%d/%d", seed, i, j) }
		var w crashWrite
		kind := rng.IntN(4)
		switch {
		case kind == 0:
			w.Puts = map[string]int{key(0): rng.IntN(5000)}
		case kind == 1:
			w.Puts = map[string]int{key(0): rng.IntN(5000), key(1): rng.IntN(500), key(2): rng.IntN(50)}
			if len(live) > 0 {
				w.Dels = []string{live[0]}
			}
		case kind == 2 && len(live) > 0:
			w.Dels = []string{live[len(live)-1]}
		default:
			w.Puts = map[string]int{crashHotKey: hot + 1}
		}
		line, _ := json.Marshal(w)
		crashLine("try %s", line)

		var rev int64
		switch {
		case len(w.Puts) == 1 && len(w.Dels) == 0 && w.Puts[crashHotKey] != 0:
			rev, err = s.Put(ctx, crashHotKey, crashValue(crashHotKey, hot+1), IfModRev(hotRev))
		case len(w.Puts) == 1 && len(w.Dels) == 0:
			rev, err = s.Put(ctx, key(0), crashValue(key(0), w.Puts[key(0)]))
		case len(w.Puts) == 0:
			rev, err = s.Delete(ctx, w.Dels[0])
		default:
			var ops []Op
			for k, n := range w.Puts {
				ops = append(ops, PutOp(k, crashValue(k, n), IfModRev(0)))
			}
			for _, k := range w.Dels {
				ops = append(ops, DeleteOp(k))
			}
			rev, err = s.Apply(ctx, ops...)
		}
		if err != nil {
			fail(err)
		}
		crashLine("ok %d", rev)

		if n, ok := w.Puts[crashHotKey]; ok {
			hot, hotRev = n, rev
			continue
		}
		for k := range w.Puts {
			live = append(live, k)
		}
		for _, k := range w.Dels {
			for j, l := range live {
				if l == k {
					live = append(live[:j], live[j+1:]...)
					break
				}
			}
		}
	}
}

// crashKey is what the parent knows about a key: absent (after an
// acknowledged delete), or present with payload n at revision rev.
type crashKey struct {
	present bool
	n       int
	rev     int64
}

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "state.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	model := map[string]crashKey{}
	var lastRev int64
	var acked int
	start := time.Now()
	for round := range crashRounds {
		// Most rounds kill mid-writing; every fourth counts the delay
		// from the start, so some kills land while the store opens.
		delay := time.Duration(3+rng.IntN(200)) * time.Millisecond
		fromStart := round%4 == 3
		lines, stderr := runCrashChild(t, path, uint64(round+1), delay, fromStart)

		n, applied := checkCrash(t, path, round, lines, model, &lastRev)
		acked += n
		t.Logf("round %d: killed after %v (from start %t), %d acknowledged writes, in-flight write applied: %s, revision %d",
			round, delay, fromStart, n, applied, lastRev)
		if t.Failed() {
			t.Fatalf("round %d: child stderr:\n%s", round, stderr)
		}
	}
	if acked == 0 {
		t.Fatal("no write was acknowledged in any round; the test checked nothing")
	}
	t.Logf("%d rounds, %d acknowledged writes checked, %v", crashRounds, acked, time.Since(start))
}

// runCrashChild starts the child, kills it after delay (counted from its
// "ready" line, or from its start), and returns its complete output lines.
func runCrashChild(t *testing.T, path string, seed uint64, delay time.Duration, fromStart bool) ([]string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashSeedEnv+"="+strconv.FormatUint(seed, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAt := time.Now().Add(delay)
	ready := make(chan struct{})
	linesc := make(chan []string)
	go func() {
		var lines []string
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // a line cut by the kill has no newline and is dropped
			}
			if strings.HasPrefix(line, "ready ") {
				close(ready)
			}
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
		_, _ = io.Copy(io.Discard, out)
		linesc <- lines
	}()
	if !fromStart {
		select {
		case <-ready:
			killAt = time.Now().Add(delay)
		case <-time.After(10 * time.Second):
			t.Error("crash child never became ready")
		}
	}
	time.Sleep(time.Until(killAt))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("kill child: %v", err)
	}
	lines := <-linesc
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("child ended with %v, want killed by SIGKILL; stderr:\n%s", err, stderr.String())
	}
	return lines, stderr.String()
}

// checkCrash reopens the store after a kill and checks it against the
// model of acknowledged writes, which it then brings up to date with this
// round's. It returns how many writes the round acknowledged and whether
// the write in flight at the kill was applied.
func checkCrash(t *testing.T, path string, round int, lines []string, model map[string]crashKey, lastRev *int64) (int, string) {
	t.Helper()
	ctx := context.Background()

	// Fold the acknowledged writes into the model; keep the one in flight.
	var (
		pending *crashWrite
		acked   int
	)
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "ready "):
		case strings.HasPrefix(line, "try "):
			pending = new(crashWrite)
			if err := json.Unmarshal([]byte(line[len("try "):]), pending); err != nil {
				t.Fatalf("round %d: bad child line %q: %v", round, line, err)
			}
		case strings.HasPrefix(line, "ok "):
			rev, err := strconv.ParseInt(line[len("ok "):], 10, 64)
			if err != nil || pending == nil {
				t.Fatalf("round %d: bad child line %q (pending %v): %v", round, line, pending, err)
			}
			if rev <= *lastRev {
				t.Errorf("round %d: acknowledged revision %d not after %d", round, rev, *lastRev)
			}
			*lastRev = rev
			for k, n := range pending.Puts {
				model[k] = crashKey{present: true, n: n, rev: rev}
			}
			for _, k := range pending.Dels {
				model[k] = crashKey{}
			}
			pending = nil
			acked++
		default:
			t.Fatalf("round %d: unexpected child line %q", round, line)
		}
	}

	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	defer s.Close()
	checkBoltFile(t, s)

	rev, err := s.Rev(ctx)
	if err != nil || rev < *lastRev {
		t.Errorf("round %d: Rev() = %d, %v, want >= last acknowledged %d", round, rev, err, *lastRev)
	}
	read := func(key string) crashKey {
		kv, err := s.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return crashKey{}
		}
		if err != nil {
			t.Errorf("round %d: Get(%s) = %v", round, key, err)
			return crashKey{}
		}
		var n int
		if _, err := fmt.Sscanf(string(kv.Value), key+"#%d#", &n); err != nil || !bytes.Equal(kv.Value, crashValue(key, n)) {
			t.Errorf("round %d: Get(%s) = %.60q..., not a value the child wrote", round, key, kv.Value)
		}
		return crashKey{present: true, n: n, rev: kv.ModRev}
	}

	// The write in flight: entirely applied, or not at all.
	applied := "none in flight"
	if pending != nil {
		var done, notDone int
		var doneRev int64
		for k, n := range pending.Puts {
			switch got := read(k); {
			case got.present && got.n == n && got.rev > *lastRev:
				done++
				doneRev = got.rev
			case got == model[k]:
				notDone++
			default:
				t.Errorf("round %d: in-flight put %s: found %+v, want %+v or payload %d", round, k, got, model[k], n)
			}
		}
		for _, k := range pending.Dels {
			if read(k).present {
				notDone++
			} else {
				done++
			}
		}
		switch {
		case done > 0 && notDone > 0:
			t.Errorf("round %d: in-flight write %+v half applied: %d parts done, %d not", round, pending, done, notDone)
		case done > 0:
			applied = "yes"
			for k, n := range pending.Puts {
				model[k] = crashKey{present: true, n: n, rev: doneRev}
			}
			for _, k := range pending.Dels {
				model[k] = crashKey{}
			}
			*lastRev = max(*lastRev, doneRev)
		default:
			applied = "no"
		}
	}

	for k, want := range model {
		if got := read(k); got != want {
			t.Errorf("round %d: key %s = %+v, want %+v", round, k, got, want)
		}
	}
	return acked, applied
}

// checkBoltFile runs bbolt's own consistency check and checks that the
// change log is contiguous and ends at the store revision.
func checkBoltFile(t *testing.T, s *Bolt) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		meta := tx.Bucket(bucketMeta)
		rev, compacted := getInt(meta, revKeyName), getInt(meta, compactedKey)
		want := compacted + 1
		err := tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
			if got := keyRev(k); got != want {
				return fmt.Errorf("change log has revision %d, want %d", got, want)
			}
			if _, err := decodeChange(want, v, ""); err != nil {
				return err
			}
			want++
			return nil
		})
		if err == nil && want != rev+1 {
			err = fmt.Errorf("change log ends at revision %d, store revision is %d", want-1, rev)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}
