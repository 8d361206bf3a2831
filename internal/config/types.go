package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes as text such as "5s",
// "1h30m", "30d" or "2w". Days and weeks are 24h and 168h.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler. Whole days print as "Nd".
func (d Duration) MarshalText() ([]byte, error) {
	v := time.Duration(d)
	if v != 0 && v%(24*time.Hour) == 0 {
		return []byte(strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"), nil
	}
	return []byte(v.String()), nil
}

// ParseDuration reads a Go duration ("90s", "1h30m") extended with the units
// d (24h) and w (7d), which may start the string: "30d", "1w2d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration; write a number with a unit, such as 30s, 5m, 12h or 7d")
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("duration %q has no unit; write it with one, such as %ss", s, s)
	}
	var total time.Duration
	rest := s
	// Leading day and week parts; Go's parser does the rest.
	for {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || (rest[i] != 'd' && rest[i] != 'w') {
			break
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("duration %q is out of range", s)
		}
		unit := 24 * time.Hour
		if rest[i] == 'w' {
			unit *= 7
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if rest != "" {
		v, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q; write a number with a unit, such as 30s, 5m, 12h or 7d", s)
		}
		total += v
	}
	if total < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return total, nil
}

// NetRef names addresses either by a network of site.networks ("lan") or
// literally, as a prefix ("10.0.0.0/8") or a single address. References to
// network names are checked against site.networks when the file is loaded.
type NetRef string

// IsName reports whether r refers to a named network rather than a literal
// prefix or address.
func (r NetRef) IsName() bool {
	_, err := r.literal()
	return err != nil
}

func (r NetRef) literal() ([]netip.Prefix, error) {
	s := string(r)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		return []netip.Prefix{p}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return nil, err
	}
	return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
}

// Prefixes resolves r against site: the network's prefixes for a name,
// the literal prefix otherwise. It reports false for an unknown name.
func (r NetRef) Prefixes(site *Site) ([]netip.Prefix, bool) {
	if p, err := r.literal(); err == nil {
		return p, true
	}
	p, ok := site.Networks[string(r)]
	return p, ok
}

// check validates a reference in the context of site.
func (r NetRef) check(site *Site) error {
	s := string(r)
	if s == "" {
		return fmt.Errorf("empty network reference; name a network of site.networks or write a prefix")
	}
	if strings.ContainsAny(s, "/.:") {
		p, err := r.literal()
		if err != nil {
			return fmt.Errorf("invalid prefix or address %q", s)
		}
		if p[0] != p[0].Masked() {
			return fmt.Errorf("prefix %s has host bits set; did you mean %s?", p[0], p[0].Masked())
		}
		return nil
	}
	if _, ok := site.Networks[s]; !ok {
		return fmt.Errorf("unknown network %q; site.networks has %s", s, quotedKeys(site.Networks))
	}
	return nil
}

// String prints d as MarshalText does: "30s", "1h0m0s", "7d".
func (d Duration) String() string {
	b, _ := d.MarshalText()
	return string(b)
}

// Redacted is what a Secret prints as.
const Redacted = "(redacted)"

// Secret is a config value that must never be printed: -check, logs and
// the admin API show Redacted in its place. Reveal gives the value to the
// code that uses it.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler: the normalized config
// (-check) and JSON carry Redacted, never the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. The placeholder
// itself is refused, so that a config copied from -check output says what
// is missing instead of failing later on a wrong secret.
func (s *Secret) UnmarshalText(b []byte) error {
	if string(b) == Redacted {
		return fmt.Errorf("%s is the placeholder -check prints for a secret; write the secret itself (or use the secret_file key)", Redacted)
	}
	*s = Secret(b)
	return nil
}
