package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// updateAttempts bounds Collection.Update's read-modify-write retries. A
// conflict means another writer made progress, so hitting the bound takes
// sustained contention on one name.
const updateAttempts = 100

// Collection is a typed view of the keys directly under one prefix, stored
// as JSON: the peers, records or bans of one daemon. Names are single path
// segments, so "peers" holds "peers/laptop" but not "peers/laptop/x".
type Collection[T any] struct {
	store  Store
	name   string // the prefix without its trailing slash, for errors
	prefix string // always ends in "/"
}

// Item is one entry of a Collection listing.
type Item[T any] struct {
	Name   string
	Value  T
	ModRev int64
}

// NewCollection returns the collection of T stored under prefix in s, for
// example NewCollection[Peer](s, "vpn/peers"). A trailing slash is
// optional. It panics on an invalid prefix (empty, starting or ending in
// an empty segment, or with control characters), because prefixes are
// constants in the code, like a regexp.MustCompile pattern.
func NewCollection[T any](s Store, prefix string) *Collection[T] {
	name := strings.TrimSuffix(prefix, "/")
	for seg := range strings.SplitSeq(name, "/") {
		if err := checkName(seg); err != nil {
			panic(fmt.Sprintf("store.NewCollection: prefix %q: %v", prefix, err))
		}
	}
	return &Collection[T]{store: s, name: name, prefix: name + "/"}
}

// Get returns the named value and its ModRev, for a later IfModRev. A
// missing name is an error wrapping ErrNotFound.
func (c *Collection[T]) Get(ctx context.Context, name string) (T, int64, error) {
	var v T
	if err := c.checkName(name); err != nil {
		return v, 0, err
	}
	kv, err := c.store.Get(ctx, c.prefix+name)
	if err != nil {
		return v, 0, err
	}
	if err := c.decode(kv, &v); err != nil {
		return v, 0, err
	}
	return v, kv.ModRev, nil
}

// List returns every entry sorted by name, and the store revision the
// listing reflects (watch c's prefix from that plus one to follow it).
func (c *Collection[T]) List(ctx context.Context) ([]Item[T], int64, error) {
	kvs, rev, err := c.store.List(ctx, c.prefix)
	if err != nil {
		return nil, 0, err
	}
	items := make([]Item[T], 0, len(kvs))
	for _, kv := range kvs {
		name := kv.Key[len(c.prefix):]
		if strings.Contains(name, "/") {
			continue // belongs to a nested collection
		}
		it := Item[T]{Name: name, ModRev: kv.ModRev}
		if err := c.decode(kv, &it.Value); err != nil {
			return nil, 0, err
		}
		items = append(items, it)
	}
	return items, rev, nil
}

// Put stores v under name, creating or replacing it, and returns the new
// store revision. opts (IfModRev) make it conditional.
func (c *Collection[T]) Put(ctx context.Context, name string, v T, opts ...Option) (int64, error) {
	if err := c.checkName(name); err != nil {
		return 0, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s%s: %w", c.prefix, name, err)
	}
	return c.store.Put(ctx, c.prefix+name, b, opts...)
}

// Create stores v under name only if the name is free; otherwise it fails
// with an error wrapping ErrExists.
func (c *Collection[T]) Create(ctx context.Context, name string, v T) (int64, error) {
	rev, err := c.Put(ctx, name, v, IfModRev(0))
	if errors.Is(err, ErrConflict) {
		return 0, fmt.Errorf("create %s%s: %w", c.prefix, name, ErrExists)
	}
	return rev, err
}

// Delete removes name and returns the new store revision. A missing name
// is an error wrapping ErrNotFound.
func (c *Collection[T]) Delete(ctx context.Context, name string, opts ...Option) (int64, error) {
	if err := c.checkName(name); err != nil {
		return 0, err
	}
	return c.store.Delete(ctx, c.prefix+name, opts...)
}

// Update reads name, lets fn change the value, and writes it back only if
// nobody else wrote it in between, retrying from a fresh read on a
// conflict, so concurrent updates never overwrite each other. fn may run
// several times and must not have other side effects; an error from fn
// stops the update and is returned as is. A missing name is an error
// wrapping ErrNotFound. Update returns the new store revision.
func (c *Collection[T]) Update(ctx context.Context, name string, fn func(*T) error) (int64, error) {
	var err error
	for range updateAttempts {
		var (
			v      T
			modRev int64
		)
		v, modRev, err = c.Get(ctx, name)
		if err != nil {
			return 0, err
		}
		if err := fn(&v); err != nil {
			return 0, err
		}
		var rev int64
		rev, err = c.Put(ctx, name, v, IfModRev(modRev))
		if !errors.Is(err, ErrConflict) {
			return rev, err
		}
	}
	return 0, fmt.Errorf("update %s%s: gave up after %d attempts: %w", c.prefix, name, updateAttempts, err)
}

func (c *Collection[T]) decode(kv KV, v *T) error {
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return fmt.Errorf("decode %s (mod revision %d): %w", kv.Key, kv.ModRev, err)
	}
	return nil
}

func (c *Collection[T]) checkName(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("%s: name %q: %w", c.name, name, err)
	}
	return nil
}

// checkName accepts one path segment: a name must not be able to reach
// into another collection's keys or smuggle control characters into logs.
func checkName(name string) error {
	if name == "" {
		return errors.New("is empty, want a name such as \"laptop\"")
	}
	if strings.Contains(name, "/") {
		return errors.New("contains '/', want a single path segment")
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		return fmt.Errorf("contains control character %U at byte %d", []rune(name[i:])[0], i)
	}
	return nil
}
