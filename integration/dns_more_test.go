//go:build integration

// edge-dns with real GeoIP databases, health-checked lan backends, and an
// upstream resolver on the internet side.
//
//	client ----------+                                   +-- outside-de 198.51.100.10 (DE in the MMDB)
//	nas .10 :7000  --+-- br-lan -- router -- internet --+-- outside-us 203.0.113.10  (US in the MMDB)
//	host11 .11 :7000-+           edge-dns :53            +-- services 172.31.53.10: knotd for other.org
//
// app.example.net points at nas and host11, checked on tcp/7000;
// www.example.net answers by country; inside clients recurse through the
// services resolver and keep getting a cached name when it dies.

package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homeedge/edge/dns/geoip/geoiptest"
	"github.com/homeedge/edge/integration/lab"
)

func writeMMDB(t *testing.T, path, deCountry string) {
	t.Helper()
	if err := geoiptest.WriteCountry(path, []geoiptest.CountryEntry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: deCountry, Continent: "EU"},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "US", Continent: "NA"},
	}); err != nil {
		t.Fatal(err)
	}
}

const geoSection = `  geoip: {country: %[1]s/country.mmdb, check_interval: 1h}
  upstreams: {servers: [{address: "172.31.53.10:53"}], timeout: 500ms}
  cache: {serve_stale: {enabled: true, client_timeout: 300ms}}
  rrl: {responses_per_second: 0, errors_per_second: 0, queries_per_second: 0}
`

func geoConfig(dir string) string {
	cfg := dnsConfig(dir, fmt.Sprintf(geoSection, dir))
	// Country choices for www, and a checked record for the lan backends.
	cfg = strings.Replace(cfg, `            - {networks: [198.51.100.0/24], value: 192.0.2.81}
            - {networks: [203.0.113.0/24], value: 192.0.2.82}`, `            - {country: [DE], value: 192.0.2.81}
            - {country: [US], value: 192.0.2.82}`, 1)
	return strings.Replace(cfg, `        - {name: mail, type: A, value: 192.0.2.25}`, `        - {name: mail, type: A, value: 192.0.2.25}
        - {name: app, type: A, values: [192.168.1.10, 192.168.1.11], health: {type: tcp, port: 7000, interval: 200ms, timeout: 100ms, rise: 1, fall: 2}}`, 1)
}

func startBackend(t *testing.T, l *lab.Lab, node, dir string) *lab.Proc {
	t.Helper()
	cfg := filepath.Join(dir, node+".yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 1\nadmin: {socket_dir: %s/%s-run}\nstate_dir: %s/%s-state\ntestd: {listen: \"0.0.0.0:7000\", greeting: %s, metrics: {listen: \"off\"}}\n", dir, node, dir, node, node)), 0o644)
	p, err := l.Start(node, "backend", []string{bin("edge-testd"), "-config", cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitLog(ctx, "msg=ready"); err != nil {
		t.Fatal(err)
	}
	return p
}

func startUpstreamKnot(t *testing.T, l *lab.Lab, dir string) *lab.Proc {
	t.Helper()
	kdir := filepath.Join(dir, "upstream")
	os.MkdirAll(kdir, 0o755)
	os.WriteFile(filepath.Join(kdir, "other.org.zone"), []byte(`$ORIGIN other.org.
$TTL 2
@   SOA ns1 hostmaster 1 3600 900 604800 2
@   NS  ns1
ns1 A   172.31.53.10
www A   203.0.113.7
`), 0o644)
	os.WriteFile(filepath.Join(kdir, "knot.conf"), []byte(fmt.Sprintf(`server:
    rundir: "%[1]s"
    listen: %[2]s@53
    user: root:root
database:
    storage: "%[1]s/db"
template:
  - id: default
    storage: "%[1]s"
zone:
  - domain: other.org
    file: other.org.zone
`, kdir, lab.ServicesAddr4)), 0o644)
	p, err := l.Start(lab.NodeServices, "knotd-upstream", []string{"knotd", "-c", filepath.Join(kdir, "knot.conf")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDNSGeoHealthResolver(t *testing.T) {
	l := lab.ForTest(t, lab.Options{})
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	writeMMDB(t, filepath.Join(dir, "country.mmdb"), "DE")
	upstream := startUpstreamKnot(t, l, dir)
	startBackend(t, l, lab.NodeNAS, dir)
	host11 := startBackend(t, l, lab.NodeHost11, dir)
	d := &dnsLab{t: t, l: l, dir: dir, cfg: filepath.Join(dir, "edge.yaml")}
	os.WriteFile(d.cfg, []byte(geoConfig(dir)), 0o644)
	d.start()
	wan, lan := "@"+lab.RouterWANAddr4, "@"+lab.RouterLANAddr4

	// GeoIP by country, from the database; ECS follows the database too.
	if got := digShort(t, l, lab.NodeOutsideDE, wan, "www.example.net", "A"); got != "192.0.2.81" {
		t.Errorf("outside-de (DE) = %q", got)
	}
	if got := digShort(t, l, lab.NodeOutsideUS, wan, "www.example.net", "A"); got != "192.0.2.82" {
		t.Errorf("outside-us (US) = %q", got)
	}
	if got := digShort(t, l, lab.NodeOutsideUS, wan, "+subnet=198.51.100.0/24", "www.example.net", "A"); got != "192.0.2.81" {
		t.Errorf("outside-us with ECS of the DE network = %q", got)
	}

	// Health: host11's backend stops, its address leaves; it comes back.
	waitDig := func(node, want string, args ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		got := ""
		for time.Now().Before(deadline) {
			if got = strings.ReplaceAll(digShort(t, l, node, args...), "\n", " "); got == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("dig %v from %s = %q, want %q", args, node, got, want)
	}
	waitDig(lab.NodeOutsideDE, "192.168.1.10 192.168.1.11", wan, "app.example.net", "A")
	if err := host11.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitDig(lab.NodeOutsideDE, "192.168.1.10", wan, "app.example.net", "A")
	startBackend(t, l, lab.NodeHost11, dir)
	waitDig(lab.NodeOutsideDE, "192.168.1.10 192.168.1.11", wan, "app.example.net", "A")
	if !strings.Contains(d.p.Log(), `msg="health changed"`) {
		t.Errorf("no health transition logged:\n%s", d.p.Log())
	}

	// Resolver: inside clients resolve other.org through the services
	// upstream; outside clients are refused.
	if got := digShort(t, l, lab.NodeClient, lan, "www.other.org", "A"); got != "203.0.113.7" {
		t.Fatalf("inside resolution = %q", got)
	}
	if out := dig(t, l, lab.NodeOutsideDE, wan, "www.other.org", "A"); !strings.Contains(out, "status: REFUSED") {
		t.Errorf("outside recursion not refused:\n%s", out)
	}
	// The upstream dies; after the TTL the name is still answered, stale.
	upstream.Stop(5 * time.Second)
	time.Sleep(2500 * time.Millisecond)
	if got := digShort(t, l, lab.NodeClient, lan, "www.other.org", "A"); got != "203.0.113.7" {
		t.Errorf("with the upstream stopped = %q, want the stale answer", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	metrics, err := l.Run(ctx, lab.NodeRouter, "curl", "-sf", "http://127.0.0.1:9710/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(metrics), "edge_dns_cache_stale_answers_total") || strings.Contains(string(metrics), "edge_dns_cache_stale_answers_total 0\n") {
		t.Errorf("metrics do not count the stale answer:\n%s", grepLines(string(metrics), "stale"))
	}
	if !regexp.MustCompile(`edge_dns_upstream_queries_total\{rcode="(error|timeout)",upstream="172.31.53.10:53"\} [1-9]`).Match(metrics) {
		t.Errorf("metrics do not count the failed upstream query:\n%s", grepLines(string(metrics), "upstream"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestDNSReloadUnderLoad replaces the MMDB and edits the zone while
// dnsperf runs from outside: no query may fail.
func TestDNSReloadUnderLoad(t *testing.T) {
	l := lab.ForTest(t, lab.Options{})
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	writeMMDB(t, filepath.Join(dir, "country.mmdb"), "DE")
	d := &dnsLab{t: t, l: l, dir: dir, cfg: filepath.Join(dir, "edge.yaml")}
	os.WriteFile(d.cfg, []byte(geoConfig(dir)), 0o644)
	d.start()
	wan := "@" + lab.RouterWANAddr4
	queries := filepath.Join(dir, "queries.txt")
	os.WriteFile(queries, []byte("www.example.net A\nmail.example.net A\nexample.net MX\nnope.example.net A\n"), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	perf := l.Command(ctx, lab.NodeOutsideDE, "dnsperf", "-s", lab.RouterWANAddr4, "-d", queries, "-l", "6", "-Q", "3000", "-t", "2")
	var out strings.Builder
	perf.Stdout, perf.Stderr = &out, &out
	if err := perf.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	// Mid-run: the database moves the DE network to FR, the zone gains a
	// name, and SIGHUP applies both.
	writeMMDB(t, filepath.Join(dir, "country.mmdb"), "FR")
	cfg, _ := os.ReadFile(d.cfg)
	os.WriteFile(d.cfg, []byte(strings.Replace(string(cfg), `        - {name: mail, type: A, value: 192.0.2.25}`, `        - {name: mail, type: A, value: 192.0.2.25}
        - {name: new, type: A, value: 192.0.2.77}`, 1)), 0o644)
	if err := d.p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := perf.Wait(); err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Queries lost:         0 (0.00%)") {
		t.Errorf("queries were lost across the reload:\n%s", out.String())
	}
	if !strings.Contains(d.p.Log(), `msg=reloaded`) {
		t.Errorf("no reload logged:\n%s", d.p.Log())
	}
	if got := digShort(t, l, lab.NodeOutsideDE, wan, "www.example.net", "A"); got != "192.0.2.80" {
		t.Errorf("after the database moved 198.51.100.0/24 to FR: %q, want the default", got)
	}
	if got := digShort(t, l, lab.NodeOutsideDE, wan, "new.example.net", "A"); got != "192.0.2.77" {
		t.Errorf("new name after reload = %q", got)
	}
}
