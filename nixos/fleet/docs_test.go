package fleet

import (
	"testing"

	"github.com/homeedge/edge/internal/doctest"
)

// TestDocExamples loads every inventory example of docs/fleet.md.
func TestDocExamples(t *testing.T) {
	doctest.CheckYAML(t, "../../docs/fleet.md", 2, func(b []byte) error {
		_, err := ParseInventory(b, "fleet.md")
		return err
	})
}
