package vpn

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/internal/config"
)

// nameUpdater publishes peers as <peer>.<subdomain>.<zone> in DNS with
// RFC 2136 updates signed with TSIG (edge-dns derives the PTR records
// from the A and AAAA records).
type nameUpdater struct {
	server string
	zone   string
	sub    string
	key    string
	secret string
	alg    string
	ttl    uint32
	client *mdns.Client
}

// newNameUpdater reads the names config; nil when names are not
// published.
func newNameUpdater(cfg *config.File[Config]) (*nameUpdater, error) {
	n := cfg.Section.Names
	if n.Server == "" {
		return nil, nil
	}
	secret := n.Secret.Reveal()
	if n.SecretFile != "" {
		b, err := os.ReadFile(n.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("vpn.names.secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	zone := n.Zone
	if zone == "" {
		zone = cfg.Site.LocalDomain
	}
	return &nameUpdater{
		server: n.Server,
		zone:   mdns.Fqdn(strings.ToLower(zone)),
		sub:    n.Subdomain,
		key:    mdns.Fqdn(strings.ToLower(n.Key)),
		secret: secret,
		alg:    mdns.Fqdn(strings.ToLower(n.Algorithm)),
		ttl:    uint32(n.TTL.D() / time.Second),
		client: &mdns.Client{Net: "tcp", Timeout: 5 * time.Second},
	}, nil
}

// fqdn is the peer's DNS name, without the final dot.
func (u *nameUpdater) fqdn(peer string) string {
	return strings.TrimSuffix(peer+"."+u.sub+"."+u.zone, ".")
}

func (u *nameUpdater) send(m *mdns.Msg) error {
	m.SetTsig(u.key, u.alg, 300, time.Now().Unix())
	u.client.TsigSecret = map[string]string{u.key: u.secret}
	r, _, err := u.client.Exchange(m, u.server)
	if err != nil {
		return fmt.Errorf("update %s at %s: %w", u.zone, u.server, err)
	}
	if r.Rcode != mdns.RcodeSuccess {
		return fmt.Errorf("update %s at %s: %s", u.zone, u.server, mdns.RcodeToString[r.Rcode])
	}
	return nil
}

// sync publishes every peer's addresses, replacing what the names had,
// in one update.
func (u *nameUpdater) sync(peers []storedPeer) error {
	if len(peers) == 0 {
		return nil
	}
	m := new(mdns.Msg)
	m.SetUpdate(u.zone)
	for _, p := range peers {
		name := mdns.Fqdn(u.fqdn(p.Name))
		m.RemoveRRset([]mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET}},
			&mdns.AAAA{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET}}})
		m.Insert(addrRRs(name, p.Addresses, u.ttl))
	}
	return u.send(m)
}

// remove deletes a peer's name.
func (u *nameUpdater) remove(peer string) error {
	m := new(mdns.Msg)
	m.SetUpdate(u.zone)
	name := mdns.Fqdn(u.fqdn(peer))
	m.RemoveName([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeANY, Class: mdns.ClassANY}}})
	return u.send(m)
}

func addrRRs(name string, addrs []netip.Addr, ttl uint32) []mdns.RR {
	var rrs []mdns.RR
	for _, a := range addrs {
		if a.Is4() {
			rrs = append(rrs, &mdns.A{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: ttl}, A: a.AsSlice()})
		} else {
			rrs = append(rrs, &mdns.AAAA{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()})
		}
	}
	return rrs
}
