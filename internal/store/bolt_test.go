package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"
)

// openTest opens a fresh store in a temporary directory and closes it when
// the test ends.
func openTest(t *testing.T, opts BoltOptions) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "state.db")
	s, err := OpenBolt(path, opts)
	if err != nil {
		t.Fatalf("OpenBolt(%s) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s, path
}

// equateEmpty lets a nil and an empty Value compare equal.
var equateEmpty = cmpopts.EquateEmpty()

func TestOpenBoltPermissions(t *testing.T) {
	_, path := openTest(t, BoltOptions{})
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Dir(path), 0o700 | os.ModeDir},
		{path, 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tc.want {
			t.Errorf("mode of %s = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestOpenBoltBadOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	_, err := OpenBolt(path, BoltOptions{History: -1})
	if err == nil || !strings.Contains(err.Error(), "history -1 is negative") {
		t.Errorf("OpenBolt(History: -1) = %v, want an error about the negative history", err)
	}
}

// TestWritesAndRevisions runs one sequence of writes on one store; each step
// checks the revision it returns and the error, so the numbering is checked
// across puts, deletes, conditional writes and failures.
func TestWritesAndRevisions(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	steps := []struct {
		name    string
		do      func() (int64, error)
		wantRev int64
		wantErr error
	}{
		{"put new", func() (int64, error) { return s.Put(ctx, "a", []byte("1")) }, 1, nil},
		{"put second key", func() (int64, error) { return s.Put(ctx, "b", []byte("x")) }, 2, nil},
		{"overwrite", func() (int64, error) { return s.Put(ctx, "a", []byte("2")) }, 3, nil},
		{"cas put ok", func() (int64, error) { return s.Put(ctx, "a", []byte("3"), IfModRev(3)) }, 4, nil},
		{"cas put stale", func() (int64, error) { return s.Put(ctx, "a", []byte("4"), IfModRev(3)) }, 0, ErrConflict},
		{"create existing", func() (int64, error) { return s.Put(ctx, "a", []byte("5"), IfModRev(0)) }, 0, ErrConflict},
		{"create absent", func() (int64, error) { return s.Put(ctx, "c", []byte("c"), IfModRev(0)) }, 5, nil},
		{"cas on absent key", func() (int64, error) { return s.Put(ctx, "d", []byte("d"), IfModRev(5)) }, 0, ErrConflict},
		{"delete stale", func() (int64, error) { return s.Delete(ctx, "b", IfModRev(1)) }, 0, ErrConflict},
		{"delete cas ok", func() (int64, error) { return s.Delete(ctx, "b", IfModRev(2)) }, 6, nil},
		{"delete absent", func() (int64, error) { return s.Delete(ctx, "b") }, 0, ErrNotFound},
		{"delete absent with create cas", func() (int64, error) { return s.Delete(ctx, "b", IfModRev(0)) }, 0, ErrNotFound},
		{"recreate deleted", func() (int64, error) { return s.Put(ctx, "b", []byte("y"), IfModRev(0)) }, 7, nil},
		{"empty value", func() (int64, error) { return s.Put(ctx, "e", nil) }, 8, nil},
	}
	for _, st := range steps {
		rev, err := st.do()
		if !errors.Is(err, st.wantErr) || rev != st.wantRev {
			t.Errorf("%s: = %d, %v, want %d, %v", st.name, rev, err, st.wantRev, st.wantErr)
		}
	}

	want := []KV{
		{Key: "a", Value: []byte("3"), CreateRev: 1, ModRev: 4, Version: 3},
		{Key: "b", Value: []byte("y"), CreateRev: 7, ModRev: 7, Version: 1},
		{Key: "c", Value: []byte("c"), CreateRev: 5, ModRev: 5, Version: 1},
		{Key: "e", Value: nil, CreateRev: 8, ModRev: 8, Version: 1},
	}
	for _, w := range want {
		got, err := s.Get(ctx, w.Key)
		if err != nil {
			t.Errorf("Get(%q) = %v", w.Key, err)
			continue
		}
		if diff := cmp.Diff(w, got, equateEmpty); diff != "" {
			t.Errorf("Get(%q) mismatch (-want +got):\n%s", w.Key, diff)
		}
	}
	if rev, err := s.Rev(ctx); rev != 8 || err != nil {
		t.Errorf("Rev() = %d, %v, want 8, nil", rev, err)
	}
}

func TestErrorMessages(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	if _, err := s.Put(ctx, "peers/laptop", []byte("x")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"get absent", func() error { _, err := s.Get(ctx, "peers/phone"); return err },
			"get peers/phone: not found"},
		{"stale put", func() error { _, err := s.Put(ctx, "peers/laptop", nil, IfModRev(7)); return err },
			"put peers/laptop: revision conflict: mod revision is 1, want 7"},
		{"create existing", func() error { _, err := s.Put(ctx, "peers/laptop", nil, IfModRev(0)); return err },
			"put peers/laptop: revision conflict: key exists (mod revision 1), want it absent"},
		{"cas absent", func() error { _, err := s.Delete(ctx, "peers/phone", IfModRev(3)); return err },
			"delete peers/phone: revision conflict: key is absent, want mod revision 3"},
		{"apply", func() error {
			_, err := s.Apply(ctx, PutOp("peers/a", nil), DeleteOp("peers/b"))
			return err
		}, "apply 2 ops: delete peers/b: not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		ops     []Op
		wantErr error  // nil: success
		wantMsg string // substring of the error, when wantErr is nil but an error is expected
		want    map[string]string
	}{
		{
			name: "all succeed in one revision",
			ops: []Op{
				PutOp("k/new", []byte("n"), IfModRev(0)),
				PutOp("k/a", []byte("a2"), IfModRev(1)),
				DeleteOp("k/b", IfModRev(2)),
			},
			want: map[string]string{"k/a": "a2", "k/c": "c", "k/new": "n"},
		},
		{
			name: "last precondition fails",
			ops: []Op{
				PutOp("k/new", []byte("n")),
				DeleteOp("k/a"),
				PutOp("k/c", []byte("c2"), IfModRev(1)),
			},
			wantErr: ErrConflict,
		},
		{
			name:    "delete of absent key fails",
			ops:     []Op{PutOp("k/a", []byte("a2")), DeleteOp("k/zzz")},
			wantErr: ErrNotFound,
		},
		{
			name:    "duplicate key",
			ops:     []Op{PutOp("k/a", []byte("1")), DeleteOp("k/a")},
			wantMsg: "appears in more than one op",
		},
		{
			name:    "empty key",
			ops:     []Op{PutOp("k/a", []byte("1")), PutOp("", []byte("1"))},
			wantMsg: "op 1: empty key",
		},
		{
			name:    "zero op",
			ops:     []Op{{Key: "k/a"}},
			wantMsg: "unknown op type 0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t, BoltOptions{})
			for _, k := range []string{"k/a", "k/b", "k/c"} {
				if _, err := s.Put(ctx, k, []byte(strings.TrimPrefix(k, "k/"))); err != nil {
					t.Fatal(err)
				}
			}
			before, _, err := s.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}

			rev, err := s.Apply(ctx, tc.ops...)

			failing := tc.wantErr != nil || tc.wantMsg != ""
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Apply() = %d, %v, want %v", rev, err, tc.wantErr)
			case tc.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMsg)):
				t.Fatalf("Apply() = %d, %v, want an error containing %q", rev, err, tc.wantMsg)
			case !failing && (err != nil || rev != 4):
				t.Fatalf("Apply() = %d, %v, want 4, nil", rev, err)
			}

			after, afterRev, err := s.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if failing {
				if diff := cmp.Diff(before, after, equateEmpty); diff != "" {
					t.Errorf("failed Apply changed the store (-before +after):\n%s", diff)
				}
				if afterRev != 3 {
					t.Errorf("List() rev after a failed Apply = %d, want 3 (no revision used)", afterRev)
				}
				// The next commit takes the very next revision.
				if rev, err := s.Put(ctx, "k/next", nil); rev != 4 || err != nil {
					t.Errorf("Put() after failed Apply = %d, %v, want 4, nil", rev, err)
				}
				return
			}
			got := map[string]string{}
			for _, kv := range after {
				got[kv.Key] = string(kv.Value)
				if kv.Key != "k/c" && kv.ModRev != 4 {
					t.Errorf("%s ModRev = %d, want 4 (the Apply's single revision)", kv.Key, kv.ModRev)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("store after Apply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyEmpty(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	if _, err := s.Put(ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	if rev, err := s.Apply(ctx); rev != 1 || err != nil {
		t.Errorf("Apply() = %d, %v, want 1, nil", rev, err)
	}
	if rev, err := s.Put(ctx, "b", nil); rev != 2 || err != nil {
		t.Errorf("Put() after empty Apply = %d, %v, want 2, nil", rev, err)
	}
}

func TestInvalidKeys(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	long := strings.Repeat("k", bolt.MaxKeySize+1)
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"get empty", func() error { _, err := s.Get(ctx, ""); return err }, "get: empty key"},
		{"put empty", func() error { _, err := s.Put(ctx, "", nil); return err }, "put: empty key"},
		{"delete empty", func() error { _, err := s.Delete(ctx, ""); return err }, "delete: empty key"},
		{"put too long", func() error { _, err := s.Put(ctx, long, nil); return err }, "longer than the 32768 allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if rev, err := s.Rev(ctx); rev != 0 || err != nil {
		t.Errorf("Rev() = %d, %v, want 0, nil", rev, err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	for _, k := range []string{"peers/phone", "dns/www", "peers/laptop", "peersx", "peers/laptop/extra"} {
		if _, err := s.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(kvs []KV) []string {
		var ks []string
		for _, kv := range kvs {
			ks = append(ks, kv.Key)
		}
		return ks
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"peers/", []string{"peers/laptop", "peers/laptop/extra", "peers/phone"}},
		{"peers", []string{"peers/laptop", "peers/laptop/extra", "peers/phone", "peersx"}},
		{"", []string{"dns/www", "peers/laptop", "peers/laptop/extra", "peers/phone", "peersx"}},
		{"nothing/", nil},
		{"peers/laptop/extra", []string{"peers/laptop/extra"}},
	}
	for _, tc := range tests {
		kvs, rev, err := s.List(ctx, tc.prefix)
		if err != nil || rev != 5 {
			t.Errorf("List(%q) rev, err = %d, %v, want 5, nil", tc.prefix, rev, err)
		}
		if diff := cmp.Diff(tc.want, keys(kvs)); diff != "" {
			t.Errorf("List(%q) keys (-want +got):\n%s", tc.prefix, diff)
		}
		for _, kv := range kvs {
			if string(kv.Value) != kv.Key {
				t.Errorf("List(%q) value of %s = %q, want %q", tc.prefix, kv.Key, kv.Value, kv.Key)
			}
		}
	}
}

// TestValuesAreCopies makes sure returned values do not alias bbolt's
// memory map or the caller's buffer.
func TestValuesAreCopies(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	buf := []byte("original")
	if _, err := s.Put(ctx, "k", buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CHANGED!")
	kv, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	kv.Value[0] = 'X'
	kv, err = s.Get(ctx, "k")
	if err != nil || string(kv.Value) != "original" {
		t.Errorf("Get(k) = %q, %v, want \"original\", nil", kv.Value, err)
	}
}

func TestContextDone(t *testing.T) {
	s, _ := openTest(t, BoltOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Get":    func() error { _, err := s.Get(ctx, "k"); return err },
		"List":   func() error { _, _, err := s.List(ctx, ""); return err },
		"Put":    func() error { _, err := s.Put(ctx, "k", nil); return err },
		"Delete": func() error { _, err := s.Delete(ctx, "k"); return err },
		"Apply":  func() error { _, err := s.Apply(ctx, PutOp("k", nil)); return err },
		"Watch":  func() error { _, err := s.Watch(ctx, "", 0); return err },
		"Rev":    func() error { _, err := s.Rev(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(canceled ctx) = %v, want context.Canceled", name, err)
		}
	}
	if rev, err := s.Rev(context.Background()); rev != 0 || err != nil {
		t.Errorf("Rev() = %d, %v, want 0, nil: a canceled call wrote", rev, err)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	calls := map[string]func() error{
		"Get":    func() error { _, err := s.Get(ctx, "k"); return err },
		"List":   func() error { _, _, err := s.List(ctx, ""); return err },
		"Put":    func() error { _, err := s.Put(ctx, "k", nil); return err },
		"Delete": func() error { _, err := s.Delete(ctx, "k"); return err },
		"Apply":  func() error { _, err := s.Apply(ctx, PutOp("k", nil)); return err },
		"Watch":  func() error { _, err := s.Watch(ctx, "", 0); return err },
		"Rev":    func() error { _, err := s.Rev(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s() after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	const writers, perWriter = 8, 25
	total := int64(writers * perWriter)

	events, err := s.Watch(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}

	revs := make(chan int64, total)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				var (
					rev int64
					err error
				)
				switch i % 3 {
				case 0:
					rev, err = s.Put(ctx, "shared", fmt.Appendf(nil, "%d/%d", w, i))
				case 1:
					rev, err = s.Put(ctx, fmt.Sprintf("w%d/%d", w, i), []byte("x"))
				default:
					rev, err = s.Apply(ctx, PutOp(fmt.Sprintf("w%d/a%d", w, i), nil), PutOp(fmt.Sprintf("w%d/b%d", w, i), nil))
				}
				if err != nil {
					t.Errorf("writer %d op %d: %v", w, i, err)
				}
				revs <- rev
			}
		})
	}
	wg.Wait()
	close(revs)

	seen := map[int64]bool{}
	for rev := range revs {
		if seen[rev] {
			t.Errorf("revision %d returned twice", rev)
		}
		seen[rev] = true
	}
	for rev := int64(1); rev <= total; rev++ {
		if !seen[rev] {
			t.Errorf("revision %d never returned", rev)
		}
	}
	if rev, err := s.Rev(ctx); rev != total || err != nil {
		t.Errorf("Rev() = %d, %v, want %d, nil", rev, err, total)
	}
	kv, err := s.Get(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(writers * ((perWriter + 2) / 3)); kv.Version != want {
		t.Errorf("Get(shared).Version = %d, want %d", kv.Version, want)
	}

	// The watcher saw every revision, in order.
	var last int64
	timeout := time.After(10 * time.Second)
	for last < total {
		select {
		case ev := <-events:
			if ev.Rev < last || ev.Rev > last+1 {
				t.Fatalf("watch event revision %d after %d, want %d or %d", ev.Rev, last, last, last+1)
			}
			last = ev.Rev
		case <-timeout:
			t.Fatalf("watch stopped at revision %d, want %d", last, total)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, PutOp("a", []byte("2")), PutOp("b", []byte("3"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	before, _, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	after, rev, err := s.List(ctx, "")
	if err != nil || rev != 3 {
		t.Errorf("List() after reopen = rev %d, %v, want 3, nil", rev, err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("data after reopen (-before +after):\n%s", diff)
	}
	if rev, err := s.Put(ctx, "c", nil); rev != 4 || err != nil {
		t.Errorf("Put() after reopen = %d, %v, want 4, nil", rev, err)
	}
	// History survives too.
	got := collect(t, s, "", 1, 5)
	want := []Event{
		{Type: EventPut, Rev: 1, KV: KV{Key: "a", Value: []byte("1"), CreateRev: 1, ModRev: 1, Version: 1}},
		{Type: EventPut, Rev: 2, KV: KV{Key: "a", Value: []byte("2"), CreateRev: 1, ModRev: 2, Version: 2}},
		{Type: EventPut, Rev: 2, KV: KV{Key: "b", Value: []byte("3"), CreateRev: 2, ModRev: 2, Version: 1}},
		{Type: EventDelete, Rev: 3, KV: KV{Key: "b", ModRev: 3}},
		{Type: EventPut, Rev: 4, KV: KV{Key: "c", CreateRev: 4, ModRev: 4, Version: 1}},
	}
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("Watch(\"\", 1) after reopen (-want +got):\n%s", diff)
	}
}

func TestLockedByAnotherOpener(t *testing.T) {
	_, path := openTest(t, BoltOptions{})
	start := time.Now()
	s2, err := OpenBolt(path, BoltOptions{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatalf("second OpenBolt(%s) = nil error, want it locked", path)
	}
	want := fmt.Sprintf("state store %s is locked by another process (waited 100ms)", path)
	if err.Error() != want || !errors.Is(err, ErrLocked) {
		t.Errorf("second OpenBolt() = %q, want %q wrapping ErrLocked", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second OpenBolt() took %v, want about the 100ms lock timeout", d)
	}
}

func TestSchema(t *testing.T) {
	tests := []struct {
		name  string
		setup func(tx *bolt.Tx) error
		want  string // substring of the OpenBolt error; "" means it opens
	}{
		{
			name:  "current schema",
			setup: func(*bolt.Tx) error { return nil },
		},
		{
			name: "newer schema",
			setup: func(tx *bolt.Tx) error {
				return putInt(tx.Bucket(bucketMeta), schemaKey, schemaVersion+1)
			},
			want: fmt.Sprintf("schema version %d is newer than the %d this edge build understands", schemaVersion+1, schemaVersion),
		},
		{
			name:  "missing log bucket",
			setup: func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketLog) },
			want:  "damaged",
		},
		{
			name: "foreign bbolt file",
			setup: func(tx *bolt.Tx) error {
				for _, name := range [][]byte{bucketMeta, bucketKV, bucketLog} {
					if err := tx.DeleteBucket(name); err != nil {
						return err
					}
				}
				_, err := tx.CreateBucket([]byte("something-else"))
				return err
			},
			want: "not an edge state store",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := OpenBolt(path, BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(tc.setup); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = OpenBolt(path, BoltOptions{})
			if err == nil {
				s.Close()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("OpenBolt() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path)):
				t.Errorf("OpenBolt() = %v, want an error naming %s and containing %q", err, path, tc.want)
			}
		})
	}
}

func TestNotABoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBolt(path, BoltOptions{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenBolt(garbage) = %v, want an error naming %s", err, path)
	}
}
