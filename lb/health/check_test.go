package health

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/homeedge/edge/internal/config"
)

// testSection is a daemon section holding checks the way edge-dns and
// edge-lb will: list items, which the decoder defaults.
type testSection struct {
	Checks []Check `yaml:"checks"`
}

func (s *testSection) Validate(c *config.Checker) {
	for i := range s.Checks {
		s.Checks[i].Validate(c.Key("checks").Index(i))
	}
}

func parseChecks(t *testing.T, items string) (*config.File[testSection], error) {
	t.Helper()
	return config.Parse([]byte("version: 1\nhealthtest:\n  checks:\n"+items), "/etc/edge/edge.yaml", "healthtest", func() testSection { return testSection{} })
}

func TestCheckDecode(t *testing.T) {
	f, err := parseChecks(t, `    - {type: tcp, port: 22}
    - type: http
      port: 8443
      tls: true
      host: www.example.net
      path: /healthz?full=1
      expect: "200, 204"
      interval: 10s
      timeout: 1s
      rise: 1
      fall: 5
    - {type: http, port: 80, host: "2001:db8::1", tls: true, insecure: true, interval: 100ms, timeout: 99ms}
`)
	if err != nil {
		t.Fatalf("Parse = %v, want no error", err)
	}
	want := []Check{
		{Type: "tcp", Port: 22, Interval: DefaultInterval, Timeout: DefaultTimeout, Rise: 2, Fall: 3},
		{Type: "http", Port: 8443, TLS: true, Host: "www.example.net", Path: "/healthz?full=1", Expect: "200, 204",
			Interval: config.Duration(10 * time.Second), Timeout: config.Duration(time.Second), Rise: 1, Fall: 5},
		{Type: "http", Port: 80, Host: "2001:db8::1", TLS: true, Insecure: true,
			Interval: config.Duration(100 * time.Millisecond), Timeout: config.Duration(99 * time.Millisecond), Rise: 2, Fall: 3},
	}
	if diff := cmp.Diff(want, f.Section.Checks); diff != "" {
		t.Errorf("Parse checks (-want +got):\n%s", diff)
	}

	// -check prints a tcp check without the http keys it does not use.
	out, err := f.Normalized()
	if err != nil {
		t.Fatal(err)
	}
	tcp := string(out)[strings.Index(string(out), "- type: tcp"):strings.Index(string(out), "- type: http")]
	if strings.Contains(tcp, "path") || strings.Contains(tcp, "expect") {
		t.Errorf("Normalized tcp check = %q, want no path or expect", tcp)
	}
}

func TestCheckValidate(t *testing.T) {
	const at = "healthtest.checks[0]."
	tests := []struct {
		name string
		item string
		want []string // substrings, one per expected error, in order
	}{
		{"missing type", "{port: 80}", []string{at + "type: required; use tcp or http"}},
		{"unknown type", "{type: udp, port: 53}", []string{at + `type: unknown type "udp"; use tcp or http`}},
		{"https type", "{type: https, port: 443}", []string{at + `type: unknown type "https"; write type: http with tls: true`}},
		{"port 0", "{type: tcp, port: 0}", []string{at + "port: required: the port to check on the target, 1 to 65535"}},
		{"port missing", "{type: tcp}", []string{at + "port: required"}},
		{"timeout equals interval", "{type: tcp, port: 1, interval: 5s, timeout: 5s}", []string{at + "timeout: must be shorter than interval (5s), got 5s"}},
		{"timeout over interval", "{type: tcp, port: 1, interval: 1s}", []string{at + "timeout: must be shorter than interval (1s), got 2s"}},
		{"timeout zero", "{type: tcp, port: 1, timeout: 0s}", []string{at + "timeout: must be positive"}},
		{"interval too short", "{type: tcp, port: 1, interval: 5ms, timeout: 1ms}", []string{at + "interval: must be at least 100ms, got 5ms"}},
		{"rise zero", "{type: tcp, port: 1, rise: 0}", []string{at + "rise: must be 1 to 100 consecutive successes, got 0"}},
		{"fall too big", "{type: tcp, port: 1, fall: 1000}", []string{at + "fall: must be 1 to 100 consecutive failures, got 1000"}},
		{"expect word", "{type: http, port: 80, expect: 2xx}", []string{at + `expect: "2xx" is not a status code in expect "2xx"; write codes and ranges`}},
		{"expect open range", "{type: http, port: 80, expect: 200-}", []string{at + `expect: "" is not a status code`}},
		{"expect backwards", "{type: http, port: 80, expect: 399-200}", []string{at + `expect: range 399-200 in expect "399-200" runs backwards`}},
		{"expect empty item", `{type: http, port: 80, expect: "200,,204"}`, []string{at + `expect: empty item in expect "200,,204"`}},
		{"expect out of range", "{type: http, port: 80, expect: 600}", []string{at + "expect: status 600 is outside 100-599"}},
		{"expect two digits", "{type: http, port: 80, expect: 99}", []string{at + `expect: "99" is not a status code`}},
		{"path relative", "{type: http, port: 80, path: health}", []string{at + `path: path "health" must start with /`}},
		{"path space", `{type: http, port: 80, path: "/a b"}`, []string{at + "path: path \"/a b\" has a space or control character"}},
		{"path fragment", `{type: http, port: 80, path: "/a#b"}`, []string{at + "path: path \"/a#b\" has a fragment"}},
		{"host with port", "{type: http, port: 80, host: www.example.net:80}", []string{at + "host: domain name \"www.example.net:80\" has the character ':'"}},
		{"insecure without tls", "{type: http, port: 80, insecure: true}", []string{at + "insecure: only meaningful with tls: true"}},
		{"tcp with http keys", "{type: tcp, port: 22, path: /x, tls: true}", []string{at + "path: only http checks use path", at + "tls: only http checks use tls"}},
		{"several", "{type: http, expect: x, interval: 1s, timeout: 1s, fall: 0}", []string{at + "port: required", at + "expect:", at + "timeout: must be shorter", at + "fall: must be"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseChecks(t, "    - "+tc.item+"\n")
			if err == nil {
				t.Fatalf("Parse(%s) = nil error, want %q", tc.item, tc.want)
			}
			errs, ok := err.(config.Errors)
			if !ok {
				t.Fatalf("Parse(%s) error type %T, want config.Errors", tc.item, err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("Parse(%s) gave %d errors, want %d:\n%v", tc.item, len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("Parse(%s) error %d = %q, want it to contain %q", tc.item, i, errs[i], w)
				}
			}
			// Every error points at the line of the check.
			for _, e := range errs {
				if e.Line != 4 {
					t.Errorf("Parse(%s) error %q at line %d, want line 4", tc.item, e, e.Line)
				}
			}
		})
	}
}

func TestCheckValidateAccepts(t *testing.T) {
	for _, item := range []string{
		"{type: tcp, port: 22}",
		"{type: http, port: 80}",
		`{type: http, port: 80, expect: "200"}`,
		`{type: http, port: 80, expect: "200-299,301, 302"}`,
		"{type: http, port: 443, tls: true, host: 192.0.2.1}",
		`{type: http, port: 443, tls: true, host: "::1", insecure: true}`,
		`{type: http, port: 80, path: "/status?format=json&x=%20"}`,
		"{type: http, port: 80, expect: 204}",
		"{type: tcp, port: 1, interval: 100ms, timeout: 50ms, rise: 1, fall: 1}",
		"{type: tcp, port: 65535, interval: 1h, timeout: 59m, rise: 100, fall: 100}",
	} {
		if _, err := parseChecks(t, "    - "+item+"\n"); err != nil {
			t.Errorf("Parse(%s) = %v, want no error", item, err)
		}
	}
}

func TestParseExpect(t *testing.T) {
	tests := []struct {
		in   string
		want statusSet
		yes  []int
		no   []int
	}{
		{"200-399", statusSet{{200, 399}}, []int{200, 301, 399}, []int{199, 400, 503}},
		{"200,204", statusSet{{200, 200}, {204, 204}}, []int{200, 204}, []int{201, 203, 205}},
		{" 200 , 300-302 ", statusSet{{200, 200}, {300, 302}}, []int{200, 301}, []int{303}},
		{"503", statusSet{{503, 503}}, []int{503}, []int{200}},
	}
	for _, tc := range tests {
		got, err := parseExpect(tc.in)
		if err != nil {
			t.Errorf("parseExpect(%q) = %v, want %v", tc.in, err, tc.want)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(statusRange{})); diff != "" {
			t.Errorf("parseExpect(%q) (-want +got):\n%s", tc.in, diff)
		}
		for _, code := range tc.yes {
			if !got.has(code) {
				t.Errorf("parseExpect(%q).has(%d) = false, want true", tc.in, code)
			}
		}
		for _, code := range tc.no {
			if got.has(code) {
				t.Errorf("parseExpect(%q).has(%d) = true, want false", tc.in, code)
			}
		}
	}
	for _, bad := range []string{"", "x", "200-", "-200", "200-300-400", "2000", "+200", "200,", "1e2"} {
		if got, err := parseExpect(bad); err == nil {
			t.Errorf("parseExpect(%q) = %v, want an error", bad, got)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		in, want Check
	}{
		{Check{Type: "tcp", Port: 1}, Check{Type: "tcp", Port: 1, Interval: DefaultInterval, Timeout: DefaultTimeout, Rise: 2, Fall: 3}},
		{Check{Type: "http", Port: 1}, Check{Type: "http", Port: 1, Path: "/", Expect: "200-399", Interval: DefaultInterval, Timeout: DefaultTimeout, Rise: 2, Fall: 3}},
		{Check{Type: "http", Port: 1, Path: "/x", Expect: "200", Interval: 7, Timeout: 3, Rise: 4, Fall: 5},
			Check{Type: "http", Port: 1, Path: "/x", Expect: "200", Interval: 7, Timeout: 3, Rise: 4, Fall: 5}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.in.withDefaults()); diff != "" {
			t.Errorf("%+v.withDefaults() (-want +got):\n%s", tc.in, diff)
		}
	}
	// A Check built in code means the same as one from the config.
	var fromConfig Check
	fromConfig.SetDefaults()
	fromConfig.Type, fromConfig.Port = "http", 80
	inCode := Check{Type: "http", Port: 80}
	if fromConfig.withDefaults() != inCode.withDefaults() {
		t.Errorf("withDefaults of a defaulted check = %+v, of a zero one = %+v; want equal", fromConfig.withDefaults(), inCode.withDefaults())
	}
}

func TestSameProbe(t *testing.T) {
	base := Check{Type: "http", Port: 80}.withDefaults()
	timing := base
	timing.Interval, timing.Timeout, timing.Rise, timing.Fall = 2*base.Interval, base.Timeout/2, 5, 1
	path := base
	path.Path = "/other"
	port := base
	port.Port = 81
	tests := []struct {
		name string
		b    Check
		want bool
	}{
		{"same", base, true},
		{"timing only", timing, true},
		{"path", path, false},
		{"port", port, false},
	}
	for _, tc := range tests {
		if got := sameProbe(base, tc.b); got != tc.want {
			t.Errorf("sameProbe(base, %s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStateObserve(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		results    string // s = success, f = failure
		want       string // u = up, d = down, after each result
	}{
		{"starts up and stays up", 2, 3, "sss", "uuu"},
		{"fall failures take it down", 2, 3, "fff", "uud"},
		{"a success resets the failures", 2, 3, "ffsfff", "uuuuud"},
		{"rise successes bring it back", 2, 3, "fffss", "uuddu"},
		{"a failure resets the successes", 2, 3, "fffsfss", "uuddddu"},
		{"rise 1 fall 1", 1, 1, "fsfs", "dudu"},
		{"down stays down on failures", 2, 2, "ffff", "uddd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := state{up: true}
			var got strings.Builder
			transitions := 0
			for _, r := range tc.results {
				if s.observe(r == 's', tc.rise, tc.fall) {
					transitions++
				}
				got.WriteByte("du"[boolInt(s.up)])
			}
			if got.String() != tc.want {
				t.Errorf("observe(%s) with rise %d fall %d = %s, want %s", tc.results, tc.rise, tc.fall, got.String(), tc.want)
			}
			wantTransitions := 0
			prev := 'u'
			for _, w := range tc.want {
				if w != prev {
					wantTransitions++
				}
				prev = w
			}
			if transitions != wantTransitions {
				t.Errorf("observe(%s) reported %d changes, want %d", tc.results, transitions, wantTransitions)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
