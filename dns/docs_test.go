package dns

import (
	"testing"

	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/internal/doctest"
)

// TestDocExamples loads every example of docs/dns.md with the dns
// section's checks. GeoIP paths are not opened: the section is checked,
// the databases are edge-dns's business at start.
func TestDocExamples(t *testing.T) {
	doctest.CheckYAML(t, "../docs/dns.md", 8, func(b []byte) error {
		_, err := config.Parse(b, "dns.md", "dns", DefaultConfig)
		return err
	})
}
