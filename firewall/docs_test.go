package firewall

import (
	"testing"

	"github.com/homeedge/edge/firewall/compile"
	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/doctest"
	"github.com/homeedge/edge/netfilter/nft"
)

// TestDocExamples loads every example of docs/firewall.md and compiles
// it as the daemon would (set files read as empty), so that an example
// that only the compiler refuses fails too.
func TestDocExamples(t *testing.T) {
	doctest.CheckYAML(t, "../docs/firewall.md", 10, func(b []byte) error {
		f, err := config.Parse(b, "firewall.md", fwconfig.Section, fwconfig.DefaultConfig)
		if err != nil {
			return err
		}
		rs, err := compile.Compile(f, compile.Options{ReadFile: func(string) ([]byte, error) { return nil, nil }})
		if err != nil {
			return err
		}
		return nft.Check(rs)
	})
}
