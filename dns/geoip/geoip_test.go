package geoip

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/homeedge/edge/dns/geoip/geoiptest"
	"github.com/homeedge/edge/internal/config"
)

var (
	countryV1 = []geoiptest.CountryEntry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "DE", Continent: "EU"},
		{Prefix: netip.MustParsePrefix("203.0.113.0/25"), Country: "JP", Continent: "AS"},
		{Prefix: netip.MustParsePrefix("203.0.113.128/25"), Country: "br", Continent: "sa"}, // lower case in the file
		{Prefix: netip.MustParsePrefix("192.0.2.0/26"), Continent: "EU"},                    // continent only
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Country: "US", Continent: "NA"},
		{Prefix: netip.MustParsePrefix("2001:db8:2::/64"), Country: "FR", Continent: "EU"},
	}
	// countryV2 moves 198.51.100.0/24 to the US: what a reload must show.
	countryV2 = []geoiptest.CountryEntry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "US", Continent: "NA"},
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Country: "US", Continent: "NA"},
	}
	asnV1 = []geoiptest.ASNEntry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/22"), ASN: 64501, Org: "Example-Org"},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), ASN: 64500},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), ASN: 64502, Org: "Six"},
	}
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func writeCountry(t testing.TB, path string, entries []geoiptest.CountryEntry) {
	t.Helper()
	if err := geoiptest.WriteCountry(path, entries); err != nil {
		t.Fatal(err)
	}
}

func writeASN(t testing.TB, path string, entries []geoiptest.ASNEntry) {
	t.Helper()
	if err := geoiptest.WriteASN(path, entries); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes data to path the way updaters do: temp file + rename.
func replaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openTest(t testing.TB, cfg Config, opts Options) *DB {
	t.Helper()
	if cfg.CheckInterval == 0 {
		// Tests drive reloads with Reload unless they test polling.
		cfg.CheckInterval = config.Duration(time.Hour)
	}
	db, err := Open(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	country, city, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeCountry(t, country, countryV1)
	if err := geoiptest.WriteCity(city, countryV1); err != nil {
		t.Fatal(err)
	}
	writeASN(t, asn, asnV1)

	tests := []struct {
		addr string
		want Result
	}{
		{"198.51.100.7", Result{Country: "DE", Continent: "EU", ASN: 64501, CountryPrefix: pfx("198.51.100.0/24"), ASNPrefix: pfx("198.51.100.0/22")}},
		{"::ffff:198.51.100.7", Result{Country: "DE", Continent: "EU", ASN: 64501, CountryPrefix: pfx("198.51.100.0/24"), ASNPrefix: pfx("198.51.100.0/22")}},
		{"198.51.101.1", Result{ASN: 64501, CountryPrefix: pfx("198.51.101.0/24"), ASNPrefix: pfx("198.51.100.0/22")}},
		{"203.0.113.5", Result{Country: "JP", Continent: "AS", ASN: 64500, CountryPrefix: pfx("203.0.113.0/25"), ASNPrefix: pfx("203.0.113.0/24")}},
		{"203.0.113.200", Result{Country: "BR", Continent: "SA", ASN: 64500, CountryPrefix: pfx("203.0.113.128/25"), ASNPrefix: pfx("203.0.113.0/24")}},
		{"192.0.2.1", Result{Continent: "EU", CountryPrefix: pfx("192.0.2.0/26"), ASNPrefix: pfx("192.0.0.0/6")}},
		{"2001:db8:1:2::3", Result{Country: "US", Continent: "NA", ASN: 64502, CountryPrefix: pfx("2001:db8:1::/48"), ASNPrefix: pfx("2001:db8::/32")}},
		{"2001:db8:2::1%eth0", Result{Country: "FR", Continent: "EU", ASN: 64502, CountryPrefix: pfx("2001:db8:2::/64"), ASNPrefix: pfx("2001:db8::/32")}},
		// Unknown addresses: no data, but the empty network around them.
		{"10.1.2.3", Result{CountryPrefix: pfx("0.0.0.0/1"), ASNPrefix: pfx("0.0.0.0/1")}},
		{"::ffff:10.1.2.3", Result{CountryPrefix: pfx("0.0.0.0/1"), ASNPrefix: pfx("0.0.0.0/1")}},
		{"2001:db8:3::1", Result{CountryPrefix: pfx("2001:db8:3::/48"), ASN: 64502, ASNPrefix: pfx("2001:db8::/32")}},
		{"fd00::1", Result{CountryPrefix: pfx("8000::/1"), ASNPrefix: pfx("8000::/1")}},
	}
	for _, db := range []struct {
		name string
		cfg  Config
	}{{"country", Config{Country: country, ASN: asn}}, {"city", Config{Country: city, ASN: asn}}} {
		t.Run(db.name, func(t *testing.T) {
			d := openTest(t, db.cfg, Options{})
			for _, tc := range tests {
				for range 2 { // the second time from the cache
					got := d.Lookup(netip.MustParseAddr(tc.addr))
					if got != tc.want {
						t.Errorf("Lookup(%s) = %+v,\nwant %+v", tc.addr, got, tc.want)
					}
				}
			}
			if got := d.Lookup(netip.Addr{}); got != (Result{}) {
				t.Errorf("Lookup(invalid) = %+v, want zero", got)
			}
		})
	}
}

// Every address in the prefix Lookup returns must get the same answer:
// edge-dns relies on it for ECS scopes and cache buckets.
func TestLookupPrefixIsUniform(t *testing.T) {
	dir := t.TempDir()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeCountry(t, country, countryV1)
	writeASN(t, asn, asnV1)
	db := openTest(t, Config{Country: country, ASN: asn}, Options{})
	for _, s := range []string{"198.51.100.7", "198.51.101.1", "192.0.2.200", "10.0.0.1", "2001:db8:1::1", "2001:db8:3::1", "fd00::1"} {
		r := db.Lookup(netip.MustParseAddr(s))
		for _, p := range []netip.Prefix{r.CountryPrefix, r.ASNPrefix} {
			if !p.Contains(netip.MustParseAddr(s)) {
				t.Errorf("Lookup(%s): prefix %s does not contain the address", s, p)
			}
		}
		for _, a := range []netip.Addr{r.CountryPrefix.Masked().Addr(), lastAddr(r.CountryPrefix)} {
			got := db.Lookup(a)
			if got.Country != r.Country || got.Continent != r.Continent || got.CountryPrefix != r.CountryPrefix {
				t.Errorf("Lookup(%s) = %+v, but Lookup(%s) in the same prefix = %+v", s, r, a, got)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// An IPv4-only database (ip_version 4) answers IPv6 addresses as unknown
// across all of IPv6. Its metadata has no description, as with some
// third-party writers, which must not keep it from loading.
func TestLookupIPv4OnlyDatabase(t *testing.T) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", IPVersion: 4, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := net.ParseCIDR("198.51.100.0/24")
	if err := tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v4.mmdb")
	replaceFile(t, path, buf.Bytes())
	db := openTest(t, Config{Country: path}, Options{})
	for _, tc := range []struct {
		addr string
		want Result
	}{
		{"198.51.100.1", Result{Country: "DE", CountryPrefix: pfx("198.51.100.0/24")}},
		{"::ffff:198.51.100.1", Result{Country: "DE", CountryPrefix: pfx("198.51.100.0/24")}},
		{"2001:db8::1", Result{CountryPrefix: pfx("::/0")}},
	} {
		if got := db.Lookup(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tc.addr, got, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeCountry(t, country, countryV1)
	writeASN(t, asn, asnV1)
	garbage := filepath.Join(dir, "garbage.mmdb")
	replaceFile(t, garbage, bytes.Repeat([]byte("not a database\n"), 100))
	empty := filepath.Join(dir, "empty.mmdb")
	replaceFile(t, empty, nil)
	truncated := filepath.Join(dir, "truncated.mmdb")
	data := readFile(t, country)
	replaceFile(t, truncated, data[:len(data)/2])
	// A bad disk block in the search tree: pointers past the data.
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	data = bytes.Clone(data)
	for i := range 64 {
		data[i] = 0xff
	}
	replaceFile(t, corrupt, data)
	nothing := filepath.Join(dir, "nothing.mmdb")
	writeCountry(t, nothing, nil)
	missing := filepath.Join(dir, "missing.mmdb")

	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"missing", Config{Country: missing}, []string{"geoip country database " + missing + ": no such file or directory"}},
		{"garbage", Config{Country: garbage}, []string{garbage, "not a MaxMind DB file"}},
		{"empty", Config{ASN: empty}, []string{"geoip asn database " + empty, "empty"}},
		{"truncated", Config{Country: truncated}, []string{truncated, "not a MaxMind DB file, or a truncated one"}},
		{"corrupt tree", Config{Country: corrupt}, []string{corrupt, "corrupt database"}},
		{"directory", Config{Country: dir}, []string{dir, "not a regular file"}},
		{"asn as country", Config{Country: asn}, []string{asn, `database type "GeoLite2-ASN" is not a country or city database`, "GeoLite2-Country"}},
		{"country as asn", Config{ASN: country}, []string{country, `database type "GeoLite2-Country" is not an ASN database`}},
		{"no networks", Config{Country: nothing}, []string{nothing, "holds no networks"}},
		{"both", Config{Country: missing, ASN: garbage}, []string{"country database " + missing, "asn database " + garbage}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(tc.cfg, Options{})
			if err == nil {
				db.Close()
				t.Fatalf("Open(%+v) succeeded, want an error", tc.cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open(%+v) = %q, want it to contain %q", tc.cfg, err, w)
				}
			}
		})
	}
}

// A search tree whose nodes share both children has 2^depth paths; opening
// it must cost time in proportion to its nodes, not its paths. Without a
// metadata description (mmdbwriter's default) Verify is skipped, so the
// probe alone meets the tree.
func TestOpenSharedNodeTree(t *testing.T) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		_, n, _ := net.ParseCIDR(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String() + "/32")
		if err := tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")}}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	nodes := r.Metadata.NodeCount
	if nodes < 128 {
		t.Fatalf("only %d nodes", nodes)
	}
	put := func(b []byte, v uint) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }
	for i := range uint(127) {
		put(data[i*6:], i+1)
		put(data[i*6+3:], i+1)
	}
	put(data[127*6:], nodes) // empty
	put(data[127*6+3:], nodes)
	path := filepath.Join(t.TempDir(), "dag.mmdb")
	replaceFile(t, path, data)
	done := make(chan error, 1)
	go func() {
		db, err := Open(Config{Country: path}, Options{})
		if err == nil {
			db.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "holds no networks") {
			t.Errorf("Open = %v, want an error saying the database holds no networks", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Open of a shared-node tree did not finish in 10s")
	}
}

func TestOpenNothingConfigured(t *testing.T) {
	db := openTest(t, Config{}, Options{Metrics: prometheus.NewRegistry()})
	if got := db.Lookup(netip.MustParseAddr("198.51.100.1")); got != (Result{}) {
		t.Errorf("Lookup = %+v, want zero", got)
	}
	if err := db.Reload(); err != nil {
		t.Errorf("Reload() = %v", err)
	}
	if got := db.Status(); len(got) != 0 {
		t.Errorf("Status() = %+v, want none", got)
	}
}

// logBuffer collects log lines safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) count(substr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), substr)
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeCountry(t, country, countryV1)
	writeASN(t, asn, asnV1)
	good := readFile(t, country)
	reg := prometheus.NewRegistry()
	var logs logBuffer
	db := openTest(t, Config{Country: country, ASN: asn}, Options{
		Metrics: reg, Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	var changes atomic.Int32
	db.OnChange(func() { changes.Add(1) })
	addr := netip.MustParseAddr("198.51.100.7")
	wantCountry := func(step, want string) {
		t.Helper()
		if got := db.Lookup(addr).Country; got != want {
			t.Errorf("%s: Lookup(%s).Country = %q, want %q", step, addr, got, want)
		}
	}
	failures := func() float64 {
		return metricValue(t, reg, "edge_dns_geoip_reloads_total", map[string]string{"db": "country", "result": "failure"})
	}

	// Nothing changed: nothing to do.
	if err := db.Reload(); err != nil {
		t.Fatalf("Reload() unchanged = %v", err)
	}
	if n := changes.Load(); n != 0 {
		t.Errorf("OnChange called %d times without a change", n)
	}

	// A new file.
	writeCountry(t, country, countryV2)
	if err := db.Reload(); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	wantCountry("new file", "US")
	if n := changes.Load(); n != 1 {
		t.Errorf("OnChange called %d times, want 1", n)
	}
	if got := metricValue(t, reg, "edge_dns_geoip_reloads_total", map[string]string{"db": "country", "result": "success"}); got != 1 {
		t.Errorf("reloads{success} = %v, want 1", got)
	}

	// Bad files keep the last good database; each distinct failure is
	// logged and counted once, but Reload reports it every time.
	v2 := readFile(t, country)
	bad := []struct {
		name  string
		apply func()
		want  string
	}{
		{"garbage", func() { replaceFile(t, country, []byte("garbage")) }, "not a MaxMind DB file"},
		{"truncated", func() { replaceFile(t, country, v2[:len(v2)-40]) }, "a truncated file?"},
		{"asn file", func() { replaceFile(t, country, readFile(t, asn)) }, "not a country or city database"},
		{"deleted", func() {
			if err := os.Remove(country); err != nil {
				t.Fatal(err)
			}
		}, "no such file or directory"},
	}
	for i, b := range bad {
		b.apply()
		for range 2 {
			err := db.Reload()
			if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), country) {
				t.Errorf("%s: Reload() = %v, want an error naming %s and containing %q", b.name, err, country, b.want)
			}
			wantCountry(b.name, "US")
		}
		if got := failures(); got != float64(i+1) {
			t.Errorf("%s: reloads{failure} = %v, want %d", b.name, got, i+1)
		}
		if got := logs.count("geoip database not reloaded"); got != i+1 {
			t.Errorf("%s: %d failure log lines, want %d:\n%s", b.name, got, i+1, logs.buf.String())
		}
		st := db.Status()[0]
		if !strings.Contains(st.LastError, b.want) || st.LastErrorAt.IsZero() {
			t.Errorf("%s: Status().LastError = %q at %v, want %q", b.name, st.LastError, st.LastErrorAt, b.want)
		}
	}
	if n := changes.Load(); n != 1 {
		t.Errorf("OnChange called %d times after failures, want still 1", n)
	}
	if !strings.Contains(logs.buf.String(), "db=country path="+country+" err=") {
		t.Errorf("failure log lacks db, path and err keys:\n%s", logs.buf.String())
	}

	// A good file again recovers and clears the error.
	replaceFile(t, country, good)
	if err := db.Reload(); err != nil {
		t.Fatalf("Reload() after recovery = %v", err)
	}
	wantCountry("recovered", "DE")
	if st := db.Status()[0]; st.LastError != "" || !st.LastErrorAt.IsZero() {
		t.Errorf("Status() after recovery = %+v, want no error", st)
	}
	if n := changes.Load(); n != 2 {
		t.Errorf("OnChange called %d times, want 2", n)
	}
	// The ASN database was never touched.
	if got := db.Lookup(addr).ASN; got != 64501 {
		t.Errorf("ASN = %d, want 64501", got)
	}
}

// An in-place rewrite (same inode) with different content is seen too.
func TestReloadInPlaceRewrite(t *testing.T) {
	dir := t.TempDir()
	country := filepath.Join(dir, "country.mmdb")
	writeCountry(t, country, countryV1)
	db := openTest(t, Config{Country: country}, Options{})
	v2 := filepath.Join(dir, "v2.mmdb")
	writeCountry(t, v2, countryV2)
	if err := os.WriteFile(country, readFile(t, v2), 0o644); err != nil {
		t.Fatal(err)
	}
	// Make sure mtime differs even on coarse-grained file systems.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(country, later, later); err != nil {
		t.Fatal(err)
	}
	if err := db.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := db.Lookup(netip.MustParseAddr("198.51.100.1")).Country; got != "US" {
		t.Errorf("after rewrite: Country = %q, want US", got)
	}
}

func TestPolling(t *testing.T) {
	dir := t.TempDir()
	country := filepath.Join(dir, "country.mmdb")
	writeCountry(t, country, countryV1)
	reg := prometheus.NewRegistry()
	var logs logBuffer
	db := openTest(t, Config{Country: country, CheckInterval: config.Duration(5 * time.Millisecond)}, Options{
		Metrics: reg, Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	changed := make(chan struct{}, 10)
	db.OnChange(func() { changed <- struct{}{} })
	addr := netip.MustParseAddr("198.51.100.7")

	writeCountry(t, country, countryV2)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the changed file was not picked up")
	}
	if got := db.Lookup(addr).Country; got != "US" {
		t.Errorf("after poll: Country = %q, want US", got)
	}

	// A bad file is reported once, however many polls see it.
	replaceFile(t, country, []byte("garbage"))
	waitFor(t, func() bool { return logs.count("geoip database not reloaded") == 1 })
	time.Sleep(50 * time.Millisecond) // about ten more polls
	if got := logs.count("geoip database not reloaded"); got != 1 {
		t.Errorf("%d failure log lines, want 1", got)
	}
	if got := metricValue(t, reg, "edge_dns_geoip_reloads_total", map[string]string{"db": "country", "result": "failure"}); got != 1 {
		t.Errorf("reloads{failure} = %v, want 1", got)
	}
	if got := db.Lookup(addr).Country; got != "US" {
		t.Errorf("after a bad file: Country = %q, want US", got)
	}

	// Close stops polling: a new file is no longer picked up.
	db.Close()
	writeCountry(t, country, countryV1)
	time.Sleep(50 * time.Millisecond)
	if got := db.Lookup(addr).Country; got != "US" {
		t.Errorf("after Close: Country = %q, want US (no polling)", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Lookups never fail or see a half-swapped database while files are
// replaced, broken and reloaded continuously (run with -race).
func TestConcurrentLookupsDuringReloads(t *testing.T) {
	dir := t.TempDir()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeCountry(t, country, countryV1)
	writeASN(t, asn, asnV1)
	v1 := readFile(t, country)
	writeCountry(t, country, countryV2)
	v2 := readFile(t, country)
	db := openTest(t, Config{Country: country, ASN: asn, CheckInterval: config.Duration(time.Millisecond)}, Options{Metrics: prometheus.NewRegistry()})
	db.OnChange(func() {})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lookups, bad, sawDE, sawUS atomic.Int64
	addrs := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("::ffff:198.51.100.8"), netip.MustParseAddr("2001:db8:1::1")}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := addrs[i%len(addrs)]
				r := db.Lookup(a)
				lookups.Add(1)
				ok := r.ASN != 0
				switch {
				case a.Is6() && !a.Is4In6():
					ok = ok && r.Country == "US" && r.CountryPrefix == pfx("2001:db8:1::/48")
				default:
					ok = ok && (r.Country == "DE" && r.Continent == "EU" || r.Country == "US" && r.Continent == "NA") &&
						r.CountryPrefix == pfx("198.51.100.0/24")
				}
				if !ok {
					bad.Add(1)
				}
				if a.Is4In6() || a.Is4() {
					if r.Country == "DE" {
						sawDE.Add(1)
					} else {
						sawUS.Add(1)
					}
				}
			}
		}()
	}
	versions := [][]byte{v1, []byte("garbage"), v2, v1[:len(v1)/3], v1, v2}
	for i := range 60 {
		replaceFile(t, country, versions[i%len(versions)])
		db.Reload() // errors expected for the bad versions
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Errorf("%d of %d lookups got a wrong answer", n, lookups.Load())
	}
	if sawDE.Load() == 0 || sawUS.Load() == 0 {
		t.Errorf("lookups saw DE %d times and US %d times; want both databases seen", sawDE.Load(), sawUS.Load())
	}
}

func TestStatus(t *testing.T) {
	dir := t.TempDir()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeCountry(t, country, countryV1)
	writeASN(t, asn, asnV1)
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	db := openTest(t, Config{Country: country, ASN: asn}, Options{})
	got := db.Status()
	if len(got) != 2 {
		t.Fatalf("Status() = %+v, want 2 databases", got)
	}
	for i, want := range []struct{ db, path, typ string }{{"country", country, "GeoLite2-Country"}, {"asn", asn, "GeoLite2-ASN"}} {
		s := got[i]
		if s.DB != want.db || s.Path != want.path || s.Type != want.typ {
			t.Errorf("Status()[%d] = %+v, want db %s path %s type %s", i, s, want.db, want.path, want.typ)
		}
		if s.BuildTime.Before(before) || s.LoadedAt.Before(before) || s.LastError != "" {
			t.Errorf("Status()[%d] = %+v, want build and load times since %v and no error", i, s, before)
		}
	}
}

func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	country, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeCountry(t, country, countryV1)
	writeASN(t, asn, asnV1)
	reg := prometheus.NewRegistry()
	db := openTest(t, Config{Country: country, ASN: asn}, Options{Metrics: reg, Namespace: "edge_test"})
	built := float64(db.Status()[0].BuildTime.Unix())
	if got := metricValue(t, reg, "edge_test_geoip_build_epoch_seconds", map[string]string{"db": "country"}); got != built {
		t.Errorf("build_epoch_seconds{country} = %v, want %v", got, built)
	}
	for _, l := range []map[string]string{
		{"db": "country", "result": "success"}, {"db": "country", "result": "failure"},
		{"db": "asn", "result": "success"}, {"db": "asn", "result": "failure"},
	} {
		if got := metricValue(t, reg, "edge_test_geoip_reloads_total", l); got != 0 {
			t.Errorf("reloads_total%v = %v, want 0", l, got)
		}
	}

	// promtool (from Debian's prometheus package, which make deps
	// installs) must accept the exposition.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = rec.Body
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed; exposition not checked")
	}

	// A second DB on the same registry (a config reload) takes the
	// metrics over; closing the old one then leaves them alone.
	db2 := openTest(t, Config{Country: country}, Options{Metrics: reg, Namespace: "edge_test"})
	db.Close()
	if got := metricValue(t, reg, "edge_test_geoip_build_epoch_seconds", map[string]string{"db": "country"}); got != built {
		t.Errorf("after takeover: build_epoch_seconds{country} = %v, want %v", got, built)
	}
	if got := metricValue(t, reg, "edge_test_geoip_build_epoch_seconds", map[string]string{"db": "asn"}); got != -1 {
		t.Errorf("after takeover: build_epoch_seconds{asn} = %v, want absent (-1)", got)
	}
	// A DB opened for a reload that is then abandoned gives the gauges
	// back to the one still answering.
	db3 := openTest(t, Config{Country: country, ASN: asn}, Options{Metrics: reg, Namespace: "edge_test"})
	if got := metricValue(t, reg, "edge_test_geoip_build_epoch_seconds", map[string]string{"db": "asn"}); got != built {
		t.Errorf("with a third DB open: build_epoch_seconds{asn} = %v, want %v", got, built)
	}
	db3.Close()
	if got := metricValue(t, reg, "edge_test_geoip_build_epoch_seconds", map[string]string{"db": "asn"}); got != -1 {
		t.Errorf("after the third DB was abandoned: build_epoch_seconds{asn} = %v, want absent (-1)", got)
	}
	if got := metricValue(t, reg, "edge_test_geoip_build_epoch_seconds", map[string]string{"db": "country"}); got != built {
		t.Errorf("after the third DB was abandoned: build_epoch_seconds{country} = %v, want %v (the second DB's)", got, built)
	}
	db2.Close()
	if got := metricValue(t, reg, "edge_test_geoip_build_epoch_seconds", map[string]string{"db": "country"}); got != -1 {
		t.Errorf("after Close: build_epoch_seconds{country} = %v, want absent (-1)", got)
	}
}

// metricValue returns the value of the counter or gauge name with exactly
// labels, or -1 if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// testSection is a daemon section holding a geoip config, to run the
// config package's strict decoding and checks on it.
type testSection struct {
	GeoIP Config `yaml:"geoip"`
}

func (s *testSection) Validate(c *config.Checker) { s.GeoIP.Validate(c.Key("geoip")) }

func TestConfig(t *testing.T) {
	def := func() testSection {
		var s testSection
		s.GeoIP.SetDefaults()
		return s
	}
	tests := []struct {
		name    string
		section string
		want    Config
		errs    []string
	}{
		{"defaults", `{}`, Config{CheckInterval: DefaultCheckInterval}, nil},
		{"full", `{geoip: {country: /var/lib/GeoIP/GeoLite2-City.mmdb, asn: /var/lib/GeoIP/GeoLite2-ASN.mmdb, check_interval: 1m}}`,
			Config{Country: "/var/lib/GeoIP/GeoLite2-City.mmdb", ASN: "/var/lib/GeoIP/GeoLite2-ASN.mmdb", CheckInterval: config.Duration(time.Minute)}, nil},
		{"relative", `{geoip: {country: GeoLite2-Country.mmdb, asn: ./asn.mmdb}}`, Config{}, []string{
			`test.geoip.country: path "GeoLite2-Country.mmdb" is not absolute`, `test.geoip.asn: path "./asn.mmdb" is not absolute`}},
		{"zero interval", `{geoip: {check_interval: 0s}}`, Config{}, []string{"test.geoip.check_interval: must be more than 0"}},
		{"unknown key", `{geoip: {city: /x.mmdb}}`, Config{}, []string{`unknown key "city"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "version: 1\nsite: {domain: example.net}\ntest: " + tc.section + "\n"
			f, err := config.Parse([]byte(doc), "edge.yaml", "test", def)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("Parse = %v", err)
				}
				if diff := cmp.Diff(tc.want, f.Section.GeoIP); diff != "" {
					t.Errorf("config differs (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tc.errs)
			}
			for _, w := range tc.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// A missing file stays recognizable to callers that wrap Open's error.
func TestMissingFileError(t *testing.T) {
	_, _, err := loadFile(filepath.Join(t.TempDir(), "x"), kindCountry)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loadFile(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestCode(t *testing.T) {
	for in, want := range map[string]string{"DE": "DE", "de": "DE", "dE": "DE", "": "", "D": "", "DEU": "", "D1": "", "é": ""} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzOpen opens arbitrary bytes as either kind of database: operators
// drop files in, so a broken or hostile file must be refused with an
// error, never crash or hang, and a file that is accepted must answer
// lookups.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	country, city, asn := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeCountry(f, country, countryV1)
	if err := geoiptest.WriteCity(city, countryV1[:2]); err != nil {
		f.Fatal(err)
	}
	writeASN(f, asn, asnV1)
	for _, p := range []string{country, city, asn} {
		data := readFile(f, p)
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(data[len(data)/2:])
	}
	f.Add([]byte("\xab\xcd\xefMaxMind.com"))
	f.Add([]byte{})
	addrs := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("::")}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range []kind{kindCountry, kindASN} {
			d, err := openBytes(bytes.Clone(data), k)
			if err != nil {
				if d != nil {
					t.Fatalf("openBytes returned a database and error %v", err)
				}
				continue
			}
			s := &source{kind: k, decodeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})}
			s.cur.Store(d)
			for _, a := range addrs {
				s.lookup(a)
				s.lookup(a) // from the cache
			}
		}
	})
}
