// Package repotest holds the repository's rule tests: formatting, the
// direction of imports between the suite's parts, the guard that keeps
// edgectl free of daemon code, and the one library (netfilter/) that may
// import google/nftables. Each rule has a test that feeds it a
// violation, so a rule that silently stopped checking would fail too.
package repotest
