package rrl

import (
	"net/netip"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/config"
)

func cfg() Config {
	var c Config
	c.SetDefaults()
	c.ResponsesPerSecond, c.ErrorsPerSecond, c.Slip, c.Window, c.QueriesPerSecond = 10, 2, 2, config.Duration(time.Second), 100
	return c
}

func TestAnswerLimit(t *testing.T) {
	l := New(cfg())
	now := time.Unix(1000, 0)
	src := netip.MustParseAddr("198.51.100.7")
	var got []Action
	for range 16 {
		got = append(got, l.Check(src, "www.example.net.", 1, "example.net.", false, now))
	}
	want := []Action{Send, Send, Send, Send, Send, Send, Send, Send, Send, Send, Drop, Slip, Drop, Slip, Drop, Slip}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("actions = %v, want %v", got, want)
		}
	}
	// The same /24, another address: same budget.
	if a := l.Check(netip.MustParseAddr("198.51.100.8"), "www.example.net.", 1, "example.net.", false, now); a == Send {
		t.Errorf("neighbour in the same /24 got Send, want limited")
	}
	// Another name, another network: their own budgets.
	if a := l.Check(src, "mail.example.net.", 1, "example.net.", false, now); a != Send {
		t.Errorf("another name = %v, want Send", a)
	}
	if a := l.Check(netip.MustParseAddr("203.0.113.1"), "www.example.net.", 1, "example.net.", false, now); a != Send {
		t.Errorf("another network = %v, want Send", a)
	}
	// Credit comes back with time.
	if a := l.Check(src, "www.example.net.", 1, "example.net.", false, now.Add(200*time.Millisecond)); a != Send {
		t.Errorf("after 200ms = %v, want Send (2 tokens refilled)", a)
	}
}

func TestErrorsShareZoneBudget(t *testing.T) {
	l := New(cfg())
	now := time.Unix(1000, 0)
	src := netip.MustParseAddr("2001:db8:51::10")
	sent := 0
	for i := range 10 {
		name := string(rune('a'+i)) + ".example.net."
		if l.Check(src, name, 1, "example.net.", true, now) == Send {
			sent++
		}
	}
	if sent != 2 {
		t.Errorf("random-name NXDOMAINs sent = %d, want 2 (one budget per zone)", sent)
	}
}

func TestQueryLimitAndOff(t *testing.T) {
	c := cfg()
	c.QueriesPerSecond = 3
	l := New(c)
	now := time.Unix(1000, 0)
	src := netip.MustParseAddr("198.51.100.7")
	allowed := 0
	for range 10 {
		if l.AllowQuery(src, now) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("queries allowed = %d, want 3", allowed)
	}
	off := New(Config{Window: config.Duration(time.Second), IPv4Prefix: 24, IPv6Prefix: 56})
	for range 100 {
		if off.Check(src, "x.", 1, "z.", false, now) != Send || !off.AllowQuery(src, now) {
			t.Fatal("limits off but limited")
		}
	}
}

func TestBounded(t *testing.T) {
	l := New(cfg())
	now := time.Unix(1000, 0)
	for i := range 400000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Check(a, "www.example.net.", 1, "example.net.", false, now)
	}
	total := 0
	for i := range l.shards {
		total += len(l.shards[i].buckets)
	}
	if total > shards*maxPerShard {
		t.Errorf("buckets = %d, want at most %d", total, shards*maxPerShard)
	}
}

func BenchmarkCheck(b *testing.B) {
	l := New(cfg())
	now := time.Unix(1000, 0)
	src := netip.MustParseAddr("198.51.100.7")
	for b.Loop() {
		l.Check(src, "www.example.net.", 1, "example.net.", false, now)
	}
}
