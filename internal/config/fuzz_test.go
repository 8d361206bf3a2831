package config

import (
	"testing"
)

// FuzzParse feeds arbitrary bytes to the config decoder: it must never panic
// or hang, and a file it accepts must render and read back.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"version": 1, "testd": {"name": "a", "items": [{"name": "b"}]}}`))
	f.Add([]byte("version: 1\ntestd: {ttl: 1w2d, from: [lan]}\nsite: {networks: {lan: [10.0.0.0/8]}}\n"))
	f.Add([]byte("version: 1\na: &a [x, x]\nb: [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml", "testd", defaults)
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("Parse error of type %T, want Errors", err)
			}
			return
		}
		out, err := cfg.Normalized()
		if err != nil {
			t.Fatalf("Normalized() error: %v", err)
		}
		if _, err := Parse(out, "normalized.yaml", "testd", defaults); err != nil {
			t.Fatalf("Parse(Normalized()) error: %v\ninput: %q\nnormalized:\n%s", err, data, out)
		}
	})
}
