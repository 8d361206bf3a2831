// Package nettest provides helpers for tests that need root, network
// namespaces or other kernel facilities.
package nettest

import (
	"os"
	"testing"
)

// RequireRootEnv is the environment variable that turns a skipped root test
// into a failure. CI sets it so the integration suite can never silently
// vanish.
const RequireRootEnv = "EDGE_REQUIRE_ROOT"

// RequireRoot skips t with a reason when the process is not root, or fails
// it when EDGE_REQUIRE_ROOT=1 is set.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Unavailable(t, "needs root (run as root, or see docs/testing.md)")
}

// Unavailable skips t with reason, or fails it when EDGE_REQUIRE_ROOT=1 is
// set: a test that cannot run where it must run is a failure.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireRootEnv) == "1" {
		t.Fatalf("%s, and %s=1 forbids skipping", reason, RequireRootEnv)
	}
	t.Skip(reason)
}
