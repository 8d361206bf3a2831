package config

import (
	"testing"

	"github.com/homeedge/edge/internal/doctest"
)

// TestDocExamples loads every example of docs/config.md.
func TestDocExamples(t *testing.T) {
	type empty struct{}
	doctest.CheckYAML(t, "../../docs/config.md", 5, func(b []byte) error {
		_, err := Parse(b, "config.md", "example", func() empty { return empty{} })
		return err
	})
}
