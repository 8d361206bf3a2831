package health

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/config"
)

// Defaults of a Check. Rise 2 and fall 3 are HAProxy's defaults: one lost
// packet never moves a target, yet with a check every few seconds a dead
// one leaves within about ten.
const (
	DefaultInterval = config.Duration(5 * time.Second)
	DefaultTimeout  = config.Duration(2 * time.Second)
	DefaultRise     = 2
	DefaultFall     = 3
	DefaultPath     = "/"
	DefaultExpect   = "200-399"
)

// MinInterval is the shortest interval a config may ask for: below it a
// typo ("5ms" for "5s") would hammer the target rather than check it.
const MinInterval = config.Duration(100 * time.Millisecond)

// maxRiseFall bounds rise and fall; a larger count is a typo, and would
// make a target take hours to move.
const maxRiseFall = 100

// Check types.
const (
	TypeTCP  = "tcp"
	TypeHTTP = "http"
)

// Check is an active health check of one target address, as written in
// the config. The zero values of Interval, Timeout, Rise, Fall, Path and
// Expect mean their defaults, so a Check built in code works without
// SetDefaults; SetDefaults fills the ones that apply to every type, so
// that -check prints them.
type Check struct {
	// Type is tcp (a connect) or http (a request whose status is judged by
	// Expect). HTTPS is http with tls: true.
	Type string `yaml:"type"`
	// Port is the port checked on the target's address.
	Port uint16 `yaml:"port"`
	// Path is the http request path, with an optional query; default "/".
	Path string `yaml:"path,omitempty"`
	// Host is the http Host header and the TLS server name; default the
	// target's address.
	Host string `yaml:"host,omitempty"`
	// TLS makes an http check speak HTTPS.
	TLS bool `yaml:"tls,omitempty"`
	// Insecure skips verification of the target's TLS certificate. It is
	// meant for labs and self-signed backends: the check then proves the
	// service answers, not that it is the service it claims to be.
	Insecure bool `yaml:"insecure,omitempty"`
	// Expect lists the accepted http status codes: single codes and
	// ranges separated by commas, such as "200-399" (the default) or
	// "200,204". Redirects are not followed, so a 3xx is judged here.
	Expect StatusCodes `yaml:"expect,omitempty"`
	// Interval is the time between the starts of two checks.
	Interval config.Duration `yaml:"interval"`
	// Timeout bounds one check; it must be shorter than Interval.
	Timeout config.Duration `yaml:"timeout"`
	// Rise is how many consecutive successes bring a down target up.
	Rise int `yaml:"rise"`
	// Fall is how many consecutive failures take an up target down.
	Fall int `yaml:"fall"`
}

// SetDefaults fills in the defaults that apply to every type. The http
// fields (path, expect) stay empty so that a tcp check does not print
// them and Validate can tell a tcp check that sets them.
func (c *Check) SetDefaults() {
	c.Interval = DefaultInterval
	c.Timeout = DefaultTimeout
	c.Rise = DefaultRise
	c.Fall = DefaultFall
}

// Validate reports every problem of c through v, each at its key.
func (c *Check) Validate(v *config.Checker) {
	switch c.Type {
	case TypeTCP, TypeHTTP:
	case "":
		v.Key("type").Errorf("required; use tcp or http")
	case "https":
		v.Key("type").Errorf(`unknown type "https"; write type: http with tls: true`)
	default:
		v.Key("type").Errorf("unknown type %q; use tcp or http", c.Type)
	}
	if c.Port == 0 {
		v.Key("port").Errorf("required: the port to check on the target, 1 to 65535")
	}

	if c.Type == TypeTCP {
		// A tcp check ignores these; saying so beats a check that
		// silently tests less than its author thinks.
		for _, f := range []struct {
			key string
			set bool
		}{{"path", c.Path != ""}, {"host", c.Host != ""}, {"tls", c.TLS}, {"insecure", c.Insecure}, {"expect", c.Expect != ""}} {
			if f.set {
				v.Key(f.key).Errorf("only http checks use %s; remove it or use type: http", f.key)
			}
		}
	} else {
		if c.Path != "" {
			if err := checkPath(c.Path); err != nil {
				v.Key("path").Errorf("%v", err)
			}
		}
		if c.Host != "" {
			if _, err := netip.ParseAddr(c.Host); err != nil {
				if err := config.CheckDomainName(c.Host); err != nil {
					v.Key("host").Errorf("%v; write a host name or an address, without a port", err)
				}
			}
		}
		if c.Insecure && !c.TLS {
			v.Key("insecure").Errorf("only meaningful with tls: true (it skips certificate verification)")
		}
		if c.Expect != "" {
			if _, err := parseExpect(string(c.Expect)); err != nil {
				v.Key("expect").Errorf("%v", err)
			}
		}
	}

	intervalOK := c.Interval >= MinInterval
	if !intervalOK {
		v.Key("interval").Errorf("must be at least %s, got %s", MinInterval.D(), c.Interval.D())
	}
	switch {
	case c.Timeout <= 0:
		v.Key("timeout").Errorf("must be positive")
	case intervalOK && c.Timeout >= c.Interval:
		v.Key("timeout").Errorf("must be shorter than interval (%s), got %s; one check must end before the next starts", c.Interval.D(), c.Timeout.D())
	}
	if c.Rise < 1 || c.Rise > maxRiseFall {
		v.Key("rise").Errorf("must be 1 to %d consecutive successes, got %d", maxRiseFall, c.Rise)
	}
	if c.Fall < 1 || c.Fall > maxRiseFall {
		v.Key("fall").Errorf("must be 1 to %d consecutive failures, got %d", maxRiseFall, c.Fall)
	}
}

// withDefaults returns c with every zero default filled in: the form the
// runtime uses and compares.
func (c Check) withDefaults() Check {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Rise <= 0 {
		c.Rise = DefaultRise
	}
	if c.Fall <= 0 {
		c.Fall = DefaultFall
	}
	if c.Type == TypeHTTP {
		if c.Path == "" {
			c.Path = DefaultPath
		}
		if c.Expect == "" {
			c.Expect = DefaultExpect
		}
	}
	return c
}

// sameProbe reports whether a and b (both with defaults) probe the same
// thing and differ at most in timing and counting, so that what was
// learned under a still holds under b.
func sameProbe(a, b Check) bool {
	a.Interval, a.Timeout, a.Rise, a.Fall = 0, 0, 0, 0
	b.Interval, b.Timeout, b.Rise, b.Fall = 0, 0, 0, 0
	return a == b
}

func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must start with /", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f {
			return fmt.Errorf("path %q has a space or control character; percent-encode it", p)
		}
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Errorf("invalid path %q: %v", p, err)
	}
	if strings.Contains(p, "#") {
		return fmt.Errorf("path %q has a fragment (#); fragments are not sent to servers", p)
	}
	return nil
}

// StatusCodes is the text of Check.Expect, such as "200-399" or
// "200,204". It is its own type so that a single code written without
// quotes (expect: 200), which YAML reads as a number, is accepted as the
// text it looks like; Validate checks the syntax.
type StatusCodes string

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *StatusCodes) UnmarshalText(b []byte) error {
	*s = StatusCodes(b)
	return nil
}

// statusRange is an inclusive range of http status codes.
type statusRange struct{ lo, hi int }

// statusSet is a parsed Expect.
type statusSet []statusRange

func (s statusSet) has(code int) bool {
	for _, r := range s {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

// parseExpect reads "200-399", "200,204" or a mix such as "200,301-302".
func parseExpect(s string) (statusSet, error) {
	const hint = `; write codes and ranges separated by commas, such as "200-399" or "200,204"`
	var set statusSet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("empty item in expect %q%s", s, hint)
		}
		loText, hiText, isRange := strings.Cut(part, "-")
		lo, err := parseStatus(loText)
		if err != nil {
			return nil, fmt.Errorf("%v in expect %q%s", err, s, hint)
		}
		hi := lo
		if isRange {
			if hi, err = parseStatus(hiText); err != nil {
				return nil, fmt.Errorf("%v in expect %q%s", err, s, hint)
			}
			if hi < lo {
				return nil, fmt.Errorf("range %s in expect %q runs backwards; write the low code first", part, s)
			}
		}
		set = append(set, statusRange{lo, hi})
	}
	return set, nil
}

func parseStatus(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || len(s) != 3 {
		return 0, fmt.Errorf("%q is not a status code", s)
	}
	if n < 100 || n > 599 {
		return 0, fmt.Errorf("status %d is outside 100-599", n)
	}
	return n, nil
}
