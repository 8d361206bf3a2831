//go:build linux

package nft

import (
	"fmt"

	"github.com/homeedge/edge/netfilter/ruleset"
	"golang.org/x/sys/unix"
)

// UpdateSet changes the elements of the live set s.Name of table inet
// table in one transaction, touching nothing else: every element of put
// is added, replacing an element with the same key (so a ban's timeout
// and comment are refreshed), and every element of del is removed when
// it is there. s gives the set's type and flags, which must match the
// live set's; its Elements are ignored.
//
// The kernel keeps an existing element when it is added again, and
// refuses to delete one that is absent, so each key is first added bare
// (it exists now, whatever it was), deleted, and for put added again as
// given: nft's own idiom for "add or replace", atomic in one batch.
func UpdateSet(c *Conn, table string, s *ruleset.Set, put, del []ruleset.Element) error {
	if err := checkName("table", table); err != nil {
		return err
	}
	check := func(what string, elems []ruleset.Element) error {
		tmp := *s
		tmp.Elements = elems
		canon, err := canonElements(&tmp)
		if err != nil {
			return fmt.Errorf("update set %s %s %s: %s: %w", tableFamily, table, s.Name, what, err)
		}
		if len(canon) != len(elems) {
			return fmt.Errorf("update set %s %s %s: %s: elements overlap or repeat", tableFamily, table, s.Name, what)
		}
		return nil
	}
	if err := check("elements to add", put); err != nil {
		return err
	}
	if err := check("elements to remove", del); err != nil {
		return err
	}
	bare := func(elems []ruleset.Element) []ruleset.Element {
		out := make([]ruleset.Element, len(elems))
		for i, e := range elems {
			out[i] = ruleset.Element{Prefix: e.Prefix, Port: e.Port, PortEnd: e.PortEnd}
		}
		return out
	}
	keys := bare(append(append([]ruleset.Element(nil), put...), del...))
	var msgs []message
	var err error
	if msgs, err = appendElemMsgs(msgs, table, s, unix.NFT_MSG_NEWSETELEM, "make sure of", keys); err != nil {
		return err
	}
	if msgs, err = appendElemMsgs(msgs, table, s, unix.NFT_MSG_DELSETELEM, "remove", keys); err != nil {
		return err
	}
	if msgs, err = appendElemMsgs(msgs, table, s, unix.NFT_MSG_NEWSETELEM, "add", put); err != nil {
		return err
	}
	if err := c.send(msgs); err != nil {
		return fmt.Errorf("update set %s %s %s: %w", tableFamily, table, s.Name, err)
	}
	return nil
}

// appendElemMsgs appends NEWSETELEM or DELSETELEM messages for elems, in
// chunks of at most maxChunk kernel elements, each labelled with the
// elements it carries.
func appendElemMsgs(msgs []message, table string, s *ruleset.Set, typ uint16, verb string, elems []ruleset.Element) ([]message, error) {
	ks := kernelElements(s, elems)
	flags := uint16(0)
	if typ == unix.NFT_MSG_NEWSETELEM {
		flags = unix.NLM_F_CREATE
	}
	for len(ks) > 0 {
		n, size := 0, 0
		for n < len(ks) && n < maxChunk && size+elemSize(ks[n]) <= maxChunkBytes {
			size += elemSize(ks[n])
			n++
		}
		chunk := ks[:n]
		ks = ks[n:]
		label := fmt.Sprintf("set %s: %s elements %s to %s", s.Name, verb,
			elementKey(s, elems[chunk[0].src]), elementKey(s, elems[chunk[len(chunk)-1].src]))
		data, err := setElemMsg(familyNum, table, s.Name, 0, chunk)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		msgs = append(msgs, message{typ: typ, flags: flags, data: data, label: label})
	}
	return msgs, nil
}
