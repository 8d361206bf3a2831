package vpn

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// aclTableName is edge-vpn's own nftables table. It holds only drops:
// the forward chain sends each restricted peer's traffic to the peer's
// chain, which returns what the peer may reach and drops the rest.
// edge-firewall's table inet edge still decides everything that passes
// here (nftables runs every table's chains; a drop anywhere is final).
const aclTableName = "edge_vpn"

// aclPriority runs the chain before edge-firewall's filter (priority 0).
const aclPriority = -5

// aclRule limits one peer: traffic from its addresses on its interface
// may reach only allow.
type aclRule struct {
	peer  string
	iface string
	addrs []netip.Addr
	allow []accessEntry
}

// aclTable keeps table inet edge_vpn in line with the access rules,
// replacing it in one transaction when they change.
type aclTable struct {
	log *slog.Logger
	// last is the fingerprint of the rules the table holds.
	last string
	// open connects to the nftables the table lives in; tests point it
	// at a throwaway namespace.
	open func() (*nft.Conn, error)
	// loaded is the table last applied, nil when there is none; a drift
	// check compares the kernel's with it.
	loaded *ruleset.Ruleset
}

func newACLTable(log *slog.Logger) *aclTable {
	return &aclTable{log: log, open: func() (*nft.Conn, error) { return nft.Open(0) }}
}

// accessOf is where p may go: its own limits, else its group's, else the
// interface's default; empty means edge-vpn does not limit it.
func (s *Service) accessOf(p storedPeer) []accessEntry {
	if len(p.Access) > 0 {
		return p.Access
	}
	var out []accessEntry
	for _, w := range s.cfg.Section.WireGuard {
		if w.Interface != p.Interface {
			continue
		}
		src := w.Access.Default
		if p.Group != "" {
			src = w.Access.Groups[p.Group]
		}
		for _, r := range src {
			// The config's entries were checked when it was loaded.
			es, _ := parseAccess(string(r), &s.cfg.Site)
			out = append(out, es...)
		}
	}
	return out
}

// accessRules are the limits of every active peer that has some.
func (s *Service) accessRules(peers []storedPeer, now time.Time) []aclRule {
	var out []aclRule
	for _, p := range peers {
		if !p.active(now) {
			continue
		}
		allow := s.accessOf(p)
		if len(allow) == 0 {
			continue
		}
		out = append(out, aclRule{peer: p.Name, iface: p.Interface, addrs: p.Addresses, allow: allow})
	}
	slices.SortFunc(out, func(a, b aclRule) int { return strings.Compare(a.peer, b.peer) })
	return out
}

func fingerprint(rules []aclRule) string {
	h := sha256.New()
	for _, r := range rules {
		fmt.Fprintf(h, "%s %s %v %v\n", r.peer, r.iface, r.addrs, r.allow)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// aclRuleset is table inet edge_vpn for rules: a forward chain that
// lets established and related traffic pass and sends each limited
// peer's traffic (by interface and source address) to the peer's chain,
// which returns what the peer may reach and counts and drops the rest.
func aclRuleset(rules []aclRule) *ruleset.Ruleset {
	fwd := &ruleset.Chain{Name: "forward", Hook: ruleset.Forward, Type: ruleset.Filter, Priority: aclPriority, Policy: ruleset.Accept,
		Rules: []*ruleset.Rule{{ID: "established", Matches: []ruleset.Match{{Kind: ruleset.CtState, Values: []string{"established", "related"}}}, Verdict: ruleset.Return}}}
	rs := &ruleset.Ruleset{Family: ruleset.INet, Table: aclTableName, Chains: []*ruleset.Chain{fwd}}
	for _, r := range rules {
		chain := &ruleset.Chain{Name: "peer_" + r.peer}
		from := byFamily(r.addrs, func(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) })
		for _, fam := range []ruleset.Family{ruleset.IP, ruleset.IP6} {
			if len(from[fam]) > 0 {
				fwd.Rules = append(fwd.Rules, &ruleset.Rule{
					ID:      fmt.Sprintf("peer %s (%s)", r.peer, fam),
					Matches: []ruleset.Match{{Kind: ruleset.IIFName, Names: []string{r.iface}}, {Kind: ruleset.SAddr, Family: fam, Prefixes: from[fam]}},
					Verdict: ruleset.Jump, Target: chain.Name,
				})
			}
			chain.Rules = append(chain.Rules, allowRules(r.peer, fam, r.allow)...)
		}
		chain.Rules = append(chain.Rules, &ruleset.Rule{ID: fmt.Sprintf("peer %s: the rest", r.peer), Counter: true, Verdict: ruleset.Drop})
		rs.Chains = append(rs.Chains, chain)
	}
	return rs
}

// allowRules are the returns of a peer's chain for the destinations of
// family fam in allow: one for those the peer may reach whole, then one
// for each service (a protocol and its ports, as the entry writes it,
// which also names the rule) with every destination that offers it.
func allowRules(peer string, fam ruleset.Family, allow []accessEntry) []*ruleset.Rule {
	var whole []netip.Prefix
	to := map[string][]netip.Prefix{}
	services := map[string]accessService{}
	for _, e := range allow {
		if ruleset.FamilyOf(e.To.Addr()) != fam {
			continue
		}
		if len(e.Services) == 0 {
			whole = append(whole, e.To)
			continue
		}
		for _, sv := range e.Services {
			to[sv.String()] = append(to[sv.String()], e.To)
			services[sv.String()] = sv
		}
	}
	var out []*ruleset.Rule
	if len(whole) > 0 {
		out = append(out, &ruleset.Rule{
			ID:      fmt.Sprintf("peer %s: allowed (%s)", peer, fam),
			Matches: []ruleset.Match{{Kind: ruleset.DAddr, Family: fam, Prefixes: whole}},
			Verdict: ruleset.Return,
		})
	}
	for _, name := range slices.Sorted(maps.Keys(to)) {
		sv := services[name]
		var m ruleset.Match
		switch {
		case sv.Proto == "icmp" && fam == ruleset.IP6:
			m = ruleset.Match{Kind: ruleset.L4Proto, Protos: []string{"ipv6-icmp"}}
		case len(sv.Ports) == 0:
			m = ruleset.Match{Kind: ruleset.L4Proto, Protos: []string{sv.Proto}}
		default:
			m = ruleset.Match{Kind: ruleset.DPort, Protos: []string{sv.Proto}, Ports: sv.Ports}
		}
		out = append(out, &ruleset.Rule{
			ID:      fmt.Sprintf("peer %s: allowed %s (%s)", peer, name, fam),
			Matches: []ruleset.Match{{Kind: ruleset.DAddr, Family: fam, Prefixes: to[name]}, m},
			Verdict: ruleset.Return,
		})
	}
	return out
}

// byFamily splits xs into prefixes of each address family.
func byFamily[T any](xs []T, prefix func(T) netip.Prefix) map[ruleset.Family][]netip.Prefix {
	out := map[ruleset.Family][]netip.Prefix{}
	for _, x := range xs {
		p := prefix(x)
		fam := ruleset.FamilyOf(p.Addr())
		out[fam] = append(out[fam], p)
	}
	return out
}

// aclPlan is a checked change of table inet edge_vpn: prepare makes it
// without touching the kernel's tables, commit carries it out.
type aclPlan struct {
	// rs is the new table; nil removes the table.
	rs *ruleset.Ruleset
	// fp is the rules' fingerprint; peers how many are limited.
	fp    string
	peers int
}

// plan builds the table for rules and checks it (nft.Check); nil means
// the table already holds rules.
func (t *aclTable) plan(rules []aclRule) (*aclPlan, error) {
	fp := fingerprint(rules)
	if fp == t.last {
		return nil, nil
	}
	return t.build(rules, fp)
}

// build is plan without the shortcut for unchanged rules.
func (t *aclTable) build(rules []aclRule, fp string) (*aclPlan, error) {
	p := &aclPlan{fp: fp, peers: len(rules)}
	if len(rules) > 0 {
		p.rs = aclRuleset(rules)
		if err := nft.Check(p.rs); err != nil {
			return nil, fmt.Errorf("table inet %s: %w", aclTableName, err)
		}
	}
	return p, nil
}

// prepare is the first half of apply, for a two-phase reload: it builds
// the table for rules and has the kernel check it (nft.Validate), with no
// visible effect. A nil plan means there is nothing to change.
func (t *aclTable) prepare(rules []aclRule) (*aclPlan, error) {
	p, err := t.plan(rules)
	if err != nil || p == nil || p.rs == nil {
		return p, err
	}
	c, err := t.open()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := nft.Validate(c, p.rs, nft.KeepState()); err != nil {
		return nil, err
	}
	return p, nil
}

// commit replaces the table with p's (keeping the drop counters of the
// peers that stay), or removes it when p has none.
func (t *aclTable) commit(p *aclPlan) error {
	if p == nil {
		return nil
	}
	c, err := t.open()
	if err != nil {
		return err
	}
	defer c.Close()
	if p.rs == nil {
		err = nft.Delete(c, aclTableName)
	} else {
		err = nft.Apply(c, p.rs, nft.KeepState())
	}
	if err != nil {
		return err
	}
	t.last, t.loaded = p.fp, p.rs
	t.log.Info("access limits applied", "table", "inet "+aclTableName, "peers", p.peers)
	return nil
}

// drift says how the kernel's table differs from the one last applied,
// or "": gone, or rules missing or added (by rule ID).
func (t *aclTable) drift() (string, error) {
	if t.loaded == nil {
		return "", nil
	}
	c, err := t.open()
	if err != nil {
		return "", err
	}
	defer c.Close()
	ok, err := nft.TableExists(c, aclTableName)
	if err != nil || !ok {
		return "table gone", err
	}
	live, err := nft.ReadRuleIDs(c, aclTableName)
	if err != nil {
		return "", err
	}
	want := map[string]int{}
	for _, ch := range t.loaded.Chains {
		for _, r := range ch.Rules {
			want[r.ID]++
		}
	}
	if !maps.Equal(want, live) {
		return "rules changed", nil
	}
	return "", nil
}

// apply replaces the table with rules (or removes it when there are
// none), when they changed since the last apply.
//
// With the rules unchanged it checks that the kernel still holds the
// table: one deleted (`nft flush ruleset`) or changed by someone else would
// let limited peers reach everything, so it is put back, logged and
// counted; restored says why it was.
func (t *aclTable) apply(rules []aclRule) (restored string, err error) {
	p, err := t.plan(rules)
	if err != nil {
		return "", err
	}
	if p == nil {
		why, err := t.drift()
		if err != nil || why == "" {
			return "", err
		}
		t.log.Warn("table inet "+aclTableName+" changed behind edge-vpn's back; restoring the access limits", "what", why)
		if p, err = t.build(rules, t.last); err != nil {
			return why, err
		}
		restored = why
	}
	return restored, t.commit(p)
}

// deleteACLTable removes table inet edge_vpn, if there is one. The daemon
// leaves it on stop: the limits must hold while a kernel interface, which
// outlives the daemon, still forwards.
func deleteACLTable() error {
	c, err := nft.Open(0)
	if err != nil {
		return err
	}
	defer c.Close()
	return nft.Delete(c, aclTableName)
}
