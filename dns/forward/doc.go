// Package forward is edge-dns's forwarding, caching resolver for inside
// clients: the questions edge-dns does not answer itself go to upstream
// resolvers over plain DNS (UDP, TCP on truncation), DNS over TLS (RFC
// 7858) or DNS over HTTPS (RFC 8484), and their answers are cached.
//
// The Cache is separate from the Forwarder so that it survives reloads:
// edge-dns makes one Cache at start and a new Forwarder over it for every
// config. The cache keys answers by name, type, class and the DO and CD
// bits; keeps positive and negative answers (RFC 2308) with their TTLs
// clamped, and failures briefly (RFC 9520); refreshes popular entries
// before they expire (prefetch); and answers from expired entries when the
// upstreams fail or are slow (serve-stale, RFC 8767). Identical questions
// in flight share one upstream query.
//
// Upstreams that fail are skipped and probed in the background until they
// answer again; the policy (failover, race, round_robin) orders the rest.
//
// The caller has decided that the client may recurse; this package never
// sees outside clients.
package forward
