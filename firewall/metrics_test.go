package firewall

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/homeedge/edge/firewall/compile"
	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/netfilter/nft"
)

// TestZoneTotals: a zone's traffic is what the base chains jump into its
// chain, and what it dropped counts its drops and its rejects, which
// jump to the reject chain.
func TestZoneTotals(t *testing.T) {
	f, err := config.Parse([]byte("version: 1\n"+testSite+`firewall:
  zones:
    wan: {interfaces: [wan], input: reject}
    lan: {interfaces: [lan], networks: [lan], input: accept}
  rules:
    - {name: no-telnet, from: wan, proto: tcp, ports: [23], action: drop}
`), "edge.yaml", fwconfig.Section, fwconfig.DefaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := compile.Compile(f, compile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	counters := map[string]nft.Counter{
		"input: zone wan":          {Packets: 10, Bytes: 1000},
		"rule no-telnet":           {Packets: 2, Bytes: 120},
		"zone wan input: reject":   {Packets: 5, Bytes: 300},
		"input: zone lan":          {Packets: 7, Bytes: 700},
		"handle_reject: tcp reset": {Packets: 4, Bytes: 240},
	}
	got := zoneTotals(rs, counters)
	want := map[zoneKey]zoneTotal{
		{"wan", "input"}: {packets: 10, bytes: 1000, dropped: 7},
		{"lan", "input"}: {packets: 7, bytes: 700},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(zoneKey{}, zoneTotal{})); diff != "" {
		t.Errorf("zoneTotals (-want +got):\n%s", diff)
	}
}
