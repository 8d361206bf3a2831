// Package lab builds throwaway network-namespace topologies for integration
// tests and demos: it creates namespaces joined by veth pairs, runs commands
// and daemons inside them, captures their logs, and removes everything it
// made when closed, or on the next start if the run that made it died.
//
// The standard topology ([Standard]) is the home network of docs/testing.md:
//
//	outside-de  198.51.100.0/24 --+                                     +-- nas    192.168.1.10
//	outside-us  203.0.113.0/24  --+           wan 192.0.2.0/24          +-- host11 192.168.1.11
//	services    172.31.53.0/24  --+-- internet ------------ router -----+-- host12 192.168.1.12
//	roadwarrior 172.31.77.0/24  --+         .254             .1  br-lan +-- client 192.168.1.100
//	                                                             192.168.1.1/24, fd00:1::1/64
//
// Every box is its own namespace, named edge-<runid>-<node> where runid is
// six random hex digits, so labs of parallel test packages never collide.
// Each outside network has its gateway on "internet" at .1 (IPv6 ::1) and
// its host at .10 (::10); services is where tests run pebble and upstream
// DNS. The router's wan is 192.0.2.1/24 and 2001:db8:2::1/64 with
// "internet" at .254 and ::fe; lan hosts have fd00:1::<n> next to
// 192.168.1.<n>. The exported constants name every address.
//
// "internet" routes between the outside networks and the router's wan but
// has no route to the lan prefixes: lan hosts reach the outside only once a
// firewall on the router NATs them, exactly as on a real uplink.
//
// Nothing is ever connected to the host's own namespace: veth pairs are
// created directly inside the lab namespaces, and only documentation and
// private prefixes are used.
//
// A run records itself in /run/edge-lab/<runid>.json (owner pid, nodes, log
// directory). [New] first removes the namespaces, marker and logs of runs
// whose owner died. A lab made by the edge-lab command is persistent (owner
// pid 0) and is removed only by "edge-lab down".
//
// Tests normally use [ForTest], which skips (or, with EDGE_REQUIRE_ROOT=1,
// fails) when not root and closes the lab when the test ends.
package lab
