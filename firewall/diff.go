package firewall

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/textdiff"
	"github.com/homeedge/edge/netfilter/nft"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// Diff limits: lines of context, the most changed lines shown as a diff
// (beyond it the diff says so), and the elements listed per set and way.
const (
	diffContext  = 3
	diffMaxEdits = 4000
	diffMaxElems = 20
)

// diffText is the ruleset as nft text without set elements: the part of
// a diff that is read line by line. Elements are compared per set
// (elementDiff), which stays readable for a 100k-entry blocklist.
func diffText(rs *ruleset.Ruleset) string {
	bare := *rs
	bare.Sets = make([]*ruleset.Set, len(rs.Sets))
	for i, s := range rs.Sets {
		c := *s
		c.Elements = nil
		bare.Sets[i] = &c
	}
	return nft.Render(&bare)
}

// ruleDiff describes what changes from a to b: a unified diff of the
// rules and set declarations, then the elements added to and removed from
// each set. Ban sets and meters hold run-time state and are left out of
// the element lists. It is empty when nothing changes.
func ruleDiff(a, b *applied) string {
	var out strings.Builder
	out.WriteString(textdiff.Unified(
		fmt.Sprintf("generation %d (loaded)", a.gen), fmt.Sprintf("generation %d", b.gen),
		textdiff.SplitLines(a.text), textdiff.SplitLines(b.text), diffContext, diffMaxEdits))
	old := map[string]*ruleset.Set{}
	for _, s := range a.rs.Sets {
		old[s.Name] = s
	}
	for _, s := range b.rs.Sets {
		if s.Timeout || s.Dynamic {
			continue
		}
		var before []string
		if o := old[s.Name]; o != nil && !o.Timeout && !o.Dynamic {
			before, _ = nft.SetKeys(o)
		}
		after, _ := nft.SetKeys(s)
		added, removed := keyChanges(before, after)
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		if out.Len() == 0 {
			fmt.Fprintf(&out, "--- generation %d (loaded)\n+++ generation %d\n", a.gen, b.gen)
		}
		fmt.Fprintf(&out, "@@ set %s: elements +%d -%d (%d now) @@\n", s.Name, len(added), len(removed), len(after))
		listKeys(&out, '-', removed)
		listKeys(&out, '+', added)
	}
	return out.String()
}

// keyChanges compares two sorted-by-set-order key lists.
func keyChanges(before, after []string) (added, removed []string) {
	in := make(map[string]bool, len(before))
	for _, k := range before {
		in[k] = true
	}
	now := make(map[string]bool, len(after))
	for _, k := range after {
		now[k] = true
		if !in[k] {
			added = append(added, k)
		}
	}
	for _, k := range before {
		if !now[k] {
			removed = append(removed, k)
		}
	}
	return added, removed
}

func listKeys(out *strings.Builder, op byte, keys []string) {
	for _, k := range keys[:min(len(keys), diffMaxElems)] {
		fmt.Fprintf(out, "%c\t\t%s\n", op, k)
	}
	if n := len(keys) - diffMaxElems; n > 0 {
		fmt.Fprintf(out, "%c\t\t# and %d more\n", op, n)
	}
}

// liveView returns rs with each timeout set's elements replaced by the
// live ones (their timeout being the time they have left), for show.
func liveView(rs *ruleset.Ruleset, live map[string][]nft.SetElement) *ruleset.Ruleset {
	v := *rs
	v.Sets = slices.Clone(rs.Sets)
	for i, s := range v.Sets {
		els, ok := live[s.Name]
		if !ok {
			continue
		}
		c := *s
		c.Elements = make([]ruleset.Element, 0, len(els))
		for _, e := range els {
			el := e.Element
			if el.Timeout != 0 {
				// Whole seconds, and never 0, which would read as "for good".
				el.Timeout = max(e.Expires.Round(time.Second), time.Second)
			}
			c.Elements = append(c.Elements, el)
		}
		v.Sets[i] = &c
	}
	return &v
}
