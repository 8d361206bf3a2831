package store

import (
	"context"
	"fmt"
)

// Store is the state store every daemon writes its run-time state to. It is
// shaped like etcd's KV API (revisions, prefix listing, watch,
// compare-and-swap) so that an etcd backend can implement it for state
// shared by several edges.
//
// All methods are safe for concurrent use. Context cancellation is checked
// before an operation starts; a started write is not interrupted, because a
// commit is either wholly done or not done at all.
type Store interface {
	// Get returns the key's current value, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)

	// List returns every key that starts with prefix, sorted by key, and
	// the store revision the listing reflects. Watching from that revision
	// plus one misses nothing.
	List(ctx context.Context, prefix string) ([]KV, int64, error)

	// Put sets key to value and returns the new store revision. With
	// IfModRev it fails with ErrConflict unless the precondition holds.
	Put(ctx context.Context, key string, value []byte, opts ...Option) (int64, error)

	// Delete removes key and returns the new store revision. Deleting an
	// absent key fails with ErrNotFound; with IfModRev it fails with
	// ErrConflict unless the precondition holds.
	Delete(ctx context.Context, key string, opts ...Option) (int64, error)

	// Apply commits ops all-or-nothing as a single revision and returns
	// it. If any precondition fails, or a delete names an absent key,
	// nothing changes and no revision is used. Each key may appear at most
	// once. Apply with no ops changes nothing and returns the current
	// revision.
	Apply(ctx context.Context, ops ...Op) (int64, error)

	// Watch delivers every change to keys under prefix whose revision is
	// at least fromRev, in revision order: first those still in history,
	// then live ones, until ctx is done, when the channel is closed.
	// fromRev 0 means from the next revision on. A fromRev older than the
	// history kept fails with ErrCompacted.
	//
	// If the watcher falls so far behind that the revisions it still needs
	// are compacted, it receives one last Event whose Err wraps
	// ErrCompacted and the channel is closed; the channel is also closed
	// when the store is closed.
	Watch(ctx context.Context, prefix string, fromRev int64) (<-chan Event, error)

	// Rev returns the current store revision: the revision of the last
	// committed change, 0 for a new store.
	Rev(ctx context.Context) (int64, error)

	// Close releases the store. Watch channels are closed; later calls
	// fail with ErrClosed.
	Close() error
}

// KV is one key with its value and revision bookkeeping, as in etcd's
// mvccpb.KeyValue.
type KV struct {
	Key   string
	Value []byte
	// CreateRev is the revision that created the key (since its last
	// deletion).
	CreateRev int64
	// ModRev is the revision of the key's last change. It is what
	// IfModRev compares against.
	ModRev int64
	// Version counts the writes to the key since it was created: 1 after
	// the creating put.
	Version int64
}

// EventType says what happened to a key.
type EventType uint8

// Event types.
const (
	EventPut EventType = iota + 1
	EventDelete
)

// String returns "PUT" or "DELETE", as etcd prints them.
func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is one change delivered by Watch.
type Event struct {
	Type EventType
	// KV is the key after the change. For a delete only Key and ModRev
	// (the deleting revision) are set.
	KV KV
	// Rev is the revision of the change; it equals KV.ModRev.
	Rev int64
	// Err is set only on the last event of a watch that had to stop early
	// (it wraps ErrCompacted); Type and KV are then empty.
	Err error
}

// OpType says what an Op does.
type OpType uint8

// Op types.
const (
	OpPut OpType = iota + 1
	OpDelete
)

// String returns "put" or "delete", the verb used in error messages.
func (t OpType) String() string {
	switch t {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("OpType(%d)", uint8(t))
}

// Op is one write in an Apply. Build it with PutOp or DeleteOp. Its fields
// are exported so another backend can translate it (for etcd: If holds the
// Compare, the op itself goes into Then).
type Op struct {
	Type  OpType
	Key   string
	Value []byte
	If    Precondition
}

// PutOp returns an Op that sets key to value.
func PutOp(key string, value []byte, opts ...Option) Op {
	return Op{Type: OpPut, Key: key, Value: value, If: preconditionOf(opts)}
}

// DeleteOp returns an Op that deletes key.
func DeleteOp(key string, opts ...Option) Op {
	return Op{Type: OpDelete, Key: key, If: preconditionOf(opts)}
}

// Precondition is what must hold for a write to happen.
type Precondition struct {
	// CheckModRev turns the ModRev comparison on; without it the write is
	// unconditional.
	CheckModRev bool
	// ModRev is the ModRev the key must have; 0 means the key must not
	// exist (etcd's mod_revision == 0).
	ModRev int64
}

// Option sets a precondition on Put, Delete, PutOp or DeleteOp.
type Option func(*Precondition)

// IfModRev makes a write fail with ErrConflict unless the key's current
// ModRev equals rev. rev 0 means the key must not exist, which makes a Put
// a create.
func IfModRev(rev int64) Option {
	return func(p *Precondition) {
		p.CheckModRev = true
		p.ModRev = rev
	}
}

func preconditionOf(opts []Option) Precondition {
	var p Precondition
	for _, o := range opts {
		o(&p)
	}
	return p
}
