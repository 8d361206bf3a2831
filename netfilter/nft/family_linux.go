//go:build linux

package nft

import (
	"github.com/google/nftables"
	"github.com/homeedge/edge/netfilter/ruleset"
	"golang.org/x/sys/unix"
)

// nfFamilies are the kernel's numbers (NFPROTO_*) of the families.
var nfFamilies = map[ruleset.Family]uint8{
	ruleset.IP:   unix.NFPROTO_IPV4,
	ruleset.IP6:  unix.NFPROTO_IPV6,
	ruleset.INet: unix.NFPROTO_INET,
}

// familyNum is tableFamily's number, the nfgenmsg family of every
// message this package sends.
var familyNum = nfFamilies[tableFamily]

// libTable is table name as google/nftables describes it.
func libTable(name string) *nftables.Table {
	return &nftables.Table{Name: name, Family: nftables.TableFamily(familyNum)}
}
