package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Watch implements Store.
//
// Each watcher is a goroutine that pulls from the change log kept in the
// bbolt file, starting at its own next revision, and sleeps on the commit
// broadcast when it has caught up. Writers never wait for watchers, and a
// watcher that is slow to drain its channel simply reads further back in
// the log later; it is cut off only when it falls more than History
// revisions behind.
func (b *Bolt) Watch(ctx context.Context, prefix string, fromRev int64) (<-chan Event, error) {
	if fromRev < 0 {
		return nil, keyErr("watch", prefix, fmt.Errorf("from revision %d is negative, want 0 (next revision) or more", fromRev))
	}
	if err := b.check(ctx); err != nil {
		return nil, keyErr("watch", prefix, err)
	}
	next := fromRev
	err := b.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if fromRev == 0 {
			next = getInt(meta, revKeyName) + 1
			return nil
		}
		return compactedErr(meta, fromRev)
	})
	if err != nil {
		return nil, keyErr("watch", prefix, err)
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, keyErr("watch", prefix, ErrClosed)
	}
	b.watchers.Add(1)
	b.mu.Unlock()

	ch := make(chan Event, watchBuffer)
	go b.watch(ctx, prefix, next, ch)
	return ch, nil
}

// watch is one watcher's loop: read what the log holds from next on, send
// it, and wait for the next commit when there is nothing more.
func (b *Bolt) watch(ctx context.Context, prefix string, next int64, ch chan<- Event) {
	defer b.watchers.Done()
	defer close(ch)
	for ctx.Err() == nil {
		// Take the broadcast channel before reading, so a commit landing
		// between the read and the wait still wakes us.
		changed := b.changed()
		events, after, err := b.readLog(prefix, next)
		if err != nil {
			select {
			case ch <- Event{Err: keyErr("watch", prefix, err)}:
			case <-ctx.Done():
			case <-b.done:
			}
			return
		}
		for _, ev := range events {
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			case <-b.done:
				return
			}
		}
		if after > next {
			next = after
			continue // there may be more in the log than one batch
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-b.done:
			return
		}
	}
}

// readLog returns the events for keys under prefix in a batch of log
// entries starting at revision next, and the revision to read from after
// them (next itself when the log holds nothing new).
func (b *Bolt) readLog(prefix string, next int64) ([]Event, int64, error) {
	var events []Event
	after := next
	err := b.view(func(tx *bolt.Tx) error {
		if err := compactedErr(tx.Bucket(bucketMeta), next); err != nil {
			return err
		}
		c := tx.Bucket(bucketLog).Cursor()
		var revs, size int
		for k, v := c.Seek(revKey(next)); k != nil; k, v = c.Next() {
			if revs == watchBatchRevs || size >= watchBatchBytes {
				break
			}
			rev := keyRev(k)
			evs, err := decodeChange(rev, v, prefix)
			if err != nil {
				return err
			}
			events = append(events, evs...)
			after = rev + 1
			revs++
			size += len(v)
		}
		return nil
	})
	return events, after, err
}

// compactedErr says whether the log no longer holds revision rev.
func compactedErr(meta *bolt.Bucket, rev int64) error {
	if compacted := getInt(meta, compactedKey); rev <= compacted {
		return fmt.Errorf("%w: revision %d asked for, oldest kept is %d", ErrCompacted, rev, compacted+1)
	}
	return nil
}
