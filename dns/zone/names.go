// Package zone holds edge-dns's authoritative data: zones and views
// compiled from config, the file and run-time records into an immutable
// snapshot, and the lookup that answers a question from it (RFC 1034
// semantics: NXDOMAIN vs NODATA, CNAME chasing, wildcards, referrals).
package zone

import (
	"strings"

	"github.com/miekg/dns"
)

// Lower folds ASCII letters only: DNS names compare case-insensitively in
// ASCII (RFC 4343), and other bytes are escapes in presentation form.
func Lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

// Fqdn returns name lower-cased with a trailing dot.
func Fqdn(name string) string {
	return Lower(dns.Fqdn(name))
}

// lowerRR lower-cases the names inside a record, so answers compare and
// compress uniformly whatever case the config used.
func lowerRR(rr dns.RR) {
	h := rr.Header()
	h.Name = Lower(h.Name)
	switch v := rr.(type) {
	case *dns.CNAME:
		v.Target = Lower(v.Target)
	case *dns.NS:
		v.Ns = Lower(v.Ns)
	case *dns.MX:
		v.Mx = Lower(v.Mx)
	case *dns.SRV:
		v.Target = Lower(v.Target)
	case *dns.PTR:
		v.Ptr = Lower(v.Ptr)
	case *dns.SOA:
		v.Ns, v.Mbox = Lower(v.Ns), Lower(v.Mbox)
	}
}

// parent returns name without its first label ("" for the root).
func parent(name string) string {
	if name == "." || name == "" {
		return ""
	}
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

// isBelow reports whether name is origin or below it.
func isBelow(name, origin string) bool {
	if origin == "." {
		return true
	}
	return name == origin || strings.HasSuffix(name, "."+origin) && dns.IsSubDomain(origin, name)
}
