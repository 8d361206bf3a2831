// Package health provides active health checks of addresses (tcp connects
// and http(s) requests) and a lock-free answer to "is this target up?". It
// is shared by edge-dns, whose health-checked record values drop out of
// answers while they are down, and edge-lb, whose pools skip down backends.
//
// # Life of a target
//
// A daemon keeps one Checker and hands it the full set of targets with Set
// at start and on every reload. Checks start at Set, not at the first
// query that needs them (PowerDNS's ifportup starts at the first query, so
// the first answers after a restart are unchecked). A new target's first
// check runs at once; the next one comes after a random half to one and a
// half intervals, so that targets loaded together do not check in
// lockstep, and then one per interval.
//
// A target counts as up until checks say otherwise: before its first
// result it is up, so that a restart or a reload never blackholes every
// answer while the checks come in. Fall consecutive failures take it down
// (for a target that is down at start, that is within timeout plus fall-1
// intervals); rise consecutive successes bring it back. Keys that the
// Checker does not know are up too.
//
// Set reconciles: a target whose key, address and check are unchanged
// keeps its state and its goroutine; a changed target starts over; a
// removed one stops before Set returns and its metric series are deleted,
// so no check outlives its config. Close stops everything and waits.
//
// # When every target is down
//
// Up reports one target; what a caller does when every address of a
// record set or every backend of a pool is down is the caller's policy. A
// common choice is to fail open and serve them all, because a checker
// that is itself cut off (its own uplink down) would otherwise empty every
// answer at once.
//
// # Observing
//
// Subscribe delivers every change of Up's answer, in order, so that a
// caller can rebuild what it precomputed. Each transition is logged once
// at info (keys target, addr, up, reason), never each check. Metrics,
// under Options.Namespace such as edge_dns: health_up{target},
// health_checks_total{target,result}, health_transitions_total{target,to}
// and health_check_duration_seconds.
package health
