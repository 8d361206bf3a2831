package dns

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/config"
)

// TestDocExamples loads every yaml block of docs/dns.md with the dns
// section's checks. A block's first line is "# valid" or "# error: <text>".
// GeoIP paths in examples are not opened: the section is checked, the
// databases are edge-dns's business at start.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/dns.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 8 {
		t.Fatalf("docs/dns.md has %d yaml examples, want at least 8", len(blocks))
	}
	for i, b := range blocks {
		body := b[1]
		first, _, _ := strings.Cut(body, "\n")
		_, err := config.Parse([]byte(body), "dns.md", "dns", DefaultConfig)
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
