package vpn

import (
	"testing"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/doctest"
)

// TestDocExamples loads every example of docs/vpn.md with the vpn
// section's checks.
func TestDocExamples(t *testing.T) {
	doctest.CheckYAML(t, "../docs/vpn.md", 6, func(b []byte) error {
		_, err := config.Parse(b, "vpn.md", Section, DefaultConfig)
		return err
	})
}
