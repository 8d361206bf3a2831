// Package integration holds edge's end-to-end tests. They build the real
// binaries, start them in a network-namespace lab (package lab) and drive
// them with real clients and tools. The tests carry the build tag
// "integration" and need root: run them with `make integration`, or
//
//	go test -tags integration ./integration/
//
// as root. Without root they skip, unless EDGE_REQUIRE_ROOT=1 (as in CI),
// where they fail instead.
package integration
