package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// receive reads n events from ch, failing the test if they do not come
// within a few seconds or the channel closes first.
func receive(t *testing.T, ch <-chan Event, n int) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch channel closed after %d events, want %d: %+v", len(got), n, got)
			}
			if ev.Err != nil {
				t.Fatalf("watch event %d: %v", len(got), ev.Err)
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("received %d watch events, want %d: %+v", len(got), n, got)
		}
	}
	return got
}

// expectQuiet fails if ch delivers anything within a short while.
func expectQuiet(t *testing.T, ch <-chan Event) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		t.Errorf("unexpected watch event %+v (open %t)", ev, ok)
	case <-time.After(50 * time.Millisecond):
	}
}

// collect watches prefix from fromRev and returns the first n events.
func collect(t *testing.T, s Store, prefix string, fromRev int64, n int) []Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, prefix, fromRev)
	if err != nil {
		t.Fatalf("Watch(%q, %d) = %v", prefix, fromRev, err)
	}
	return receive(t, ch, n)
}

func put(t *testing.T, s Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Put(context.Background(), key, []byte(value))
	if err != nil {
		t.Fatalf("Put(%q) = %v", key, err)
	}
	return rev
}

func TestWatchHistoryThenLive(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	put(t, s, "peers/a", "1")                           // 1
	put(t, s, "dns/x", "ignored")                       // 2
	put(t, s, "peers/b", "2")                           // 3
	if _, err := s.Delete(ctx, "peers/a"); err != nil { // 4
		t.Fatal(err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Watch(wctx, "peers/", 2)
	if err != nil {
		t.Fatal(err)
	}
	got := receive(t, ch, 2)
	// Live ones follow the history without a gap.
	if _, err := s.Apply(ctx, PutOp("peers/c", []byte("3")), PutOp("dns/y", nil), PutOp("peers/b", []byte("4"))); err != nil { // 5
		t.Fatal(err)
	}
	got = append(got, receive(t, ch, 2)...)
	expectQuiet(t, ch)

	want := []Event{
		{Type: EventPut, Rev: 3, KV: KV{Key: "peers/b", Value: []byte("2"), CreateRev: 3, ModRev: 3, Version: 1}},
		{Type: EventDelete, Rev: 4, KV: KV{Key: "peers/a", ModRev: 4}},
		{Type: EventPut, Rev: 5, KV: KV{Key: "peers/c", Value: []byte("3"), CreateRev: 5, ModRev: 5, Version: 1}},
		{Type: EventPut, Rev: 5, KV: KV{Key: "peers/b", Value: []byte("4"), CreateRev: 3, ModRev: 5, Version: 2}},
	}
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("Watch(peers/, 2) events (-want +got):\n%s", diff)
	}
}

func TestWatchFromRev(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	for i := range 3 {
		put(t, s, fmt.Sprintf("k%d", i), "") // revisions 1..3
	}
	tests := []struct {
		name    string
		fromRev int64
		want    []int64 // revisions of the first events, after one more put at 4
	}{
		{"zero means next", 0, []int64{4}},
		{"from the first", 1, []int64{1, 2, 3, 4}},
		{"from the middle", 3, []int64{3, 4}},
		{"from the next", 4, []int64{4}},
	}
	var chans []<-chan Event
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, tc := range tests {
		ch, err := s.Watch(wctx, "", tc.fromRev)
		if err != nil {
			t.Fatalf("Watch(%d) = %v", tc.fromRev, err)
		}
		chans = append(chans, ch)
	}
	put(t, s, "k3", "") // 4
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			for _, ev := range receive(t, chans[i], len(tc.want)) {
				got = append(got, ev.Rev)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Watch(\"\", %d) revisions (-want +got):\n%s", tc.fromRev, diff)
			}
			expectQuiet(t, chans[i])
		})
	}

	// A future revision waits for it.
	ch, err := s.Watch(wctx, "", 6)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k4", "") // 5
	expectQuiet(t, ch)
	put(t, s, "k5", "") // 6
	if got := receive(t, ch, 1); got[0].Rev != 6 {
		t.Errorf("Watch(\"\", 6) first revision = %d, want 6", got[0].Rev)
	}

	if _, err := s.Watch(wctx, "", -1); err == nil {
		t.Errorf("Watch(\"\", -1) = nil error, want one")
	}
}

// TestListThenWatch checks the documented way to follow a prefix: List,
// then Watch from its revision plus one, while writers keep going. The
// state rebuilt from the listing and the events must equal a final List.
func TestListThenWatch(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	const writes = 120

	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Go(func() {
		for i := range writes {
			if i == 10 {
				close(started)
			}
			key := fmt.Sprintf("peers/%d", i%7)
			var err error
			if i%5 == 4 {
				_, err = s.Delete(ctx, key)
				if errors.Is(err, ErrNotFound) {
					err = nil
				}
			} else {
				_, err = s.Apply(ctx, PutOp(key, fmt.Appendf(nil, "%d", i)), PutOp("other/x", nil))
			}
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}
	})
	<-started

	kvs, rev, err := s.List(ctx, "peers/")
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, kv := range kvs {
		state[kv.Key] = string(kv.Value)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Watch(wctx, "peers/", rev+1)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	final, finalRev, err := s.List(ctx, "peers/")
	if err != nil {
		t.Fatal(err)
	}

	// Every revision the writer makes changes exactly one peers/ key, so
	// the events end with finalRev.
	for last := rev; last < finalRev; {
		ev := receive(t, ch, 1)[0]
		if ev.Rev != last+1 {
			t.Fatalf("event at revision %d after %d, want %d", ev.Rev, last, last+1)
		}
		switch ev.Type {
		case EventPut:
			state[ev.KV.Key] = string(ev.KV.Value)
		case EventDelete:
			delete(state, ev.KV.Key)
		}
		last = ev.Rev
	}
	want := map[string]string{}
	for _, kv := range final {
		want[kv.Key] = string(kv.Value)
	}
	if diff := cmp.Diff(want, state); diff != "" {
		t.Errorf("state rebuilt from List+Watch (-final List +rebuilt):\n%s", diff)
	}
}

func TestWatchCompacted(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{History: 5})
	for i := range 10 {
		put(t, s, fmt.Sprintf("k%d", i), "") // 1..10, keeps 6..10
	}
	tests := []struct {
		fromRev int64
		wantErr bool
	}{
		{1, true},
		{5, true},
		{6, false},
		{10, false},
		{0, false},
	}
	for _, tc := range tests {
		wctx, cancel := context.WithCancel(ctx)
		_, err := s.Watch(wctx, "", tc.fromRev)
		cancel()
		if got := errors.Is(err, ErrCompacted); got != tc.wantErr {
			t.Errorf("Watch(\"\", %d) = %v, want compacted %t", tc.fromRev, err, tc.wantErr)
		}
	}
	_, err := s.Watch(ctx, "", 3)
	if want := "watch: revision compacted: revision 3 asked for, oldest kept is 6"; err == nil || err.Error() != want {
		t.Errorf("Watch(\"\", 3) = %v, want %q", err, want)
	}
	if got := collect(t, s, "", 6, 5); got[0].Rev != 6 || got[4].Rev != 10 {
		t.Errorf("Watch(\"\", 6) revisions %d..%d, want 6..10", got[0].Rev, got[4].Rev)
	}
	var logRevs int
	if err := s.db.View(func(tx *bolt.Tx) error {
		logRevs = tx.Bucket(bucketLog).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if logRevs != 5 {
		t.Errorf("change log holds %d revisions, want 5", logRevs)
	}
}

// TestWatchSlowWatcherCompacted: a watcher that does not read while more
// than History revisions are written gets every event it can still get,
// in order and without a gap, then one ErrCompacted event, then a closed
// channel. Writers are never blocked by it.
func TestWatchSlowWatcherCompacted(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{History: 5})
	ch, err := s.Watch(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	// A watcher holds at most its channel buffer plus one batch, so this
	// many writes are sure to outrun it.
	writes := watchBuffer + watchBatchRevs + 20
	for i := range writes {
		put(t, s, fmt.Sprintf("k%d", i), "")
	}
	var (
		last   int64
		gotErr error
	)
	timeout := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-ch:
			switch {
			case !ok:
				done = true
			case gotErr != nil:
				t.Fatalf("event %+v after the error event", ev)
			case ev.Err != nil:
				gotErr = ev.Err
			case ev.Rev != last+1:
				t.Fatalf("event revision %d after %d, want %d", ev.Rev, last, last+1)
			default:
				last = ev.Rev
			}
		case <-timeout:
			t.Fatalf("watch channel not closed; last revision %d, err %v", last, gotErr)
		}
	}
	if !errors.Is(gotErr, ErrCompacted) {
		t.Errorf("last watch event error = %v, want ErrCompacted", gotErr)
	}
	if last >= int64(writes-5) {
		t.Errorf("watcher got up to revision %d of %d, want it cut off", last, writes)
	}
}

func TestWatchCancel(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	wctx, cancel := context.WithCancel(ctx)
	ch, err := s.Watch(wctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", "")
	receive(t, ch, 1)
	cancel()
	waitClosed(t, ch)

	// Cancelling a watcher blocked on a full channel also ends it.
	wctx, cancel = context.WithCancel(ctx)
	ch, err = s.Watch(wctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range watchBuffer + 5 {
		put(t, s, fmt.Sprintf("k%d", i), "")
	}
	cancel()
	waitClosed(t, ch)
}

func TestWatchEndsOnClose(t *testing.T) {
	path := t.TempDir() + "/state.db"
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := s.Watch(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	blocked, err := s.Watch(context.Background(), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range watchBuffer + 5 {
		put(t, s, fmt.Sprintf("k%d", i), "")
	}
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close() = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close() hangs with watchers open")
	}
	waitClosed(t, idle)
	waitClosed(t, blocked)
}

// waitClosed drains ch and fails unless it closes soon.
func waitClosed(t *testing.T, ch <-chan Event) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("watch channel not closed")
		}
	}
}

func TestWatchPrefixSkipsOthers(t *testing.T) {
	s, _ := openTest(t, BoltOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, "vpn/", 0)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "dns/a", "")
	put(t, s, "vpnx", "")
	put(t, s, "vpn/peer", "p")
	got := receive(t, ch, 1)
	if got[0].KV.Key != "vpn/peer" || got[0].Rev != 3 {
		t.Errorf("Watch(vpn/) first event = %+v, want vpn/peer at revision 3", got[0])
	}
	expectQuiet(t, ch)
	if !strings.HasPrefix(got[0].KV.Key, "vpn/") {
		t.Errorf("event key %q outside the prefix", got[0].KV.Key)
	}
}
