package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChangeRoundTrip(t *testing.T) {
	events := []Event{
		{Type: EventPut, Rev: 7, KV: KV{Key: "peers/a", Value: []byte("v"), CreateRev: 3, ModRev: 7, Version: 4}},
		{Type: EventDelete, Rev: 7, KV: KV{Key: "dns/x", ModRev: 7}},
		{Type: EventPut, Rev: 7, KV: KV{Key: "peers/b", Value: []byte{}, CreateRev: 7, ModRev: 7, Version: 1}},
	}
	b := encodeChange(events)
	tests := []struct {
		prefix string
		want   []Event
	}{
		{"", events},
		{"peers/", []Event{events[0], events[2]}},
		{"none/", nil},
	}
	for _, tc := range tests {
		got, err := decodeChange(7, b, tc.prefix)
		if err != nil {
			t.Fatalf("decodeChange(%q) = %v", tc.prefix, err)
		}
		if diff := cmp.Diff(tc.want, got, equateEmpty); diff != "" {
			t.Errorf("decodeChange(%q) (-want +got):\n%s", tc.prefix, diff)
		}
	}
}

func TestDecodeChangeDamaged(t *testing.T) {
	good := encodeChange([]Event{{Type: EventPut, KV: KV{Key: "k", Value: []byte("value")}}})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated value", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"unknown type", []byte{1, 9, 1, 'k'}},
		{"huge key length", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := decodeChange(3, tc.in, ""); err == nil {
				t.Errorf("decodeChange(%x) = %+v, nil, want an error", tc.in, got)
			}
		})
	}
}

func TestDecodeRecordShort(t *testing.T) {
	if _, err := decodeRecord("k", make([]byte, recordHeader-1)); err == nil {
		t.Errorf("decodeRecord(short) = nil error, want one")
	}
}

// FuzzDecodeChange: a damaged log entry must give an error, never a panic
// or a huge allocation.
func FuzzDecodeChange(f *testing.F) {
	f.Add(encodeChange([]Event{
		{Type: EventPut, KV: KV{Key: "a", Value: []byte("b"), CreateRev: 1, Version: 1}},
		{Type: EventDelete, KV: KV{Key: "c"}},
	}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		events, err := decodeChange(1, b, "")
		if err != nil {
			return
		}
		// What decodes must survive another round trip unchanged (the
		// bytes may differ: uvarints have several encodings).
		again, err := decodeChange(1, encodeChange(events), "")
		if err != nil {
			t.Fatalf("decodeChange(encodeChange(%+v)) = %v", events, err)
		}
		if diff := cmp.Diff(events, again, equateEmpty); diff != "" {
			t.Errorf("round trip of %x (-first +second):\n%s", b, diff)
		}
	})
}
