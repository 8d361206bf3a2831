//go:build linux

package nft

import (
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/google/nftables"
)

// Delete removes table inet table and everything in it, in one
// transaction that declares the table first, so an absent table is not
// an error. No other table is touched.
func Delete(c *Conn, table string) error {
	if err := checkName("table", table); err != nil {
		return err
	}
	b, err := newBuilder(table)
	if err != nil {
		return err
	}
	if err := b.libAdd(tableRef(table), func(lc *nftables.Conn) error { lc.AddTable(b.t); return nil }); err != nil {
		return err
	}
	if err := b.libAdd("delete "+tableRef(table), func(lc *nftables.Conn) error { lc.DelTable(b.t); return nil }); err != nil {
		return err
	}
	if err := c.send(b.msgs); err != nil {
		return fmt.Errorf("delete %s: %w", tableRef(table), err)
	}
	return nil
}

// ProbeFlowtable tries to create a flowtable in a scratch table that the
// same transaction deletes again, so nothing stays behind either way. It
// returns nil if the kernel supports flowtables, else the kernel's
// answer (no NF_FLOW_TABLE: "no such file or directory").
func ProbeFlowtable(c *Conn) error {
	name := fmt.Sprintf("edge_probe_%d_%d", os.Getpid(), rand.Uint32())
	b, err := newBuilder(name)
	if err != nil {
		return err
	}
	prio := nftables.FlowtablePriority(0)
	steps := []struct {
		label string
		fn    func(*nftables.Conn)
	}{
		{"probe " + tableRef(name), func(lc *nftables.Conn) { lc.AddTable(b.t) }},
		{"probe flowtable", func(lc *nftables.Conn) {
			lc.AddFlowtable(&nftables.Flowtable{Table: b.t, Name: "probe", Hooknum: nftables.FlowtableHookIngress, Priority: &prio})
		}},
		{"delete probe " + tableRef(name), func(lc *nftables.Conn) { lc.DelTable(b.t) }},
	}
	for _, s := range steps {
		if err := b.libAdd(s.label, func(lc *nftables.Conn) error { s.fn(lc); return nil }); err != nil {
			return err
		}
	}
	return c.send(b.msgs)
}

// FlowtableSupported reports whether the kernel can create flowtables;
// when it cannot, the daemon drops offload (StripOffload) and says so
// once.
func FlowtableSupported(c *Conn) bool {
	return ProbeFlowtable(c) == nil
}
