package nft

import (
	"fmt"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// tableFamily is the family of every table this package builds, reads,
// updates or deletes. The lowering adds the dependencies of an inet
// table (a meta nfproto before an address match, ICMPX rejects where
// the family is open), which an ip or ip6 table neither needs nor lists,
// so Check refuses a Ruleset of another family, and the functions that
// take a table by name take an inet table's name. Every edge daemon's
// table is inet: it holds both families' rules in one transaction.
const tableFamily = ruleset.INet

// checkFamily refuses a table family the lowering was not written for.
func checkFamily(r *ruleset.Ruleset) error {
	if f := r.TableFamily(); f != tableFamily {
		return fmt.Errorf("table %s %s: family %s; this library builds %s tables only", f, r.Table, f, tableFamily)
	}
	return nil
}

// tableRef names a table as nft does: "table inet edge".
func tableRef(name string) string { return fmt.Sprintf("table %s %s", tableFamily, name) }
