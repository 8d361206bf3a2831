package lab

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestStandardIsValid(t *testing.T) {
	topo := Standard()
	if err := topo.Validate(); err != nil {
		t.Fatalf("Standard().Validate() = %v, want nil", err)
	}

	// Validate checks these too; they are spelled out here because the
	// whole suite leans on them.
	nodes := map[string]bool{}
	for _, n := range topo.Nodes {
		if len(n.Name) > MaxNameLen {
			t.Errorf("node %q: %d chars, want <= %d", n.Name, len(n.Name), MaxNameLen)
		}
		if nodes[n.Name] {
			t.Errorf("node %q twice", n.Name)
		}
		nodes[n.Name] = true
	}
	seen := map[netip.Addr]string{}
	for _, l := range topo.Links {
		for _, ep := range []Endpoint{l.A, l.B} {
			if !nodes[ep.Node] {
				t.Errorf("link endpoint %s/%s: no such node", ep.Node, ep.Iface)
			}
			if len(ep.Iface) > MaxNameLen {
				t.Errorf("interface %s/%s: %d chars, want <= %d", ep.Node, ep.Iface, len(ep.Iface), MaxNameLen)
			}
			for _, p := range ep.Addrs {
				if prev, dup := seen[p.Addr()]; dup {
					t.Errorf("address %v on %s/%s and %s", p.Addr(), ep.Node, ep.Iface, prev)
				}
				seen[p.Addr()] = ep.Node + "/" + ep.Iface
			}
		}
	}
	if len(topo.Nodes) != 10 || len(topo.Links) != 9 {
		t.Errorf("Standard() has %d nodes and %d links, want 10 and 9", len(topo.Nodes), len(topo.Links))
	}
}

// TestStandardMatchesConstants ties the exported constants to the
// topology, so a test using a constant talks to the address it means.
func TestStandardMatchesConstants(t *testing.T) {
	topo := Standard()
	tests := []struct {
		node, iface string
		f           Family
		want        string
	}{
		{NodeRouter, IfaceWAN, IPv4, RouterWANAddr4},
		{NodeRouter, IfaceWAN, IPv6, RouterWANAddr6},
		{NodeRouter, IfaceLAN, IPv4, RouterLANAddr4},
		{NodeRouter, IfaceLAN, IPv6, RouterLANAddr6},
		{NodeInternet, NodeRouter, IPv4, InternetWANAddr4},
		{NodeInternet, NodeRouter, IPv6, InternetWANAddr6},
		{NodeInternet, NodeOutsideDE, IPv4, OutsideDEGateway4},
		{NodeInternet, NodeOutsideUS, IPv6, OutsideUSGateway6},
		{NodeInternet, NodeServices, IPv4, ServicesGateway4},
		{NodeInternet, NodeRoadwarrior, IPv6, RoadwarriorGateway6},
		{NodeNAS, IfaceHost, IPv4, NASAddr4},
		{NodeNAS, IfaceHost, IPv6, NASAddr6},
		{NodeHost11, IfaceHost, IPv4, Host11Addr4},
		{NodeHost12, IfaceHost, IPv6, Host12Addr6},
		{NodeClient, IfaceHost, IPv4, ClientAddr4},
		{NodeClient, IfaceHost, IPv6, ClientAddr6},
		{NodeOutsideDE, IfaceHost, IPv4, OutsideDEAddr4},
		{NodeOutsideDE, IfaceHost, IPv6, OutsideDEAddr6},
		{NodeOutsideUS, IfaceHost, IPv4, OutsideUSAddr4},
		{NodeServices, IfaceHost, IPv6, ServicesAddr6},
		{NodeRoadwarrior, IfaceHost, IPv4, RoadwarriorAddr4},
	}
	for _, tc := range tests {
		got, ok := topo.IfaceAddr(tc.node, tc.iface, tc.f)
		if !ok || got.String() != tc.want {
			t.Errorf("IfaceAddr(%s, %s, %v) = %v, %v, want %s", tc.node, tc.iface, tc.f, got, ok, tc.want)
		}
	}

	// The router's first address is its public one.
	if got, _ := topo.Addr(NodeRouter, IPv4); got.String() != RouterWANAddr4 {
		t.Errorf("Addr(router, IPv4) = %v, want %s", got, RouterWANAddr4)
	}
	if got, ok := topo.Addr("nosuch", IPv4); ok {
		t.Errorf("Addr(nosuch, IPv4) = %v, true, want false", got)
	}

	prefixes := map[string]string{
		WANPrefix4: RouterWANAddr4, WANPrefix6: RouterWANAddr6,
		LANPrefix4: ClientAddr4, LANPrefix6: ClientAddr6,
		OutsideDEPrefix4: OutsideDEAddr4, OutsideDEPrefix6: OutsideDEAddr6,
		OutsideUSPrefix4: OutsideUSAddr4, OutsideUSPrefix6: OutsideUSAddr6,
		ServicesPrefix4: ServicesAddr4, ServicesPrefix6: ServicesAddr6,
		RoadwarriorPrefix4: RoadwarriorAddr4, RoadwarriorPrefix6: RoadwarriorAddr6,
	}
	for p, a := range prefixes {
		if !netip.MustParsePrefix(p).Contains(netip.MustParseAddr(a)) {
			t.Errorf("prefix %s does not contain %s", p, a)
		}
	}
}

func TestValidateReportsMistakes(t *testing.T) {
	v4 := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	pair := func() Topology {
		return Topology{
			Nodes: []Node{{Name: "a"}, {Name: "b"}},
			Links: []Link{{A: Endpoint{Node: "a", Iface: "eth0", Addrs: v4("10.0.0.1/24")},
				B: Endpoint{Node: "b", Iface: "eth0", Addrs: v4("10.0.0.2/24")}}},
		}
	}
	tests := []struct {
		name   string
		change func(*Topology)
		want   string // substring of the error; "" means valid
	}{
		{"valid", func(*Topology) {}, ""},
		{"empty", func(t *Topology) { *t = Topology{} }, "no nodes"},
		{"duplicate node", func(t *Topology) { t.AddNode(Node{Name: "a"}) }, "duplicate node name"},
		{"long node name", func(t *Topology) { t.AddNode(Node{Name: "a-very-long-node-name"}) }, "the limit is 15"},
		{"uppercase node name", func(t *Topology) { t.AddNode(Node{Name: "Nas"}) }, "lowercase"},
		{"long interface", func(t *Topology) { t.Links[0].A.Iface = "sixteen-chars-xx" }, "the limit is 15"},
		{"missing node", func(t *Topology) { t.Links[0].B.Node = "c" }, `no node "c"`},
		{"interface twice", func(t *Topology) {
			t.AddLink(Link{A: Endpoint{Node: "a", Iface: "eth0"}, B: Endpoint{Node: "b", Iface: "eth1"}})
		}, `interface "eth0" used twice`},
		{"interface named lo", func(t *Topology) { t.Links[0].A.Iface = "lo" }, `interface "lo" used twice`},
		{"duplicate address", func(t *Topology) { t.Links[0].B.Addrs = v4("10.0.0.1/24") }, "already used"},
		{"invalid address", func(t *Topology) { t.Links[0].B.Addrs = []netip.Prefix{{}} }, "invalid address"},
		{"missing bridge", func(t *Topology) { t.Links[0].A.Bridge = "br0"; t.Links[0].A.Addrs = nil }, `no bridge "br0"`},
		{"bridge port with address", func(t *Topology) {
			t.Nodes[0].Bridges = []Bridge{{Name: "br0"}}
			t.Links[0].A.Bridge = "br0"
		}, "cannot have addresses"},
		{"gateway off-link", func(t *Topology) {
			t.Nodes[1].Routes = []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.9.9.9")}}
		}, "gateway is on none"},
		{"gateway of other family", func(t *Topology) {
			t.Nodes[1].Routes = []Route{{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("10.0.0.1")}}
		}, "different families"},
		{"route without gateway", func(t *Topology) {
			t.Nodes[1].Routes = []Route{{Dst: netip.MustParsePrefix("::/0")}}
		}, "must both be set"},
		{"routed gateway", func(t *Topology) {
			t.Nodes[1].Routes = []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.0.0.1")}}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := pair()
			tc.change(&topo)
			err := topo.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSubsetAndExtend(t *testing.T) {
	std := Standard()
	sub, err := std.Subset(NodeInternet, NodeOutsideDE, NodeOutsideUS)
	if err != nil {
		t.Fatalf("Subset: %v", err)
	}
	if err := sub.Validate(); err != nil {
		t.Errorf("Subset(...).Validate() = %v", err)
	}
	if got := strings.Join(sub.NodeNames(), ","); got != "internet,outside-de,outside-us" {
		t.Errorf("Subset nodes = %s", got)
	}
	if len(sub.Links) != 2 {
		t.Errorf("Subset has %d links, want 2 (internet-de, internet-us)", len(sub.Links))
	}
	// The router without "internet" loses its default routes, whose
	// gateway is gone, and keeps its bridge.
	lan, err := std.Subset(NodeRouter, NodeNAS)
	if err != nil {
		t.Fatalf("Subset: %v", err)
	}
	if err := lan.Validate(); err != nil {
		t.Errorf("Subset(router, nas).Validate() = %v", err)
	}
	if r := lan.Node(NodeRouter); len(r.Routes) != 0 || len(r.Bridges) != 1 {
		t.Errorf("Subset(router, nas): router has routes %v and bridges %v, want none and br-lan", r.Routes, r.Bridges)
	}
	if got := len(lan.Node(NodeNAS).Routes); got != 2 {
		t.Errorf("Subset(router, nas): nas has %d routes, want 2", got)
	}
	if _, err := std.Subset("nosuch"); err == nil {
		t.Errorf("Subset(nosuch) = nil error, want one")
	}

	// Changing a subset or a clone leaves the original alone.
	sub.Links[0].A.Addrs[0] = netip.MustParsePrefix("10.0.0.1/24")
	clone := std.Clone()
	clone.Node(NodeRouter).Bridges[0].Addrs[0] = netip.MustParsePrefix("10.0.0.1/24")
	if err := std.Validate(); err != nil {
		t.Errorf("original changed through a copy: %v", err)
	}
	if got, _ := std.IfaceAddr(NodeRouter, IfaceLAN, IPv4); got.String() != RouterLANAddr4 {
		t.Errorf("original router lan address = %v after changing a clone", got)
	}

	// A later test extends the standard lab with one more lan host.
	ext := Standard()
	ext.AddNode(Node{Name: "printer", Routes: defaultRoutes(RouterLANAddr4, RouterLANAddr6)})
	ext.AddLink(Link{
		A: Endpoint{Node: NodeRouter, Iface: "lan-printer", Bridge: IfaceLAN},
		B: Endpoint{Node: "printer", Iface: IfaceHost, Addrs: addrs("192.168.1.50/24", "fd00:1::50/64")},
	})
	if err := ext.Validate(); err != nil {
		t.Errorf("extended topology: %v", err)
	}
}

func TestConfigScript(t *testing.T) {
	topo := Standard()
	var b strings.Builder
	for _, node := range []string{NodeInternet, NodeRouter, NodeClient} {
		b.WriteString("# " + node + "\n" + configScript(topo, *topo.Node(node)))
	}
	golden(t, "config.batch", []byte(b.String()))
}

func TestWriteNodeTable(t *testing.T) {
	var b bytes.Buffer
	if err := writeNodeTable(&b, "0a1b2c", Standard()); err != nil {
		t.Fatal(err)
	}
	golden(t, "up.golden", b.Bytes())
}

func TestFamily(t *testing.T) {
	tests := []struct {
		addr string
		f    Family
		want bool
	}{
		{"192.0.2.1", IPv4, true},
		{"192.0.2.1", IPv6, false},
		{"2001:db8::1", IPv6, true},
		{"2001:db8::1", IPv4, false},
		{"::ffff:192.0.2.1", IPv6, false},
		{"::ffff:192.0.2.1", IPv4, false},
	}
	for _, tc := range tests {
		if got := tc.f.Has(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%v.Has(%s) = %v, want %v", tc.f, tc.addr, got, tc.want)
		}
	}
}
