// Package suite holds the facts every edge binary shares: the build version,
// the daemons' names and their default sockets and metrics ports. It has no
// dependencies, so the smallest binary (edgectl) can use it.
package suite

import "runtime/debug"

// Version is the build's version, set at link time with
// -ldflags "-X github.com/homeedge/edge/internal/suite.Version=v1.2.3".
// Without it, the module version or VCS revision is used.
var Version = ""

// Daemons are the suite's daemons, in the order edgectl lists them.
var Daemons = []string{"dns", "firewall", "vpn", "lb", "proxy"}

// DefaultSocketDir holds the admin sockets, <dir>/<daemon>.sock.
const DefaultSocketDir = "/run/edge"

// MetricsPorts are the default metrics ports on 127.0.0.1.
var MetricsPorts = map[string]int{"dns": 9710, "firewall": 9711, "vpn": 9712, "lb": 9713, "proxy": 9714}

// BuildVersion returns Version, or what the Go build recorded.
func BuildVersion() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
