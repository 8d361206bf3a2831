package store

import "errors"

// Sentinel errors. Operations wrap them with the key or path involved, so
// test for them with errors.Is.
var (
	// ErrNotFound means the key does not exist.
	ErrNotFound = errors.New("not found")

	// ErrConflict means a precondition set with IfModRev did not hold: the
	// key changed (or appeared, or vanished) since the caller read it.
	ErrConflict = errors.New("revision conflict")

	// ErrExists means Collection.Create found the name already present.
	ErrExists = errors.New("already exists")

	// ErrCompacted means a watch asked for a revision the change log no
	// longer holds. The caller should List again and watch from there.
	ErrCompacted = errors.New("revision compacted")

	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")

	// ErrLocked means another process holds the store's file lock.
	ErrLocked = errors.New("locked by another process")
)
