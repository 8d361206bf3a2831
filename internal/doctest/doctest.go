// Package doctest runs the examples of the docs, so they never rot: every
// ```yaml block of a page starts with "# valid" or "# error: <text>", and
// a test loads each with the parser of its part.
package doctest

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// CheckYAML loads every yaml block of the markdown file at path with
// parse and checks it against its first line. A page with fewer than min
// examples fails: examples that vanish must not pass silently.
func CheckYAML(t *testing.T, path string, min int, parse func([]byte) error) {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := yamlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < min {
		t.Fatalf("%s has %d yaml examples, want at least %d", path, len(blocks), min)
	}
	for i, b := range blocks {
		body := b[1]
		first, _, _ := strings.Cut(body, "\n")
		err := parse([]byte(body))
		switch {
		case first == "# valid":
			if err != nil {
				t.Errorf("%s example %d must load, got: %v\n%s", path, i, err, body)
			}
		case strings.HasPrefix(first, "# error: "):
			want := strings.TrimPrefix(first, "# error: ")
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s example %d error = %v, want %q", path, i, err, want)
			}
		default:
			t.Errorf("%s example %d starts with %q; start it with \"# valid\" or \"# error: ...\"", path, i, first)
		}
	}
}
