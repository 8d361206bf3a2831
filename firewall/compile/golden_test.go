package compile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/internal/config"
	"github.com/homeedge/edge/netfilter/nft"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testdataReader serves set files from testdata by base name, so configs
// can name the absolute paths they would have on a router.
func testdataReader(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", "files", filepath.Base(name)))
}

func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", golden, diff)
	}
}

func load(t testing.TB, path string) *config.File[fwconfig.Config] {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse(data, filepath.Base(path), fwconfig.Section, fwconfig.DefaultConfig)
	if err != nil {
		t.Fatalf("config.Parse(%s) error:\n%v", path, err)
	}
	return f
}

// goldenCases are the representative configs: testdata/<name>.yaml (the
// -nooffload variant reads the same file; example is the section's
// documented example).
var goldenCases = []struct {
	name string
	opts Options
}{
	{name: "home"},
	{name: "forwards", opts: Options{Flowtable: true}},
	{name: "forwards-nooffload", opts: Options{Flowtable: false}},
	{name: "blocklist", opts: Options{Bans: []BanEntry{
		{Addr: mustAddr("198.51.100.7"), Timeout: 59 * time.Minute, Comment: "ssh brute force"},
		{Addr: mustAddr("2001:db8::bad"), Comment: "manual"},
		{Addr: mustAddr("203.0.113.9"), Timeout: -time.Second},
		{Addr: mustAddr("192.0.2.66"), Timeout: time.Hour, Comment: "also static"},
	}}},
	{name: "strict"},
	{name: "example", opts: Options{Flowtable: true}},
}

func goldenConfig(name string) string {
	if name == "example" {
		return filepath.Join("..", "fwconfig", "testdata", "example.yaml")
	}
	return filepath.Join("testdata", strings.TrimSuffix(name, "-nooffload")+".yaml")
}

// TestGolden compiles representative configs and compares the rulesets
// with testdata/<name>.golden (go test -update rewrites them).
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			f := load(t, goldenConfig(tc.name))
			tc.opts.ReadFile = testdataReader
			rs, err := Compile(f, tc.opts)
			if err != nil {
				t.Fatalf("Compile(%s) error:\n%v", tc.name, err)
			}
			checkGolden(t, filepath.Join("testdata", tc.name+".golden"), dump(rs))
			// What reviewers read and what the kernel gets: nft's own
			// syntax, from the renderer, which must accept the ruleset.
			if err := nft.Check(rs); err != nil {
				t.Errorf("nft.Check(Compile(%s)) error: %v", tc.name, err)
			}
			checkGolden(t, filepath.Join("testdata", tc.name+".nft"), nft.Render(rs))
		})
	}
}
