package firewall

import (
	"context"
	"strings"
	"testing"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/clock"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/daemon"
	"github.com/homeedge/edge/internal/daemon/daemontest"
	"github.com/homeedge/edge/internal/nettest"
	"github.com/homeedge/edge/netfilter/nft"
)

// TestReloadFaultsInKernel is TestReloadFaults on the real kernel, in a
// throwaway namespace: after a reload fails at each prepare step in turn,
// `nft list ruleset` (counters and ban elements included), the ban list
// and the status are byte-identical to before, a table of someone else's
// is untouched.
func TestReloadFaultsInKernel(t *testing.T) {
	ns := nettest.NewNS(t, "edge-fwfault", "nft")
	ns.Run(t, "table inet foreign {\n\tchain c {\n\t\ttype filter hook input priority 10; policy accept;\n\t\tcounter accept\n\t}\n}\n", "nft", "-f", "-")
	deps := realDeps()
	deps.OpenKernel = func() (Kernel, error) {
		c, err := nft.Open(ns.Fd)
		if err != nil {
			return nil, err
		}
		return &nftKernel{c: c}, nil
	}
	deps.OpenPacketLog = noPacketLog
	deps.Clock = clock.Real()
	spec := Spec
	spec.New = func(env daemon.Env, cfg *config.File[fwconfig.Config]) (daemon.Service[fwconfig.Config], error) {
		return newService(env, cfg, deps)
	}
	var d *daemontest.Daemon
	snapshot := func() string {
		out := nettest.NFTWithoutExpiry(ns.Run(t, "", "nft", "list", "ruleset"))
		if d != nil {
			var bans []ctlapi.FWBan
			if _, err := d.Client.Do(context.Background(), "GET", ctlapi.PathFWBans, nil, &bans); err != nil {
				t.Fatalf("list bans: %v", err)
			}
			for _, b := range bans {
				out += "ban " + b.Addr + " " + b.Source + "\n"
			}
		}
		return out
	}
	d, _ = daemontest.EachStartFault(t, spec, testSite+testFirewall("ssh"), snapshot)
	if _, err := d.Client.Do(context.Background(), "POST", ctlapi.PathFWBans, ctlapi.FWBanRequest{Addr: "203.0.113.7", For: "1h"}, nil); err != nil {
		t.Fatal(err)
	}
	d.WriteConfig(testSite + testFirewall("ssh, https"))
	d.EachReloadFault(snapshot)
	after := ns.Run(t, "", "nft", "list", "ruleset")
	for _, want := range []string{"tcp dport 443", "203.0.113.7", "table inet foreign"} {
		if !strings.Contains(after, want) {
			t.Errorf("after the reload the ruleset lacks %q:\n%s", want, after)
		}
	}
	var st ctlapi.FWStatus
	d.Detail(&st)
	if run := d.Status().Config.Generation; st.Generation != run || run != 2 {
		t.Errorf("service generation %d, runner's %d; want both 2", st.Generation, run)
	}

}
