package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// On-disk encodings. They are private to the bbolt backend and versioned by
// the schema number in the meta bucket: change one and bump schemaVersion.

// recordHeader is the fixed prefix of a value in the kv bucket:
// CreateRev, ModRev, Version as big-endian uint64, then the value bytes.
const recordHeader = 24

func encodeRecord(kv KV) []byte {
	b := make([]byte, recordHeader, recordHeader+len(kv.Value))
	binary.BigEndian.PutUint64(b[0:], uint64(kv.CreateRev))
	binary.BigEndian.PutUint64(b[8:], uint64(kv.ModRev))
	binary.BigEndian.PutUint64(b[16:], uint64(kv.Version))
	return append(b, kv.Value...)
}

// decodeRecord decodes a kv bucket value. It copies the value, because
// bbolt's memory is only valid inside the transaction.
func decodeRecord(key string, b []byte) (KV, error) {
	if len(b) < recordHeader {
		return KV{}, fmt.Errorf("decode key %s: record is %d bytes, shorter than its %d-byte header", key, len(b), recordHeader)
	}
	return KV{
		Key:       key,
		CreateRev: int64(binary.BigEndian.Uint64(b[0:])),
		ModRev:    int64(binary.BigEndian.Uint64(b[8:])),
		Version:   int64(binary.BigEndian.Uint64(b[16:])),
		Value:     append([]byte{}, b[recordHeader:]...),
	}, nil
}

// revKey is a revision as a log bucket key; big-endian keeps bbolt's byte
// order equal to revision order.
func revKey(rev int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(rev))
}

func keyRev(k []byte) int64 {
	if len(k) != 8 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(k))
}

// encodeChange encodes the events of one revision for the log bucket:
// a count, then per event its type, key and (for puts) CreateRev, Version
// and value. ModRev is the revision itself, so it is not repeated.
func encodeChange(events []Event) []byte {
	b := binary.AppendUvarint(nil, uint64(len(events)))
	for _, ev := range events {
		b = append(b, byte(ev.Type))
		b = binary.AppendUvarint(b, uint64(len(ev.KV.Key)))
		b = append(b, ev.KV.Key...)
		if ev.Type == EventPut {
			b = binary.AppendUvarint(b, uint64(ev.KV.CreateRev))
			b = binary.AppendUvarint(b, uint64(ev.KV.Version))
			b = binary.AppendUvarint(b, uint64(len(ev.KV.Value)))
			b = append(b, ev.KV.Value...)
		}
	}
	return b
}

var errShort = errors.New("truncated")

// decodeChange decodes one log entry, keeping only events for keys under
// prefix. Values are copied out of bbolt's memory.
func decodeChange(rev int64, b []byte, prefix string) ([]Event, error) {
	d := decoder{b: b}
	n := d.uvarint()
	var events []Event
	for i := uint64(0); i < n && d.err == nil; i++ {
		typ := EventType(d.byte())
		key := string(d.bytes(d.uvarint()))
		ev := Event{Type: typ, Rev: rev, KV: KV{Key: key, ModRev: rev}}
		switch typ {
		case EventPut:
			ev.KV.CreateRev = int64(d.uvarint())
			ev.KV.Version = int64(d.uvarint())
			ev.KV.Value = append([]byte{}, d.bytes(d.uvarint())...)
		case EventDelete:
		default:
			if d.err == nil {
				d.err = fmt.Errorf("unknown event type %d", typ)
			}
		}
		if d.err == nil && strings.HasPrefix(key, prefix) {
			events = append(events, ev)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode change log revision %d: %w", rev, d.err)
	}
	return events, nil
}

// decoder reads a byte slice front to back; the first error sticks, so the
// caller checks once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errShort
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errShort
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}
