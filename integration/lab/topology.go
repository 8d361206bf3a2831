package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Node names of the standard topology.
const (
	NodeInternet    = "internet"
	NodeRouter      = "router"
	NodeNAS         = "nas"
	NodeHost11      = "host11"
	NodeHost12      = "host12"
	NodeClient      = "client"
	NodeOutsideDE   = "outside-de"
	NodeOutsideUS   = "outside-us"
	NodeServices    = "services"
	NodeRoadwarrior = "roadwarrior"
)

// Interface names of the standard topology. The router's lan bridge has one
// port per lan host, named "lan-<node>"; on "internet" the interface toward
// each attached network is named after the node at its other end.
const (
	IfaceWAN  = "wan"    // the router's uplink to "internet"
	IfaceLAN  = "br-lan" // the router's lan bridge
	IfaceHost = "eth0"   // the only interface of every lan and outside host
)

// Addresses and prefixes of the standard topology. Outside networks have
// their gateway on "internet" at .1 (::1) and their host at .10 (::10).
const (
	WANPrefix4       = "192.0.2.0/24"
	WANPrefix6       = "2001:db8:2::/64"
	RouterWANAddr4   = "192.0.2.1"
	RouterWANAddr6   = "2001:db8:2::1"
	InternetWANAddr4 = "192.0.2.254" // the router's default gateway
	InternetWANAddr6 = "2001:db8:2::fe"

	LANPrefix4     = "192.168.1.0/24"
	LANPrefix6     = "fd00:1::/64"
	RouterLANAddr4 = "192.168.1.1" // the lan hosts' default gateway
	RouterLANAddr6 = "fd00:1::1"
	NASAddr4       = "192.168.1.10"
	NASAddr6       = "fd00:1::10"
	Host11Addr4    = "192.168.1.11"
	Host11Addr6    = "fd00:1::11"
	Host12Addr4    = "192.168.1.12"
	Host12Addr6    = "fd00:1::12"
	ClientAddr4    = "192.168.1.100"
	ClientAddr6    = "fd00:1::100"

	OutsideDEPrefix4  = "198.51.100.0/24"
	OutsideDEPrefix6  = "2001:db8:51::/64"
	OutsideDEGateway4 = "198.51.100.1"
	OutsideDEGateway6 = "2001:db8:51::1"
	OutsideDEAddr4    = "198.51.100.10"
	OutsideDEAddr6    = "2001:db8:51::10"

	OutsideUSPrefix4  = "203.0.113.0/24"
	OutsideUSPrefix6  = "2001:db8:203::/64"
	OutsideUSGateway4 = "203.0.113.1"
	OutsideUSGateway6 = "2001:db8:203::1"
	OutsideUSAddr4    = "203.0.113.10"
	OutsideUSAddr6    = "2001:db8:203::10"

	ServicesPrefix4  = "172.31.53.0/24"
	ServicesPrefix6  = "2001:db8:53::/64"
	ServicesGateway4 = "172.31.53.1"
	ServicesGateway6 = "2001:db8:53::1"
	ServicesAddr4    = "172.31.53.10"
	ServicesAddr6    = "2001:db8:53::10"

	RoadwarriorPrefix4  = "172.31.77.0/24"
	RoadwarriorPrefix6  = "2001:db8:77::/64"
	RoadwarriorGateway4 = "172.31.77.1"
	RoadwarriorGateway6 = "2001:db8:77::1"
	RoadwarriorAddr4    = "172.31.77.10"
	RoadwarriorAddr6    = "2001:db8:77::10"
)

// MaxNameLen is the longest node or interface name a topology may use; it
// is the kernel's limit for interface names (IFNAMSIZ-1).
const MaxNameLen = 15

// Family selects IPv4 or IPv6.
type Family int

// The two address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	return fmt.Sprintf("IPv%d", int(f))
}

// Has reports whether a belongs to family f.
func (f Family) Has(a netip.Addr) bool {
	switch f {
	case IPv4:
		return a.Is4()
	case IPv6:
		return a.Is6() && !a.Is4In6()
	}
	return false
}

// Topology describes a lab as data: the namespaces to create and the veth
// pairs that join them. [Standard] returns the home network of docs/testing.md;
// tests may build smaller ones, or extend it with [Topology.AddNode] and
// [Topology.AddLink]. [New] validates it.
type Topology struct {
	Nodes []Node
	Links []Link
}

// Node is one network namespace.
type Node struct {
	Name       string   // short name, unique in the topology, at most MaxNameLen chars
	Forwarding bool     // route between interfaces (IPv4 and IPv6 forwarding)
	Bridges    []Bridge // bridges created in this node before its links are attached
	Routes     []Route  // static routes, added after every address is up
}

// Bridge is a Linux bridge inside a node; link endpoints join it by naming
// it in [Endpoint.Bridge].
type Bridge struct {
	Name  string
	Addrs []netip.Prefix // interface addresses, e.g. 192.168.1.1/24
}

// Link is a veth pair between two nodes.
type Link struct {
	A, B Endpoint
}

// Endpoint is one end of a veth pair.
type Endpoint struct {
	Node   string
	Iface  string         // interface name inside Node, at most MaxNameLen chars
	Addrs  []netip.Prefix // interface addresses, e.g. 192.0.2.1/24
	Bridge string         // if set, the interface becomes a port of this bridge of Node and has no addresses
}

// Route is a static route through a gateway.
type Route struct {
	Dst netip.Prefix // 0.0.0.0/0 or ::/0 for a default route
	Via netip.Addr
}

// AddNode appends n to the topology.
func (t *Topology) AddNode(n Node) {
	t.Nodes = append(t.Nodes, n)
}

// AddLink appends a veth pair to the topology.
func (t *Topology) AddLink(l Link) {
	t.Links = append(t.Links, l)
}

// Node returns the node named name, or nil.
func (t *Topology) Node(name string) *Node {
	for i := range t.Nodes {
		if t.Nodes[i].Name == name {
			return &t.Nodes[i]
		}
	}
	return nil
}

// NodeNames returns the node names in declaration order.
func (t Topology) NodeNames() []string {
	names := make([]string, len(t.Nodes))
	for i, n := range t.Nodes {
		names[i] = n.Name
	}
	return names
}

// Iface is an interface of a node with its addresses, as listed by
// [Topology.Ifaces].
type Iface struct {
	Name  string
	Addrs []netip.Prefix
}

// Ifaces returns the interfaces of node that carry addresses or are
// bridges, in the order that defines "first address": link endpoints in
// link order, then bridges.
func (t Topology) Ifaces(node string) []Iface {
	var ifaces []Iface
	for _, l := range t.Links {
		for _, ep := range []Endpoint{l.A, l.B} {
			if ep.Node == node && ep.Bridge == "" {
				ifaces = append(ifaces, Iface{Name: ep.Iface, Addrs: ep.Addrs})
			}
		}
	}
	if n := t.Node(node); n != nil {
		for _, b := range n.Bridges {
			ifaces = append(ifaces, Iface(b))
		}
	}
	return ifaces
}

// Addr returns the first address of family f on node (see [Topology.Ifaces]
// for the order), and false if there is none.
func (t Topology) Addr(node string, f Family) (netip.Addr, bool) {
	for _, ifc := range t.Ifaces(node) {
		for _, p := range ifc.Addrs {
			if f.Has(p.Addr()) {
				return p.Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}

// IfaceAddr returns the first address of family f on interface iface of
// node, and false if there is none.
func (t Topology) IfaceAddr(node, iface string, f Family) (netip.Addr, bool) {
	for _, ifc := range t.Ifaces(node) {
		if ifc.Name != iface {
			continue
		}
		for _, p := range ifc.Addrs {
			if f.Has(p.Addr()) {
				return p.Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}

// Subset returns the topology reduced to the named nodes, the links between
// them, and the routes whose gateway is still connected. It is an error to
// name a node t does not have.
func (t Topology) Subset(nodes ...string) (Topology, error) {
	var sub Topology
	for _, name := range nodes {
		n := t.Node(name)
		if n == nil {
			return Topology{}, fmt.Errorf("subset: no node %q in topology", name)
		}
		sub.AddNode(n.clone())
	}
	for _, l := range t.Links {
		if sub.Node(l.A.Node) != nil && sub.Node(l.B.Node) != nil {
			sub.AddLink(l.clone())
		}
	}
	// Drop the routes whose gateway went away with a dropped link.
	for i := range sub.Nodes {
		n := &sub.Nodes[i]
		var connected []netip.Prefix
		for _, ifc := range sub.Ifaces(n.Name) {
			for _, p := range ifc.Addrs {
				connected = append(connected, p.Masked())
			}
		}
		n.Routes = slices.DeleteFunc(n.Routes, func(r Route) bool {
			return !slices.ContainsFunc(connected, func(p netip.Prefix) bool { return p.Contains(r.Via) })
		})
	}
	return sub, nil
}

func (n Node) clone() Node {
	n.Bridges = slices.Clone(n.Bridges)
	for i := range n.Bridges {
		n.Bridges[i].Addrs = slices.Clone(n.Bridges[i].Addrs)
	}
	n.Routes = slices.Clone(n.Routes)
	return n
}

func (l Link) clone() Link {
	l.A.Addrs = slices.Clone(l.A.Addrs)
	l.B.Addrs = slices.Clone(l.B.Addrs)
	return l
}

// Clone returns a deep copy of t, so a caller may change it freely.
func (t Topology) Clone() Topology {
	var c Topology
	for _, n := range t.Nodes {
		c.AddNode(n.clone())
	}
	for _, l := range t.Links {
		c.AddLink(l.clone())
	}
	return c
}

// Validate reports every mistake in t: bad or duplicate names, links to
// missing nodes or bridges, bad or duplicate addresses, and gateways that
// are not on a connected prefix of their node.
func (t Topology) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if len(t.Nodes) == 0 {
		bad("topology has no nodes")
	}

	// ifaces[node] holds the interface names used in node.
	ifaces := map[string]map[string]bool{}
	bridges := map[string]map[string]bool{}
	for i, n := range t.Nodes {
		where := fmt.Sprintf("node %d (%q)", i, n.Name)
		if err := checkName(n.Name); err != nil {
			bad("%s: name: %v", where, err)
		}
		if ifaces[n.Name] != nil {
			bad("%s: duplicate node name", where)
			continue
		}
		ifaces[n.Name] = map[string]bool{"lo": true}
		bridges[n.Name] = map[string]bool{}
		for _, b := range n.Bridges {
			if err := checkName(b.Name); err != nil {
				bad("%s: bridge %q: %v", where, b.Name, err)
			}
			if ifaces[n.Name][b.Name] {
				bad("%s: bridge %q: interface name used twice", where, b.Name)
			}
			ifaces[n.Name][b.Name] = true
			bridges[n.Name][b.Name] = true
		}
	}

	for i, l := range t.Links {
		where := fmt.Sprintf("link %d (%s/%s <-> %s/%s)", i, l.A.Node, l.A.Iface, l.B.Node, l.B.Iface)
		for _, ep := range []Endpoint{l.A, l.B} {
			names, ok := ifaces[ep.Node]
			if !ok {
				bad("%s: no node %q in topology", where, ep.Node)
				continue
			}
			if err := checkName(ep.Iface); err != nil {
				bad("%s: interface %q: %v", where, ep.Iface, err)
			}
			if names[ep.Iface] {
				bad("%s: interface %q used twice in node %q", where, ep.Iface, ep.Node)
			}
			names[ep.Iface] = true
			if ep.Bridge != "" {
				if !bridges[ep.Node][ep.Bridge] {
					bad("%s: node %q has no bridge %q", where, ep.Node, ep.Bridge)
				}
				if len(ep.Addrs) > 0 {
					bad("%s: %s is a port of bridge %q and cannot have addresses; put them on the bridge", where, ep.Iface, ep.Bridge)
				}
			}
		}
	}

	// Addresses must be valid and unique across the whole topology, and a
	// route's gateway must be on a prefix its node is connected to.
	owner := map[netip.Addr]string{}
	for _, n := range t.Nodes {
		var connected []netip.Prefix
		for _, ifc := range t.Ifaces(n.Name) {
			for _, p := range ifc.Addrs {
				where := fmt.Sprintf("%s/%s", n.Name, ifc.Name)
				if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
					bad("%s: invalid address %v", where, p)
					continue
				}
				if prev, dup := owner[p.Addr()]; dup {
					bad("%s: address %v already used by %s", where, p.Addr(), prev)
				}
				owner[p.Addr()] = where
				connected = append(connected, p.Masked())
			}
		}
		for _, r := range n.Routes {
			where := fmt.Sprintf("node %q: route %v via %v", n.Name, r.Dst, r.Via)
			if !r.Dst.IsValid() || !r.Via.IsValid() {
				bad("%s: destination and gateway must both be set", where)
				continue
			}
			if r.Dst.Addr().Is4() != r.Via.Is4() {
				bad("%s: destination and gateway are of different families", where)
			}
			if !slices.ContainsFunc(connected, func(p netip.Prefix) bool { return p.Contains(r.Via) }) {
				bad("%s: gateway is on none of the node's prefixes", where)
			}
		}
	}
	return errors.Join(errs...)
}

// checkName accepts names made of lowercase letters, digits and '-', at
// most MaxNameLen long: safe as interface names, in namespace names and in
// log file names.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%d chars, the limit is %d", len(name), MaxNameLen)
	}
	if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || name[0] == '-' {
		return errors.New("want lowercase letters, digits and '-', not starting with '-'")
	}
	return nil
}

// Standard returns the home-network topology of docs/testing.md (see the package
// documentation). Each call returns a fresh copy.
func Standard() Topology {
	var t Topology
	t.AddNode(Node{Name: NodeInternet, Forwarding: true})
	t.AddNode(Node{
		Name:       NodeRouter,
		Forwarding: true,
		Bridges:    []Bridge{{Name: IfaceLAN, Addrs: addrs(RouterLANAddr4+"/24", RouterLANAddr6+"/64")}},
		Routes:     defaultRoutes(InternetWANAddr4, InternetWANAddr6),
	})
	// The wan link comes first, so the router's first address is its public one.
	t.AddLink(Link{
		A: Endpoint{Node: NodeInternet, Iface: NodeRouter, Addrs: addrs(InternetWANAddr4+"/24", InternetWANAddr6+"/64")},
		B: Endpoint{Node: NodeRouter, Iface: IfaceWAN, Addrs: addrs(RouterWANAddr4+"/24", RouterWANAddr6+"/64")},
	})

	outside := []struct{ node, gw4, gw6, addr4, addr6 string }{
		{NodeOutsideDE, OutsideDEGateway4, OutsideDEGateway6, OutsideDEAddr4, OutsideDEAddr6},
		{NodeOutsideUS, OutsideUSGateway4, OutsideUSGateway6, OutsideUSAddr4, OutsideUSAddr6},
		{NodeServices, ServicesGateway4, ServicesGateway6, ServicesAddr4, ServicesAddr6},
		{NodeRoadwarrior, RoadwarriorGateway4, RoadwarriorGateway6, RoadwarriorAddr4, RoadwarriorAddr6},
	}
	for _, o := range outside {
		t.AddNode(Node{Name: o.node, Routes: defaultRoutes(o.gw4, o.gw6)})
		t.AddLink(Link{
			A: Endpoint{Node: NodeInternet, Iface: o.node, Addrs: addrs(o.gw4+"/24", o.gw6+"/64")},
			B: Endpoint{Node: o.node, Iface: IfaceHost, Addrs: addrs(o.addr4+"/24", o.addr6+"/64")},
		})
	}

	lan := []struct{ node, addr4, addr6 string }{
		{NodeNAS, NASAddr4, NASAddr6},
		{NodeHost11, Host11Addr4, Host11Addr6},
		{NodeHost12, Host12Addr4, Host12Addr6},
		{NodeClient, ClientAddr4, ClientAddr6},
	}
	for _, h := range lan {
		t.AddNode(Node{Name: h.node, Routes: defaultRoutes(RouterLANAddr4, RouterLANAddr6)})
		t.AddLink(Link{
			A: Endpoint{Node: NodeRouter, Iface: "lan-" + h.node, Bridge: IfaceLAN},
			B: Endpoint{Node: h.node, Iface: IfaceHost, Addrs: addrs(h.addr4+"/24", h.addr6+"/64")},
		})
	}
	return t
}

// addrs parses interface addresses written as "addr/bits"; it panics on a
// malformed one, so it is for literals only.
func addrs(s ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(s))
	for i, a := range s {
		ps[i] = netip.MustParsePrefix(a)
	}
	return ps
}

// defaultRoutes returns IPv4 and IPv6 default routes through gw4 and gw6.
func defaultRoutes(gw4, gw6 string) []Route {
	return []Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr(gw4)},
		{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr(gw6)},
	}
}
