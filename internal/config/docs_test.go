package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocExamples loads every yaml block of docs/config.md. A block's first
// line is "# valid" or "# error: <text the error must contain>".
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 5 {
		t.Fatalf("docs/config.md has %d yaml examples, want at least 5", len(blocks))
	}
	type empty struct{}
	for i, b := range blocks {
		body := b[1]
		first, _, _ := strings.Cut(body, "\n")
		_, err := Parse([]byte(body), "config.md", "example", func() empty { return empty{} })
		switch {
		case first == "# valid":
			if err != nil {
				t.Errorf("example %d must load, got: %v\n%s", i, err, body)
			}
		case strings.HasPrefix(first, "# error: "):
			want := strings.TrimPrefix(first, "# error: ")
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("example %d error = %v, want %q", i, err, want)
			}
		default:
			t.Errorf("example %d starts with %q; start it with \"# valid\" or \"# error: ...\"", i, first)
		}
	}
}
