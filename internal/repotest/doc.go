// Package repotest holds the repository's rule tests: formatting, the
// direction of imports between the suite's parts, and the guard that keeps
// edgectl free of daemon code. Each rule has a test that feeds it a
// violation, so a rule that silently stopped checking would fail too.
package repotest
