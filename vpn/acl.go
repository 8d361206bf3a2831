package vpn

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
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
	allow []netip.Prefix
}

// aclTable keeps table inet edge_vpn in line with the access rules,
// replacing it in one transaction when they change.
type aclTable struct {
	log  *slog.Logger
	last string
}

func newACLTable(log *slog.Logger) *aclTable { return &aclTable{log: log} }

// accessOf is where p may go: its own limits, else its group's, else the
// interface's default; empty means edge-vpn does not limit it.
func (s *Service) accessOf(p storedPeer) []netip.Prefix {
	if len(p.Access) > 0 {
		return p.Access
	}
	var refs []string
	for _, w := range s.cfg.Section.WireGuard {
		if w.Interface != p.Interface {
			continue
		}
		src := w.Access.Default
		if p.Group != "" {
			src = w.Access.Groups[p.Group]
		}
		for _, r := range src {
			refs = append(refs, string(r))
		}
	}
	out, _ := s.resolveAccess(refs)
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

// apply replaces the table with rules (or removes it when there are
// none), when they changed since the last apply.
func (t *aclTable) apply(rules []aclRule) error {
	fp := fingerprint(rules)
	if fp == t.last {
		return nil
	}
	c, table, err := removeTableBatch()
	if err != nil {
		return err
	}
	if len(rules) > 0 {
		c.AddTable(table)
		prio := nftables.ChainPriority(aclPriority)
		policy := nftables.ChainPolicyAccept
		fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: &prio, Policy: &policy})
		c.AddRule(&nftables.Rule{Table: table, Chain: fwd, Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: ne32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: ne32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ne32(0)},
			&expr.Verdict{Kind: expr.VerdictReturn},
		}})
		for _, r := range rules {
			chain := c.AddChain(&nftables.Chain{Name: "peer_" + r.peer, Table: table})
			for _, a := range r.addrs {
				c.AddRule(&nftables.Rule{Table: table, Chain: fwd, Exprs: append(ifaceMatch(r.iface), append(addrMatch(a, true),
					&expr.Verdict{Kind: expr.VerdictJump, Chain: chain.Name})...)})
			}
			for _, p := range r.allow {
				c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: append(prefixMatch(p, false),
					&expr.Verdict{Kind: expr.VerdictReturn})})
			}
			c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
				&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("replace table inet %s: %w", aclTableName, err)
	}
	t.last = fp
	t.log.Info("access limits applied", "table", "inet "+aclTableName, "peers", len(rules))
	return nil
}

// removeTableBatch returns a connection whose batch already removes
// table inet edge_vpn, whether or not it exists (it declares the table
// first): what a replace starts with and a delete is.
func removeTableBatch() (*nftables.Conn, *nftables.Table, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, nil, err
	}
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: aclTableName}
	c.AddTable(table)
	c.DelTable(table)
	return c, table, nil
}

// deleteACLTable removes table inet edge_vpn, if there is one. The daemon
// leaves it on stop: the limits must hold while a kernel interface, which
// outlives the daemon, still forwards.
func deleteACLTable() error {
	c, _, err := removeTableBatch()
	if err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete table inet %s: %w", aclTableName, err)
	}
	return nil
}

func ne32(v uint32) []byte {
	b := make([]byte, 4)
	nativeEndian.PutUint32(b, v)
	return b
}

func ifaceMatch(name string) []expr.Any {
	k := make([]byte, 16)
	copy(k, name)
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: k}}
}

// addrMatch matches the source (src) or destination address a.
func addrMatch(a netip.Addr, src bool) []expr.Any {
	return prefixMatch(netip.PrefixFrom(a, a.BitLen()), src)
}

// prefixMatch matches a source or destination prefix, with the family
// check nft adds.
func prefixMatch(p netip.Prefix, src bool) []expr.Any {
	fam, off, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if src {
		off = 12
	}
	if !p.Addr().Is4() {
		fam, off, n = unix.NFPROTO_IPV6, 24, 16
		if src {
			off = 8
		}
	}
	es := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
	}
	addr := p.Masked().Addr().AsSlice()
	if p.Bits() < p.Addr().BitLen() {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		es = append(es, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(es, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr})
}

var nativeEndian = binary.NativeEndian
