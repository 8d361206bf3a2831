package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Defaults for BoltOptions.
const (
	// DefaultHistory is how many revisions the change log keeps for Watch.
	DefaultHistory = 10000
	// DefaultLockTimeout is how long OpenBolt waits for another process to
	// release the file lock.
	DefaultLockTimeout = time.Second
)

// schemaVersion is the on-disk layout this code reads and writes. A file
// with a higher number was written by a newer edge and is refused rather
// than misread.
const schemaVersion = 1

var (
	bucketMeta = []byte("meta") // schemaKey, revKeyName, compactedKey
	bucketKV   = []byte("kv")   // key -> encodeRecord
	bucketLog  = []byte("log")  // revKey(rev) -> encodeChange

	schemaKey    = []byte("schema")
	revKeyName   = []byte("rev")       // revision of the last commit
	compactedKey = []byte("compacted") // newest revision dropped from the log
)

// Watchers read the log in batches so one read transaction stays short
// (a long one would hold up bbolt's remapping when the file grows) and a
// slow watcher holds a bounded amount of memory.
const (
	watchBatchRevs  = 256
	watchBatchBytes = 1 << 20
	watchBuffer     = 16
)

// BoltOptions tunes OpenBolt. The zero value gives the defaults.
type BoltOptions struct {
	// History is how many of the latest revisions the change log keeps,
	// which is how far back Watch can start and how far a watcher may lag
	// before it is compacted. 0 means DefaultHistory.
	History int
	// LockTimeout is how long to wait for another process holding the
	// file. 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// Bolt is the Store backed by a single bbolt file. Every commit is fsynced
// before it is acknowledged.
type Bolt struct {
	db      *bolt.DB
	path    string
	history int64

	// done is closed by Close; watchers and new operations see it.
	done chan struct{}
	// watchers counts watch goroutines, so Close can wait for their read
	// transactions to end before closing the database.
	watchers sync.WaitGroup

	mu sync.Mutex
	// notify is closed and replaced after every commit, waking every
	// watcher at once without the writer waiting for any of them. Guarded
	// by mu.
	notify chan struct{}
	// closed is set by Close; guarded by mu so that Watch never adds a
	// watcher after Close started waiting for them.
	closed bool
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens or creates the store at path. The parent directory is
// created with mode 0700 and the file with 0600, since the state can hold
// keys and certificates.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if opts.History < 0 {
		return nil, fmt.Errorf("state store %s: history %d is negative, want 0 (default %d) or more", path, opts.History, DefaultHistory)
	}
	if opts.History == 0 {
		opts.History = DefaultHistory
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	// NoSync stays false: bbolt fsyncs every commit before Update returns,
	// which is what lets an acknowledged write survive kill -9 or a power
	// cut. Writers pay for it in latency; run-time state is small and rare.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("state store %s is %w (waited %s)", path, ErrLocked, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	// bbolt fsyncs the file but not the directory entry of a file it just
	// created; without this a power cut could lose the whole new file.
	syncDir(dir)

	b := &Bolt{
		db:      db,
		path:    path,
		history: int64(opts.History),
		done:    make(chan struct{}),
		notify:  make(chan struct{}),
	}
	if err := db.Update(b.init); err != nil {
		db.Close()
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	return b, nil
}

// init creates the buckets of a new file, checks the schema of an existing
// one, and trims the log in case History was lowered since the last run.
func (b *Bolt) init(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return errors.New("file is a bbolt database but not an edge state store (no meta bucket)")
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketKV); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketLog); err != nil {
			return err
		}
		return putInt(meta, schemaKey, schemaVersion)
	}
	schema := getInt(meta, schemaKey)
	if schema > schemaVersion {
		return fmt.Errorf("schema version %d is newer than the %d this edge build understands; run a newer edge or restore an older copy", schema, schemaVersion)
	}
	if schema < 1 || tx.Bucket(bucketKV) == nil || tx.Bucket(bucketLog) == nil {
		return fmt.Errorf("damaged: schema version %d, kv bucket present %t, log bucket present %t",
			schema, tx.Bucket(bucketKV) != nil, tx.Bucket(bucketLog) != nil)
	}
	return b.trim(tx, getInt(meta, revKeyName))
}

// Get implements Store.
func (b *Bolt) Get(ctx context.Context, key string) (KV, error) {
	if err := b.checkKeyed(ctx, key); err != nil {
		return KV{}, keyErr("get", key, err)
	}
	var kv KV
	err := b.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		var err error
		kv, err = decodeRecord(key, v)
		return err
	})
	if err != nil {
		return KV{}, keyErr("get", key, err)
	}
	return kv, nil
}

// List implements Store.
func (b *Bolt) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	if err := b.check(ctx); err != nil {
		return nil, 0, keyErr("list", prefix, err)
	}
	var (
		kvs []KV
		rev int64
	)
	err := b.view(func(tx *bolt.Tx) error {
		rev = getInt(tx.Bucket(bucketMeta), revKeyName)
		p := []byte(prefix)
		c := tx.Bucket(bucketKV).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			kv, err := decodeRecord(string(k), v)
			if err != nil {
				return err
			}
			kvs = append(kvs, kv)
		}
		return nil
	})
	if err != nil {
		return nil, 0, keyErr("list", prefix, err)
	}
	return kvs, rev, nil
}

// Put implements Store.
func (b *Bolt) Put(ctx context.Context, key string, value []byte, opts ...Option) (int64, error) {
	if err := b.checkKeyed(ctx, key); err != nil {
		return 0, keyErr("put", key, err)
	}
	return b.commit([]Op{PutOp(key, value, opts...)})
}

// Delete implements Store.
func (b *Bolt) Delete(ctx context.Context, key string, opts ...Option) (int64, error) {
	if err := b.checkKeyed(ctx, key); err != nil {
		return 0, keyErr("delete", key, err)
	}
	return b.commit([]Op{DeleteOp(key, opts...)})
}

// Apply implements Store.
func (b *Bolt) Apply(ctx context.Context, ops ...Op) (int64, error) {
	if err := b.check(ctx); err != nil {
		return 0, fmt.Errorf("apply: %w", err)
	}
	if len(ops) == 0 {
		return b.Rev(ctx)
	}
	seen := make(map[string]bool, len(ops))
	for i, op := range ops {
		if err := checkKey(op.Key); err != nil {
			return 0, fmt.Errorf("apply: op %d: %w", i, err)
		}
		if op.Type != OpPut && op.Type != OpDelete {
			return 0, fmt.Errorf("apply: op %d on %s: unknown op type %d, want OpPut or OpDelete", i, op.Key, op.Type)
		}
		if seen[op.Key] {
			return 0, fmt.Errorf("apply: key %s appears in more than one op", op.Key)
		}
		seen[op.Key] = true
	}
	rev, err := b.commit(ops)
	if err != nil {
		return 0, fmt.Errorf("apply %d ops: %w", len(ops), err)
	}
	return rev, nil
}

// commit writes ops as one revision: the data, the change log entry and
// the new revision number in one bbolt transaction, so they can never
// disagree after a crash. Any failed precondition rolls everything back.
func (b *Bolt) commit(ops []Op) (int64, error) {
	var (
		rev   int64
		opErr error // the op that failed, already naming its key
	)
	err := b.update(func(tx *bolt.Tx) error {
		meta, kvs := tx.Bucket(bucketMeta), tx.Bucket(bucketKV)
		rev = getInt(meta, revKeyName) + 1
		events := make([]Event, 0, len(ops))
		for _, op := range ops {
			ev, err := applyOp(kvs, op, rev)
			if err != nil {
				opErr = fmt.Errorf("%s %s: %w", op.Type, op.Key, err)
				return opErr
			}
			events = append(events, ev)
		}
		if err := tx.Bucket(bucketLog).Put(revKey(rev), encodeChange(events)); err != nil {
			return fmt.Errorf("write change log: %w", err)
		}
		if err := putInt(meta, revKeyName, rev); err != nil {
			return err
		}
		return b.trim(tx, rev)
	})
	if opErr != nil {
		return 0, opErr
	}
	if err != nil {
		return 0, fmt.Errorf("commit revision %d to state store %s: %w", rev, b.path, err)
	}
	b.broadcast()
	return rev, nil
}

// applyOp checks op's precondition against the key's current record and
// writes it at revision rev.
func applyOp(kvs *bolt.Bucket, op Op, rev int64) (Event, error) {
	k := []byte(op.Key)
	var cur KV
	raw := kvs.Get(k)
	exists := raw != nil
	if exists {
		if len(raw) < recordHeader {
			return Event{}, fmt.Errorf("stored record is %d bytes, shorter than its header", len(raw))
		}
		cur = KV{
			CreateRev: int64(binary.BigEndian.Uint64(raw[0:])),
			ModRev:    int64(binary.BigEndian.Uint64(raw[8:])),
			Version:   int64(binary.BigEndian.Uint64(raw[16:])),
		}
	}
	if p := op.If; p.CheckModRev && cur.ModRev != p.ModRev {
		switch {
		case p.ModRev == 0:
			return Event{}, fmt.Errorf("%w: key exists (mod revision %d), want it absent", ErrConflict, cur.ModRev)
		case !exists:
			return Event{}, fmt.Errorf("%w: key is absent, want mod revision %d", ErrConflict, p.ModRev)
		default:
			return Event{}, fmt.Errorf("%w: mod revision is %d, want %d", ErrConflict, cur.ModRev, p.ModRev)
		}
	}
	switch op.Type {
	case OpPut:
		kv := KV{Key: op.Key, Value: op.Value, CreateRev: rev, ModRev: rev, Version: 1}
		if exists {
			kv.CreateRev, kv.Version = cur.CreateRev, cur.Version+1
		}
		if err := kvs.Put(k, encodeRecord(kv)); err != nil {
			return Event{}, err
		}
		return Event{Type: EventPut, KV: kv, Rev: rev}, nil
	case OpDelete:
		if !exists {
			return Event{}, ErrNotFound
		}
		if err := kvs.Delete(k); err != nil {
			return Event{}, err
		}
		return Event{Type: EventDelete, KV: KV{Key: op.Key, ModRev: rev}, Rev: rev}, nil
	}
	return Event{}, fmt.Errorf("unknown op type %d", op.Type)
}

// trim drops log entries older than the History newest revisions.
func (b *Bolt) trim(tx *bolt.Tx, rev int64) error {
	meta := tx.Bucket(bucketMeta)
	cutoff := rev - b.history
	if cutoff <= getInt(meta, compactedKey) {
		return nil
	}
	c := tx.Bucket(bucketLog).Cursor()
	// Re-seek after every delete: bbolt's cursor may skip an entry when
	// Next follows Delete.
	for k, _ := c.First(); k != nil && keyRev(k) <= cutoff; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return putInt(meta, compactedKey, cutoff)
}

// Rev implements Store.
func (b *Bolt) Rev(ctx context.Context) (int64, error) {
	if err := b.check(ctx); err != nil {
		return 0, fmt.Errorf("rev: %w", err)
	}
	var rev int64
	err := b.view(func(tx *bolt.Tx) error {
		rev = getInt(tx.Bucket(bucketMeta), revKeyName)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rev: %w", err)
	}
	return rev, nil
}

// Close implements Store. It stops every watcher, waits for them, and
// closes the file. Closing twice is not an error.
func (b *Bolt) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()

	b.watchers.Wait()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close state store %s: %w", b.path, err)
	}
	return nil
}

// check returns why an operation must not start: the store is closed or
// ctx is done.
func (b *Bolt) check(ctx context.Context) error {
	select {
	case <-b.done:
		return ErrClosed
	default:
	}
	return ctx.Err()
}

// checkKeyed is check plus checkKey, for operations on one key.
func (b *Bolt) checkKeyed(ctx context.Context, key string) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return checkKey(key)
}

func (b *Bolt) view(fn func(*bolt.Tx) error) error {
	return b.boltErr(b.db.View(fn))
}

func (b *Bolt) update(fn func(*bolt.Tx) error) error {
	return b.boltErr(b.db.Update(fn))
}

// boltErr turns bbolt's "not open" into ErrClosed, for a call that passed
// the closed check just before Close won the race.
func (b *Bolt) boltErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func (b *Bolt) broadcast() {
	b.mu.Lock()
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
}

// changed returns a channel that is closed at the next commit.
func (b *Bolt) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notify
}

// keyErr wraps err with the operation and key, leaving out an empty key
// rather than printing "get : empty key", and shortening a huge one.
func keyErr(verb, key string, err error) error {
	if len(key) > 100 {
		key = key[:100] + "..."
	}
	if key == "" {
		return fmt.Errorf("%s: %w", verb, err)
	}
	return fmt.Errorf("%s %s: %w", verb, key, err)
}

// checkKey rejects keys bbolt cannot store.
func checkKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	if len(key) > bolt.MaxKeySize {
		return fmt.Errorf("key is %d bytes, longer than the %d allowed", len(key), bolt.MaxKeySize)
	}
	return nil
}

func getInt(bk *bolt.Bucket, name []byte) int64 {
	v := bk.Get(name)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func putInt(bk *bolt.Bucket, name []byte, v int64) error {
	return bk.Put(name, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

// syncDir fsyncs a directory so a newly created entry in it is durable.
// Errors are ignored: some filesystems refuse fsync on a directory, and
// the store still works there with the filesystem's own guarantees.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
