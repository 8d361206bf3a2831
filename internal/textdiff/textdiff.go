// Package textdiff computes line diffs and prints them in unified format.
//
// Lines finds a shortest edit script with Myers' O(ND) algorithm after
// trimming the common prefix and suffix, so two long listings that differ
// in a few lines cost little more than one pass over them. Unified prints
// the script the way GNU diff -u does, minus the timestamps in the headers.
package textdiff

import (
	"fmt"
	"strings"
)

// Edit is one line of a diff: Op is ' ' (kept), '-' (only in a) or '+'
// (only in b).
type Edit struct {
	Op   byte
	Line string
}

// Lines returns the edits turning a into b: a shortest edit script (Myers'
// O(ND) algorithm), deletions before insertions within a changed run. When
// the two differ by more than maxEdits lines (maxEdits <= 0: no limit), it
// returns ok=false and no edits, so that callers can say "everything
// changed" instead of spending quadratic time.
//
// The common prefix and suffix are trimmed first. On the rest, of lengths
// N and M with D = the number of '-' and '+' edits, the search takes
// O((N+M)*D) time and keeps a trace of the furthest-reaching points of
// every step, D*D integers, which is at most O((N+M)*D). That memory is
// bounded only because maxEdits bounds D: with no limit, two unrelated
// listings of a few thousand lines each need tens of millions of integers.
func Lines(a, b []string, maxEdits int) (edits []Edit, ok bool) {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]

	limit := len(ma) + len(mb)
	if maxEdits > 0 && maxEdits < limit {
		limit = maxEdits
	}
	if abs(len(ma)-len(mb)) > limit {
		return nil, false
	}
	mid, ok := myers(ma, mb, limit)
	if !ok {
		return nil, false
	}

	edits = make([]Edit, 0, pre+len(mid)+suf)
	for _, l := range a[:pre] {
		edits = append(edits, Edit{' ', l})
	}
	edits = append(edits, mid...)
	for _, l := range a[len(a)-suf:] {
		edits = append(edits, Edit{' ', l})
	}
	deletionsFirst(edits)
	return edits, true
}

// myers returns a shortest edit script turning a into b, or ok=false when
// it needs more than dmax edits.
//
// V[k] holds the furthest x reached on diagonal k = x-y. After step d the
// values for k = -d..d are appended to trace, so step d starts at index
// d*d and diagonal k of step d is trace[d*d+d+k].
func myers(a, b []string, dmax int) ([]Edit, bool) {
	n, m := len(a), len(b)
	switch {
	case n == 0 && m == 0:
		return nil, true
	case n == 0 || m == 0:
		edits := make([]Edit, 0, n+m)
		for _, l := range a {
			edits = append(edits, Edit{'-', l})
		}
		for _, l := range b {
			edits = append(edits, Edit{'+', l})
		}
		return edits, true
	}

	off := dmax + 1
	v := make([]int, 2*dmax+3)
	var trace []int
	for d := 0; d <= dmax; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down from diagonal k+1: insertion
			} else {
				x = v[off+k-1] + 1 // right from diagonal k-1: deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(a, b, trace, d), true
			}
		}
		trace = append(trace, v[off-d:off+d+1]...)
	}
	return nil, false
}

// backtrack walks the trace of myers back from (len(a), len(b)), reached
// at step dEnd, and returns the edits in forward order.
func backtrack(a, b []string, trace []int, dEnd int) []Edit {
	x, y := len(a), len(b)
	rev := make([]Edit, 0, x+y)
	for d := dEnd; d > 0; d-- {
		prev := trace[(d-1)*(d-1) : d*d] // step d-1, diagonals -(d-1)..d-1
		at := func(k int) int { return prev[k+d-1] }
		k := x - y
		var px, py int
		insert := k == -d || (k != d && at(k-1) < at(k+1))
		if insert {
			px = at(k + 1)
			py = px - (k + 1)
		} else {
			px = at(k - 1)
			py = px - (k - 1)
		}
		// The snake that follows the single edit.
		sx, sy := px, py+1
		if !insert {
			sx, sy = px+1, py
		}
		for x > sx && y > sy {
			x--
			y--
			rev = append(rev, Edit{' ', a[x]})
		}
		if insert {
			rev = append(rev, Edit{'+', b[py]})
		} else {
			rev = append(rev, Edit{'-', a[px]})
		}
		x, y = px, py
	}
	for x > 0 {
		x--
		rev = append(rev, Edit{' ', a[x]})
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// deletionsFirst reorders every run of changes between kept lines so that
// its deletions come before its insertions. Each side keeps its own order,
// so the edits still turn a into b.
func deletionsFirst(edits []Edit) {
	var del, ins []Edit
	for i := 0; i < len(edits); {
		if edits[i].Op == ' ' {
			i++
			continue
		}
		j := i
		del, ins = del[:0], ins[:0]
		for ; j < len(edits) && edits[j].Op != ' '; j++ {
			if edits[j].Op == '-' {
				del = append(del, edits[j])
			} else {
				ins = append(ins, edits[j])
			}
		}
		n := copy(edits[i:], del)
		copy(edits[i+n:], ins)
		i = j
	}
}

// Unified returns a unified diff (`--- aName`, `+++ bName`, `@@ -l,n +l,n
// @@` hunks with `context` lines of context, exactly as GNU diff -u numbers
// them, including the `-l,0` convention for empty ranges), or "" when a and
// b are equal. If Lines gives up (maxEdits exceeded), the output is the two
// headers followed by one line "@@ too many changes to show (N lines
// before, M after) @@".
//
// Every output line ends in a newline. Hunks whose changes are at most
// 2*context kept lines apart are merged into one, as GNU diff does. A
// negative context counts as 0.
func Unified(aName, bName string, a, b []string, context, maxEdits int) string {
	if context < 0 {
		context = 0
	}
	edits, ok := Lines(a, b, maxEdits)
	var sb strings.Builder
	header := func() {
		sb.WriteString("--- " + aName + "\n")
		sb.WriteString("+++ " + bName + "\n")
	}
	if !ok {
		header()
		fmt.Fprintf(&sb, "@@ too many changes to show (%d lines before, %d after) @@\n", len(a), len(b))
		return sb.String()
	}

	// ai[i] and bi[i] are the number of lines of a and b before edit i.
	ai := make([]int, len(edits)+1)
	bi := make([]int, len(edits)+1)
	var changes []int
	for i, e := range edits {
		ai[i+1], bi[i+1] = ai[i], bi[i]
		if e.Op != '+' {
			ai[i+1]++
		}
		if e.Op != '-' {
			bi[i+1]++
		}
		if e.Op != ' ' {
			changes = append(changes, i)
		}
	}
	if len(changes) == 0 {
		return ""
	}

	header()
	for c := 0; c < len(changes); {
		first, last := changes[c], changes[c]
		c++
		// Between two changes there are only kept lines, so the gap in
		// edits is the gap in lines.
		for c < len(changes) && changes[c]-last-1 <= 2*context {
			last = changes[c]
			c++
		}
		start := max(0, first-context)
		end := min(len(edits), last+1+context)
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n",
			numberRange(ai[start], ai[end]-ai[start]),
			numberRange(bi[start], bi[end]-bi[start]))
		for _, e := range edits[start:end] {
			sb.WriteByte(e.Op)
			sb.WriteString(e.Line)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

// numberRange formats a hunk range of count lines after the first skip
// lines of a file as GNU diff -u does: "l,n", just "l" for one line, and
// for no lines the number of the line before the range with ",0".
func numberRange(skip, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", skip)
	case 1:
		return fmt.Sprintf("%d", skip+1)
	}
	return fmt.Sprintf("%d,%d", skip+1, count)
}

// SplitLines splits text into lines without their trailing newlines; a
// final line without newline counts as a line; "" gives no lines. Only
// "\n" ends a line; a "\r" before it stays part of the line.
func SplitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
