package firewall

import (
	"github.com/homeedge/edge/firewall/compile"
	"github.com/homeedge/edge/firewall/nflog"
	"github.com/homeedge/edge/internal/clock"
	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// Kernel is what the service needs of nftables, for its one table (inet
// edge): the production one is the netfilter library over netlink
// (nftKernel); unit tests use a recording fake.
type Kernel interface {
	// Validate asks the kernel to check the replace of the table by rs
	// without committing it: no visible side effect.
	Validate(rs *ruleset.Ruleset) error
	// Apply replaces the table by rs in one transaction, carrying over
	// counters and run-time elements of timeout sets.
	Apply(rs *ruleset.Ruleset) error
	// UpdateSet adds put and removes del in a live set.
	UpdateSet(s *ruleset.Set, put, del []ruleset.Element) error
	// SetElements reads a live set's elements.
	SetElements(set string) ([]nft.SetElement, error)
	// Counters reads the rule counters by rule ID.
	Counters() (map[string]nft.Counter, error)
	// TableExists says whether the table is loaded.
	TableExists() (bool, error)
	// ProbeFlowtable says why the kernel has no flowtables, or nil.
	ProbeFlowtable() error
	Close() error
}

// Deps are the service's kernel and clock; New uses the real ones.
type Deps struct {
	// OpenKernel opens the kernel connection.
	OpenKernel func() (Kernel, error)
	// OpenPacketLog opens the NFLOG group that log rules send to.
	OpenPacketLog func(group uint16) (packetReader, error)
	Clock         clock.Clock
}

// packetReader is an open NFLOG group.
type packetReader interface {
	Read() (nflog.Entry, error)
	Dropped() uint64
	Close() error
}

var _ packetReader = (*nflog.Reader)(nil)

// realDeps are the kernel through netlink and the system clock.
func realDeps() Deps {
	return Deps{
		OpenKernel: func() (Kernel, error) {
			c, err := nft.Open(0)
			if err != nil {
				return nil, err
			}
			return &nftKernel{c: c}, nil
		},
		OpenPacketLog: func(group uint16) (packetReader, error) { return nflog.Open(0, group, copyRange) },
		Clock:         clock.Real(),
	}
}

// nftKernel is Kernel on the netfilter library.
type nftKernel struct{ c *nft.Conn }

var _ Kernel = (*nftKernel)(nil)

func (k *nftKernel) Validate(rs *ruleset.Ruleset) error {
	return nft.Validate(k.c, rs, nft.KeepState())
}
func (k *nftKernel) Apply(rs *ruleset.Ruleset) error { return nft.Apply(k.c, rs, nft.KeepState()) }
func (k *nftKernel) UpdateSet(s *ruleset.Set, put, del []ruleset.Element) error {
	return nft.UpdateSet(k.c, compile.Table, s, put, del)
}
func (k *nftKernel) SetElements(set string) ([]nft.SetElement, error) {
	return nft.ReadSetElements(k.c, compile.Table, set)
}
func (k *nftKernel) Counters() (map[string]nft.Counter, error) {
	return nft.ReadCounters(k.c, compile.Table)
}
func (k *nftKernel) TableExists() (bool, error) { return nft.TableExists(k.c, compile.Table) }
func (k *nftKernel) ProbeFlowtable() error      { return nft.ProbeFlowtable(k.c) }
func (k *nftKernel) Close() error               { return k.c.Close() }
