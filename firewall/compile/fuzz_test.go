package compile

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/netfilter/nft"
)

// FuzzCompile drives arbitrary config files through config.Parse and
// Compile: no panic; every compile error names a key of the firewall
// section and none is an internal error; every ruleset compiled passes
// ruleset.Validate and nft.Check.
func FuzzCompile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	seeds = append(seeds, "../fwconfig/testdata/example.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(head + "  zones: {wan: {interfaces: [wan]}, v: {networks: [vpn6]}}\n  nat: {masquerade: [v]}\n"))
	f.Add([]byte(head + "  zones: {wan: {networks: [\"0.0.0.0/0\"]}}\n  port_forwards: [{name: a, port: \"1-3\", to_port: \"4-6\", to: 192.168.1.1}]\n"))
	f.Add([]byte(head + "  zones: {wan: {interfaces: [wan]}}\n  sets: {s: {file: /bad.txt, entries: [\"::1\"]}}\n  rules: [{name: r, to: any, destination_set: s, action: reject, log: x}]\n"))

	files := func(name string) ([]byte, error) {
		switch name {
		case "/bad.txt":
			return []byte("192.0.2.0/24\nnot a prefix\n"), nil
		case "/var/lib/blocklists/drop.txt":
			return []byte("1.2.3.0/24\n2001:db8::/32 ; x\n"), nil
		}
		return nil, os.ErrNotExist
	}
	bans := []BanEntry{
		{Addr: netip.MustParseAddr("192.0.2.66"), Timeout: time.Hour},
		{Addr: netip.MustParseAddr("::ffff:198.51.100.1")},
		{Addr: netip.MustParseAddr("2001:db8::1"), Timeout: -time.Minute},
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "edge.yaml", fwconfig.Section, fwconfig.DefaultConfig)
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse error %T %v, want config.Errors", err, err)
			}
			// Whether YAML syntax errors carry a line is
			// internal/config's business, fuzzed there.
			return
		}
		for _, flow := range []bool{false, true} {
			rs, err := Compile(cfg, Options{Flowtable: flow, Bans: bans, ReadFile: files})
			if err != nil {
				var errs config.Errors
				if !errors.As(err, &errs) {
					t.Fatalf("Compile error %T %v, want config.Errors", err, err)
				}
				for _, e := range errs {
					if !strings.HasPrefix(e.Path, fwconfig.Section) || strings.Contains(e.Msg, "internal error") {
						t.Errorf("Compile error does not name a firewall key, or is a compiler bug: %v\n%s", e, data)
					}
				}
				continue
			}
			if err := rs.Validate(); err != nil {
				t.Errorf("Compile result fails Validate: %v\n%s", err, data)
			}
			// The applier refuses what nft could not load or list back.
			if err := nft.Check(rs); err != nil {
				t.Errorf("Compile result fails nft.Check: %v\n%s", err, data)
			}
		}
	})
}
