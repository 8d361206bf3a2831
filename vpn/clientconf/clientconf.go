// Package clientconf renders the wg-quick client configs that edge-vpn hands
// to WireGuard road-warrior peers. A config is printed as text, as a QR code
// for a terminal, or as a PNG QR code for phones to scan.
package clientconf

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config is one road-warrior peer's client config.
type Config struct {
	// Name is the peer's name, written as a comment on the first line:
	// "# edge-vpn peer laptop".
	Name string
	// PrivateKey is the client's private key in base64. Empty means the
	// client keeps its own key (see Render).
	PrivateKey string
	// Addresses are the client's tunnel addresses, written with their
	// prefix length (10.100.0.2/32, fd00:100::2/128).
	Addresses []netip.Prefix
	// DNS are the DNS servers the client uses while the tunnel is up.
	DNS []netip.Addr
	// DNSSearch are search domains, written after the DNS servers on the
	// DNS line (wg-quick takes a name there as a search domain).
	DNSSearch []string
	// MTU is the tunnel interface's MTU; 0 omits it.
	MTU int
	// ServerPublicKey is the edge-vpn server's public key in base64.
	ServerPublicKey string
	// PresharedKey is the pair's preshared key in base64; empty omits it.
	PresharedKey string
	// Endpoint is the server's host:port, an IPv6 literal in brackets
	// ([2001:db8::1]:51820).
	Endpoint string
	// AllowedIPs are the networks routed through the tunnel: 0.0.0.0/0
	// and ::/0 for a full tunnel.
	AllowedIPs []netip.Prefix
	// Keepalive is the persistent keepalive interval; 0 omits it. It is
	// written in whole seconds.
	Keepalive time.Duration
}

// noPrivateKey is the line written in place of the PrivateKey line when
// the config carries no private key.
const noPrivateKey = "# PrivateKey = (this device's own key; edge-vpn does not have it)"

// Render returns the config in wg-quick format, ending with a newline:
//
//	# edge-vpn peer laptop
//	[Interface]
//	PrivateKey = ...
//	Address = 10.100.0.2/32, fd00:100::2/128
//	DNS = 10.100.0.1, fd00:100::1, home.arpa
//	MTU = 1420
//
//	[Peer]
//	PublicKey = ...
//	PresharedKey = ...
//	Endpoint = vpn.example.net:51820
//	AllowedIPs = 192.168.1.0/24, fd00:1::/64
//	PersistentKeepalive = 25
//
// Without a PrivateKey the [Interface] section carries, in place of the
// PrivateKey line, the comment
//
//	# PrivateKey = (this device's own key; edge-vpn does not have it)
//
// so the text stays valid wg-quick input; the user replaces the comment
// with their key. Empty lists, an empty Endpoint, an MTU or Keepalive of
// zero or less and an empty PresharedKey leave their line out; invalid
// addresses and prefixes are left out of their lists. A Keepalive that is
// not a whole number of seconds is rounded up, so a positive interval
// never turns into "off".
//
// Render does not validate; call Validate first. It never writes a line
// break that comes from a field: control characters (among them "\n" and
// "\r") and the Unicode line and paragraph separators are stripped from
// every value, so each field stays on its own line whatever it holds.
func (c Config) Render() string {
	var b strings.Builder
	b.WriteString("# edge-vpn peer")
	if name := strings.TrimSpace(clean(c.Name)); name != "" {
		b.WriteString(" ")
		b.WriteString(name)
	}
	b.WriteString("\n[Interface]\n")
	if key := clean(c.PrivateKey); key != "" {
		writeLine(&b, "PrivateKey", key)
	} else {
		b.WriteString(noPrivateKey + "\n")
	}
	writeList(&b, "Address", prefixStrings(c.Addresses))
	dns := make([]string, 0, len(c.DNS)+len(c.DNSSearch))
	for _, a := range c.DNS {
		if a.IsValid() {
			dns = append(dns, a.String())
		}
	}
	dns = append(dns, c.DNSSearch...)
	writeList(&b, "DNS", dns)
	if c.MTU > 0 {
		writeLine(&b, "MTU", strconv.Itoa(c.MTU))
	}
	b.WriteString("\n[Peer]\n")
	writeLine(&b, "PublicKey", clean(c.ServerPublicKey))
	if key := clean(c.PresharedKey); key != "" {
		writeLine(&b, "PresharedKey", key)
	}
	if ep := clean(c.Endpoint); ep != "" {
		writeLine(&b, "Endpoint", ep)
	}
	writeList(&b, "AllowedIPs", prefixStrings(c.AllowedIPs))
	if c.Keepalive > 0 {
		writeLine(&b, "PersistentKeepalive", strconv.FormatInt(keepaliveSeconds(c.Keepalive), 10))
	}
	return b.String()
}

func writeLine(b *strings.Builder, key, value string) {
	b.WriteString(key)
	b.WriteString(" = ")
	b.WriteString(value)
	b.WriteByte('\n')
}

// prefixStrings returns the valid prefixes of ps as text.
func prefixStrings(ps []netip.Prefix) []string {
	s := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.IsValid() {
			s = append(s, p.String())
		}
	}
	return s
}

// writeList writes "key = a, b, c", or nothing when no item is left
// after cleaning.
func writeList(b *strings.Builder, key string, items []string) {
	parts := make([]string, 0, len(items))
	for _, it := range items {
		if s := clean(it); s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) > 0 {
		writeLine(b, key, strings.Join(parts, ", "))
	}
}

// keepaliveSeconds returns d in whole seconds, rounded up.
func keepaliveSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}

// isBreak reports whether r may not appear in a rendered value: a control
// character or a Unicode line or paragraph separator.
func isBreak(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// clean removes the characters isBreak rejects from s.
func clean(s string) string {
	if !strings.ContainsFunc(s, isBreak) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isBreak(r) {
			return -1
		}
		return r
	}, s)
}

// Validate reports what makes the config unusable: a missing server key,
// a key that is not 44 base64 characters encoding 32 bytes, no addresses,
// no allowed IPs, an allowed IP with host bits set, a missing endpoint or
// one without a port, an invalid DNS server or search domain, an MTU or
// Keepalive out of range, and any field holding a line break or another
// control character. Each problem is an error naming the field
// ("clientconf: Endpoint: ..."); all of them are joined into the result.
// Errors about keys never repeat the key.
func (c Config) Validate() error {
	var errs []error
	add := func(field string, err error) {
		errs = append(errs, fmt.Errorf("clientconf: %s: %w", field, err))
	}

	if err := checkText(c.Name); err != nil {
		add("Name", err)
	}
	if c.PrivateKey != "" {
		if err := checkKey(c.PrivateKey); err != nil {
			add("PrivateKey", err)
		}
	}
	if len(c.Addresses) == 0 {
		add("Addresses", errors.New("no addresses"))
	}
	has6 := false
	for i, p := range c.Addresses {
		if !p.IsValid() {
			add(fmt.Sprintf("Addresses[%d]", i), errors.New("invalid prefix"))
			continue
		}
		has6 = has6 || p.Addr().Is6()
	}
	for i, a := range c.DNS {
		field := fmt.Sprintf("DNS[%d]", i)
		switch {
		case !a.IsValid():
			add(field, errors.New("invalid address"))
		case a.Zone() != "":
			add(field, fmt.Errorf("%q has a zone; DNS servers take none", a.String()))
		case a.IsUnspecified():
			add(field, fmt.Errorf("%s is the unspecified address", a))
		}
	}
	if len(c.DNSSearch) > 0 && len(c.DNS) == 0 {
		add("DNSSearch", errors.New("search domains need at least one DNS server; wg-quick ignores them without one"))
	}
	for i, d := range c.DNSSearch {
		if err := checkSearchDomain(d); err != nil {
			add(fmt.Sprintf("DNSSearch[%d]", i), err)
		}
	}
	switch {
	case c.MTU < 0 || (c.MTU > 0 && c.MTU < 576) || c.MTU > 65535:
		add("MTU", fmt.Errorf("%d is outside 576..65535", c.MTU))
	case c.MTU > 0 && c.MTU < 1280 && has6:
		add("MTU", fmt.Errorf("%d is below 1280, the minimum for the IPv6 addresses", c.MTU))
	}
	if c.ServerPublicKey == "" {
		add("ServerPublicKey", errors.New("missing"))
	} else if err := checkKey(c.ServerPublicKey); err != nil {
		add("ServerPublicKey", err)
	}
	if c.PresharedKey != "" {
		if err := checkKey(c.PresharedKey); err != nil {
			add("PresharedKey", err)
		}
	}
	if err := checkEndpoint(c.Endpoint); err != nil {
		add("Endpoint", err)
	}
	if len(c.AllowedIPs) == 0 {
		add("AllowedIPs", errors.New("no allowed IPs (0.0.0.0/0 and ::/0 for a full tunnel)"))
	}
	for i, p := range c.AllowedIPs {
		field := fmt.Sprintf("AllowedIPs[%d]", i)
		switch {
		case !p.IsValid():
			add(field, errors.New("invalid prefix"))
		case p != p.Masked():
			add(field, fmt.Errorf("%s has host bits set (the network is %s)", p, p.Masked()))
		}
	}
	if c.Keepalive < 0 {
		add("Keepalive", fmt.Errorf("%v is negative", c.Keepalive))
	} else if s := keepaliveSeconds(c.Keepalive); s > 65535 {
		add("Keepalive", fmt.Errorf("%v is over 65535 seconds", c.Keepalive))
	}
	return errors.Join(errs...)
}

// checkText rejects text that is not valid UTF-8 or holds a character
// that Render would strip.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	if i := strings.IndexFunc(s, isBreak); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("%q contains %s at byte %d", s, describeRune(r), i)
	}
	return nil
}

func describeRune(r rune) string {
	switch r {
	case '\n':
		return "a line feed"
	case '\r':
		return "a carriage return"
	}
	return fmt.Sprintf("the control character %U", r)
}

// checkKey checks a WireGuard key: 32 bytes in standard base64, which is
// 44 characters ending in "=". The key itself is not put in the error.
func checkKey(s string) error {
	if i := strings.IndexFunc(s, isBreak); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("contains %s at byte %d", describeRune(r), i)
	}
	if len(s) != 44 {
		return fmt.Errorf("is %d characters long; a key is 44 base64 characters", len(s))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 32 {
		return errors.New("is not a 32-byte key in base64 (44 characters ending in \"=\")")
	}
	return nil
}

// checkEndpoint checks host:port with a port in 1..65535 and a host that
// is an IPv4 address, a bracketed IPv6 address or a DNS name.
func checkEndpoint(s string) error {
	if s == "" {
		return errors.New("missing (host:port)")
	}
	if err := checkText(s); err != nil {
		return err
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' || r == '#' || r == ',' }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("%q contains %q, which a host:port cannot", s, r)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && strings.Contains(ae.Err, "missing port") {
			return fmt.Errorf("%q has no port", s)
		}
		return fmt.Errorf("%q is not host:port (an IPv6 address goes in brackets: [2001:db8::1]:51820)", s)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q of %q is not a number in 1..65535", port, s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if strings.HasPrefix(s, "[") {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return fmt.Errorf("%q: only an IPv6 address goes in brackets", s)
		}
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if err := checkName(host); err != nil {
		return fmt.Errorf("host %q: %w", host, err)
	}
	return nil
}

// checkSearchDomain checks a DNS name that wg-quick reads as a search
// domain rather than a server address.
func checkSearchDomain(s string) error {
	if err := checkText(s); err != nil {
		return err
	}
	if strings.Trim(s, "0123456789.") == "" {
		return fmt.Errorf("%q would be read as a DNS server address", s)
	}
	if err := checkName(s); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}

// checkName checks a DNS name: dot-separated labels of letters, digits,
// hyphens and underscores, at most 63 characters each and 253 in all, an
// optional final dot.
func checkName(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 253 {
		return fmt.Errorf("name is %d characters long; at most 253", len(name))
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > 63 {
			return fmt.Errorf("label %q is longer than 63 characters", label)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("label %q contains %q", label, r)
			}
		}
	}
	return nil
}
