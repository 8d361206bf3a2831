//go:build linux

package compile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/homeedge/edge/internal/nettest"
	"github.com/homeedge/edge/netfilter/nft"
)

// TestGoldenInKernel applies each golden config's ruleset over netlink in
// a throwaway namespace and compares `nft list table inet edge` with the
// rendered golden text: what reviewers read in testdata/*.nft is what the
// kernel holds. Rulesets with flow offload are applied without it where
// the kernel lacks flowtables (as the daemon does), and compared with the
// render of that.
//
//	host namespace (untouched)
//	  edge-compiletest-<random>: table inet edge under test
func TestGoldenInKernel(t *testing.T) {
	ns := nettest.NewNS(t, "edge-compiletest", "nft")
	conn, err := nft.Open(ns.Fd)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	offload := nft.FlowtableSupported(conn)

	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.ReadFile = testdataReader
			rs, err := Compile(load(t, goldenConfig(tc.name)), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !offload {
				rs = nft.StripOffload(rs)
			}
			if err := nft.Apply(conn, rs); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			out := ns.Run(t, "", "nft", "list", "table", "inet", "edge")
			got := nettest.NFTNormalized(out)
			if diff := cmp.Diff(nft.Render(rs), got); diff != "" {
				t.Errorf("nft list after Apply differs from the rendered golden (-render +nft):\n%s", diff)
			}
			// The golden text is what was applied, unless offload had to
			// be stripped (the -nooffload case covers that text).
			if offload || !tc.opts.Flowtable {
				golden, err := os.ReadFile(filepath.Join("testdata", tc.name+".nft"))
				if err != nil || string(golden) != nft.Render(rs) {
					t.Errorf("testdata/%s.nft is not what was applied (%v)", tc.name, err)
				}
			}
		})
	}
}
