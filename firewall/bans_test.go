package firewall

import (
	"strings"
	"testing"
	"time"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
)

func TestParseBanAddr(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"203.0.113.7", "203.0.113.7", ""},
		{" 2001:db8::7 ", "2001:db8::7", ""},
		{"::ffff:203.0.113.7", "203.0.113.7", ""},
		{"203.0.113.0/24", "", "is a network"},
		{"example.net", "", "not an IP address"},
		{"", "", "not an IP address"},
		{"0.0.0.0", "", "cannot be banned"},
		{"127.0.0.1", "", "cannot be banned"},
		{"::1", "", "cannot be banned"},
		{"224.0.0.1", "", "cannot be banned"},
		{"fe80::1%eth0", "", "with a zone"},
	}
	for _, tc := range tests {
		a, err := parseBanAddr(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseBanAddr(%q) error = %v, want one containing %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || a.String() != tc.want):
			t.Errorf("parseBanAddr(%q) = %v, %v; want %s", tc.in, a, err, tc.want)
		}
	}
}

func TestBanLength(t *testing.T) {
	capped := fwconfig.Bans{DefaultTimeout: config.Duration(time.Hour), MaxTimeout: config.Duration(30 * 24 * time.Hour)}
	open := fwconfig.Bans{DefaultTimeout: config.Duration(time.Hour)}
	tests := []struct {
		in   string
		bans fwconfig.Bans
		want time.Duration
		err  string
	}{
		{"", capped, time.Hour, ""},
		{"10m", capped, 10 * time.Minute, ""},
		{"30d", capped, 30 * 24 * time.Hour, ""},
		{"31d", capped, 0, "longer than bans.max_timeout (30d)"},
		{"forever", capped, 0, "a ban must end"},
		{"forever", open, 0, ""},
		{"0", open, 0, ""},
		{"500ms", capped, 0, "shorter than 1s"},
		{"5", capped, 0, "has no unit"},
		{"soon", capped, 0, "invalid duration"},
	}
	for _, tc := range tests {
		got, err := banLength(tc.in, tc.bans)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("banLength(%q) error = %v, want one containing %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("banLength(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
