package dns

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/homeedge/edge/internal/textdiff"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// volatile are the status keys whose values depend on time, paths or
// check results; the golden file keeps the keys and masks the values.
var volatile = map[string]bool{
	"since": true, "checked": true, "successes": true, "failures": true, "up": true,
	"loaded_at": true, "build_time": true, "path": true, "serial": true, "address": true, "name": true, "key": true,
	"latency_ms": true, "queries": true, "consecutive_failures": true, "port": true,
	"hits": true, "misses": true, "entries": true,
}

// racy are keys that appear once a health check has finished, which
// the test does not wait for.
var racy = map[string]bool{"last_check": true, "last_error": true, "last_error_time": true}

func mask(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if racy[k] {
				delete(x, k)
			} else if volatile[k] {
				x[k] = "…"
			} else {
				x[k] = mask(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = mask(e)
		}
	}
	return v
}

// TestStatusJSON pins the field names of the status detail, which
// `edgectl status -o json` shows and scripts read.
func TestStatusJSON(t *testing.T) {
	dir := t.TempDir()
	country, asn := writeGeo(t, dir, "DE")
	up := startUpstream(t)
	ts := startServer(t, fmt.Sprintf(`  geoip: {country: %s, asn: %s}
  upstreams: {servers: [{address: %q}]}
  views:
    - name: loopback
      match: {networks: [loop]}
      records:
        - {name: www.example.net, type: A, value: 192.168.1.10}
`, country, asn, up.addr)+zones+`        - {name: app, type: A, value: 127.0.0.1, health: {type: tcp, port: 9, interval: 1h}}
`)
	b, err := json.Marshal(ts.srv.Status())
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(mask(v), "", "  ")
	got = append(got, '\n')
	golden := filepath.Join("testdata", "status.json.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("status detail differs from %s (-want +got):\n%s", golden,
			textdiff.Unified("want", "got", textdiff.SplitLines(string(want)), textdiff.SplitLines(string(got)), 3, 1000))
	}
}
