package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type peer struct {
	PublicKey string   `json:"public_key"`
	Addresses []string `json:"addresses,omitempty"`
	Count     int      `json:"count"`
}

func TestCollectionRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	peers := NewCollection[peer](s, "vpn/peers")

	laptop := peer{PublicKey: "k1", Addresses: []string{"10.100.0.2/32"}}
	rev, err := peers.Create(ctx, "laptop", laptop)
	if err != nil || rev != 1 {
		t.Fatalf("Create(laptop) = %d, %v, want 1, nil", rev, err)
	}
	if _, err := peers.Create(ctx, "laptop", peer{}); !errors.Is(err, ErrExists) {
		t.Errorf("Create(laptop) again = %v, want ErrExists", err)
	}
	if _, err := peers.Put(ctx, "phone", peer{PublicKey: "k2"}); err != nil {
		t.Fatal(err)
	}
	// Keys outside the collection's own level are not its items.
	put(t, s, "vpn/peers/phone/extra", "{}")
	put(t, s, "vpn/peersx", "{}")

	got, modRev, err := peers.Get(ctx, "laptop")
	if err != nil || modRev != 1 {
		t.Errorf("Get(laptop) modRev, err = %d, %v, want 1, nil", modRev, err)
	}
	if diff := cmp.Diff(laptop, got); diff != "" {
		t.Errorf("Get(laptop) (-want +got):\n%s", diff)
	}
	raw, err := s.Get(ctx, "vpn/peers/laptop")
	if want := `{"public_key":"k1","addresses":["10.100.0.2/32"],"count":0}`; err != nil || string(raw.Value) != want {
		t.Errorf("stored JSON = %s, %v, want %s", raw.Value, err, want)
	}

	items, listRev, err := peers.List(ctx)
	if err != nil || listRev != 4 {
		t.Errorf("List() rev, err = %d, %v, want 4, nil", listRev, err)
	}
	want := []Item[peer]{
		{Name: "laptop", Value: laptop, ModRev: 1},
		{Name: "phone", Value: peer{PublicKey: "k2"}, ModRev: 2},
	}
	if diff := cmp.Diff(want, items); diff != "" {
		t.Errorf("List() (-want +got):\n%s", diff)
	}

	if _, err := peers.Put(ctx, "laptop", peer{}, IfModRev(99)); !errors.Is(err, ErrConflict) {
		t.Errorf("Put(laptop, IfModRev(99)) = %v, want ErrConflict", err)
	}
	if _, err := peers.Delete(ctx, "laptop", IfModRev(1)); err != nil {
		t.Errorf("Delete(laptop, IfModRev(1)) = %v", err)
	}
	if _, _, err := peers.Get(ctx, "laptop"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(laptop) after delete = %v, want ErrNotFound", err)
	}
	if _, err := peers.Delete(ctx, "laptop"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(laptop) again = %v, want ErrNotFound", err)
	}
}

func TestCollectionNames(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	peers := NewCollection[peer](s, "peers/")
	tests := []struct {
		name string
		want string // "" means accepted
	}{
		{"laptop", ""},
		{"my-phone.home_1", ""},
		{"", `peers: name "": is empty`},
		{"a/b", `peers: name "a/b": contains '/'`},
		{"bad\nname", `peers: name "bad\nname": contains control character U+000A at byte 3`},
		{"tab\t", `contains control character U+0009`},
		{"del\x7f", `contains control character U+007F`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := map[string]error{}
			_, errs["Put"] = peers.Put(ctx, tc.name, peer{})
			_, _, errs["Get"] = peers.Get(ctx, tc.name)
			_, errs["Delete"] = peers.Delete(ctx, tc.name)
			_, errs["Create"] = peers.Create(ctx, tc.name, peer{})
			_, errs["Update"] = peers.Update(ctx, tc.name, func(*peer) error { return nil })
			for op, err := range errs {
				switch {
				case tc.want == "" && err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrExists):
					t.Errorf("%s(%q) = %v, want the name accepted", op, tc.name, err)
				case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
					t.Errorf("%s(%q) = %v, want an error containing %q", op, tc.name, err, tc.want)
				}
			}
		})
	}
}

func TestNewCollectionBadPrefix(t *testing.T) {
	for _, prefix := range []string{"", "/", "/peers", "a//b", "a/\x00"} {
		t.Run(prefix, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("NewCollection(%q) did not panic", prefix)
				}
			}()
			NewCollection[peer](nil, prefix)
		})
	}
}

func TestCollectionDecodeError(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	peers := NewCollection[peer](s, "peers")
	put(t, s, "peers/broken", `{"public_key": 42}`)

	_, _, err := peers.Get(ctx, "broken")
	if err == nil || !strings.Contains(err.Error(), "decode peers/broken (mod revision 1)") {
		t.Errorf("Get(broken) = %v, want a decode error naming peers/broken", err)
	}
	if _, _, err := peers.List(ctx); err == nil || !strings.Contains(err.Error(), "peers/broken") {
		t.Errorf("List() = %v, want a decode error naming peers/broken", err)
	}
}

func TestCollectionUpdate(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	peers := NewCollection[peer](s, "peers")

	if _, err := peers.Update(ctx, "ghost", func(*peer) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update(ghost) = %v, want ErrNotFound", err)
	}
	if _, err := peers.Create(ctx, "laptop", peer{PublicKey: "k"}); err != nil {
		t.Fatal(err)
	}
	errStop := errors.New("stop")
	if _, err := peers.Update(ctx, "laptop", func(p *peer) error { p.Count = 100; return errStop }); err != errStop {
		t.Errorf("Update(fn error) = %v, want fn's error as is", err)
	}

	// Concurrent increments, none lost.
	const workers, each = 6, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := peers.Update(ctx, "laptop", func(p *peer) error {
					p.Count++
					return nil
				}); err != nil {
					t.Errorf("worker %d update %d: %v", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	got, _, err := peers.Get(ctx, "laptop")
	if err != nil || got.Count != workers*each || got.PublicKey != "k" {
		t.Errorf("Get(laptop) after updates = %+v, %v, want count %d, key k", got, err, workers*each)
	}
}

// conflictStore fails every conditional Put with ErrConflict, to check
// that Update gives up instead of looping forever.
type conflictStore struct {
	Store
}

func (c conflictStore) Put(ctx context.Context, key string, value []byte, opts ...Option) (int64, error) {
	if preconditionOf(opts).CheckModRev {
		return 0, fmt.Errorf("put %s: %w", key, ErrConflict)
	}
	return c.Store.Put(ctx, key, value, opts...)
}

func TestCollectionUpdateGivesUp(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, BoltOptions{})
	peers := NewCollection[peer](conflictStore{s}, "peers")
	if _, err := peers.Put(ctx, "laptop", peer{}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err := peers.Update(ctx, "laptop", func(*peer) error { calls++; return nil })
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "gave up after 100 attempts") {
		t.Errorf("Update() = %v, want a give-up error wrapping ErrConflict", err)
	}
	if calls != updateAttempts {
		t.Errorf("fn ran %d times, want %d", calls, updateAttempts)
	}
}
