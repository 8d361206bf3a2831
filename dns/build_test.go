package dns

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/store"
)

// failingStore fails every write while fail is set.
type failingStore struct {
	store.Store
	fail atomic.Bool
}

func (f *failingStore) Apply(ctx context.Context, ops ...store.Op) (int64, error) {
	if f.fail.Load() {
		return 0, errors.New("disk full")
	}
	return f.Store.Apply(ctx, ops...)
}

// TestSerialStoreFailure checks the serial rule when the store cannot be
// written: a reload's commit serves the new serial and counts the failed
// write, the next reload keeps that serial and stores it, and a record
// change whose write fails changes nothing.
func TestSerialStoreFailure(t *testing.T) {
	ts := startServer(t, updatableZones)
	soa := func() uint32 { return ts.query("example.net.", mdns.TypeSOA).Answer[0].(*mdns.SOA).Serial }
	stored := func() uint32 {
		st, _, err := ts.srv.serials.Get(context.Background(), "example.net.")
		if err != nil {
			t.Fatal(err)
		}
		return st.Serial
	}
	failures := func() float64 {
		mfs, _ := ts.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "edge_dns_serial_store_failures_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	first := soa()
	fs := &failingStore{Store: ts.srv.store}
	ts.srv.store = fs
	fs.fail.Store(true)

	changed := strings.Replace(updatableZones, "192.0.2.10}", "192.0.2.11}", 1)
	if err := ts.reload(changed); err != nil {
		t.Fatalf("reload with a failing store: %v (a commit cannot fail)", err)
	}
	second := soa()
	if second <= first || stored() != first || failures() != 1 {
		t.Errorf("after a reload whose serial write failed: serial %d (was %d), stored %d, failures %v; want a larger serial served, %d stored, 1 failure",
			second, first, stored(), failures(), first)
	}
	// The same content again: the serial given stays, though the store
	// still has the older one.
	if err := ts.reload(changed); err != nil {
		t.Fatal(err)
	}
	if got := soa(); got != second || failures() != 2 {
		t.Errorf("the same content again = serial %d, failures %v; want %d (not a new one) and 2", got, failures(), second)
	}
	// Another change: a serial larger than the one served, though the
	// store still has the first.
	third := strings.Replace(changed, "192.0.2.11}", "192.0.2.12}", 1)
	if err := ts.reload(third); err != nil {
		t.Fatal(err)
	}
	if got := soa(); got <= second {
		t.Errorf("another change while serials are not stored = serial %d, want more than %d", got, second)
	}
	second = soa()
	changed = third
	// A record change whose write fails is refused and changes nothing.
	if code, msg := ts.api("POST", ctlapi.DNSRecordChange{Name: "new.example.net", Type: "A", Value: "192.0.2.30"}); code == 200 || !strings.Contains(msg, "disk full") {
		t.Errorf("record change with a failing store = %d %s, want an error", code, msg)
	}
	if r := ts.query("new.example.net.", mdns.TypeA); len(r.Answer) != 0 || soa() != second {
		t.Errorf("after a failed record change: %v, serial %d; want no answer, serial %d", r.Answer, soa(), second)
	}
	// Once the store works again the next reload stores the serial.
	fs.fail.Store(false)
	if err := ts.reload(changed); err != nil {
		t.Fatal(err)
	}
	if got := soa(); got != second || stored() != second || failures() != 3 {
		t.Errorf("with the store back: serial %d, stored %d, failures %v; want %d, %d, 3", got, stored(), failures(), second, second)
	}
}
