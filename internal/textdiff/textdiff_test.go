package textdiff

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// apply rebuilds both sides from edits.
func apply(edits []Edit) (a, b []string) {
	for _, e := range edits {
		if e.Op != '+' {
			a = append(a, e.Line)
		}
		if e.Op != '-' {
			b = append(b, e.Line)
		}
	}
	return a, b
}

// numChanges counts the '-' and '+' edits.
func numChanges(edits []Edit) int {
	n := 0
	for _, e := range edits {
		if e.Op != ' ' {
			n++
		}
	}
	return n
}

// lcs is the length of a longest common subsequence, by the O(NM) table.
func lcs(a, b []string) int {
	row := make([]int, len(b)+1)
	for i := range a {
		diag := 0
		for j := range b {
			up := row[j+1]
			if a[i] == b[j] {
				row[j+1] = diag + 1
			} else {
				row[j+1] = max(row[j+1], row[j])
			}
			diag = up
		}
	}
	return row[len(b)]
}

// checkEdits fails unless edits turn a into b with only valid ops and
// deletions before insertions in every changed run.
func checkEdits(t *testing.T, a, b []string, edits []Edit) {
	t.Helper()
	ga, gb := apply(edits)
	if !equal(ga, a) || !equal(gb, b) {
		t.Fatalf("edits %q rebuild\na=%q\nb=%q\nwant\na=%q\nb=%q", edits, ga, gb, a, b)
	}
	for i, e := range edits {
		switch e.Op {
		case ' ', '-', '+':
		default:
			t.Fatalf("edit %d has op %q", i, e.Op)
		}
		if i > 0 && e.Op == '-' && edits[i-1].Op == '+' {
			t.Fatalf("insertion before deletion at edit %d: %q", i, edits)
		}
	}
}

// equal compares line slices, treating nil and empty alike.
func equal(x, y []string) bool {
	return len(x) == len(y) && (len(x) == 0 || reflect.DeepEqual(x, y))
}

func split(s string) []string { return SplitLines(s) }

// lines joins lines with a newline after each, the way a file holds them.
func lines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// numbered returns "1".."n" as lines.
func numbered(n int) []string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprint(i + 1)
	}
	return l
}

// replace returns a copy of l with the lines at the given 0-based indexes
// replaced by "x<line>".
func replace(l []string, idx ...int) []string {
	c := append([]string(nil), l...)
	for _, i := range idx {
		c[i] = "x" + c[i]
	}
	return c
}

func TestSplitLines(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"\n", []string{""}},
		{"\n\n", []string{"", ""}},
		{"a\nb", []string{"a", "b"}},
		{"a\n\nb\n", []string{"a", "", "b"}},
		{"a\r\nb\r\n", []string{"a\r", "b\r"}},
	}
	for _, tt := range tests {
		if got := SplitLines(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLines(t *testing.T) {
	tests := []struct {
		name     string
		a, b     string
		maxEdits int
		want     string // edits as op+line, one per line; "!" for ok=false
	}{
		{"equal", "a\nb\nc\n", "a\nb\nc\n", 0, " a\n b\n c\n"},
		{"both empty", "", "", 0, ""},
		{"a empty", "", "a\nb\n", 0, "+a\n+b\n"},
		{"b empty", "a\nb\n", "", 0, "-a\n-b\n"},
		{"pure insert", "a\nc\n", "a\nb\nc\n", 0, " a\n+b\n c\n"},
		{"insert at start", "b\nc\n", "a\nb\nc\n", 0, "+a\n b\n c\n"},
		{"insert at end", "a\nb\n", "a\nb\nc\n", 0, " a\n b\n+c\n"},
		{"pure delete", "a\nb\nc\n", "a\nc\n", 0, " a\n-b\n c\n"},
		{"delete at start", "a\nb\nc\n", "b\nc\n", 0, "-a\n b\n c\n"},
		{"change", "a\nb\nc\n", "a\nx\nc\n", 0, " a\n-b\n+x\n c\n"},
		{"change run", "a\nb\nc\nd\n", "a\nx\ny\nz\nd\n", 0, " a\n-b\n-c\n+x\n+y\n+z\n d\n"},
		{"all different", "a\nb\n", "c\nd\n", 0, "-a\n-b\n+c\n+d\n"},
		{"repeated lines", "a\na\na\n", "a\na\n", 0, " a\n a\n-a\n"},
		{"within cap", "a\nb\nc\n", "a\nx\nc\n", 2, " a\n-b\n+x\n c\n"},
		{"over cap", "a\nb\nc\n", "a\nx\nc\n", 1, "!"},
		{"over cap by length", "", "a\nb\nc\n", 2, "!"},
		{"cap at exact size", "", "a\nb\nc\n", 3, "+a\n+b\n+c\n"},
		{"negative cap is no limit", "a\n", "b\n", -1, "-a\n+b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := split(tt.a), split(tt.b)
			edits, ok := Lines(a, b, tt.maxEdits)
			var got strings.Builder
			if !ok {
				got.WriteString("!")
				if edits != nil {
					t.Errorf("ok=false with edits %q", edits)
				}
			}
			for _, e := range edits {
				got.WriteString(string(e.Op) + e.Line + "\n")
			}
			if got.String() != tt.want {
				t.Errorf("Lines =\n%s\nwant\n%s", got.String(), tt.want)
			}
			if ok {
				checkEdits(t, a, b, edits)
			}
		})
	}
}

func TestUnified(t *testing.T) {
	ten := numbered(10)
	twenty := numbered(20)
	tests := []struct {
		name     string
		a, b     []string
		context  int
		maxEdits int
		want     string
	}{
		{"equal", ten, ten, 3, 0, ""},
		{"both empty", nil, nil, 3, 0, ""},
		{"a empty", nil, []string{"a", "b"}, 3, 0,
			"--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"b empty", []string{"a"}, nil, 3, 0,
			"--- a\n+++ b\n@@ -1 +0,0 @@\n-a\n"},
		{"pure insert", ten, append(ten[:5:5], append([]string{"new"}, ten[5:]...)...), 3, 0,
			"--- a\n+++ b\n@@ -3,6 +3,7 @@\n 3\n 4\n 5\n+new\n 6\n 7\n 8\n"},
		{"pure insert no context", ten, append(ten[:5:5], append([]string{"new"}, ten[5:]...)...), 0, 0,
			"--- a\n+++ b\n@@ -5,0 +6 @@\n+new\n"},
		{"pure delete", ten, append(ten[:4:4], ten[5:]...), 2, 0,
			"--- a\n+++ b\n@@ -3,5 +3,4 @@\n 3\n 4\n-5\n 6\n 7\n"},
		{"pure delete no context", ten, append(ten[:4:4], ten[5:]...), 0, 0,
			"--- a\n+++ b\n@@ -5 +4,0 @@\n-5\n"},
		{"change at start", ten, replace(ten, 0), 3, 0,
			"--- a\n+++ b\n@@ -1,4 +1,4 @@\n-1\n+x1\n 2\n 3\n 4\n"},
		{"change at end", ten, replace(ten, 9), 3, 0,
			"--- a\n+++ b\n@@ -7,4 +7,4 @@\n 7\n 8\n 9\n-10\n+x10\n"},
		// Changes at lines 5 and 11 are 5 kept lines apart, at most 2*3:
		// one hunk.
		{"nearby changes merge", twenty, replace(twenty, 4, 10), 3, 0,
			"--- a\n+++ b\n@@ -2,13 +2,13 @@\n 2\n 3\n 4\n-5\n+x5\n 6\n 7\n 8\n 9\n 10\n-11\n+x11\n 12\n 13\n 14\n"},
		// 6 kept lines apart: still one hunk.
		{"gap of 2*context merges", twenty, replace(twenty, 4, 11), 3, 0,
			"--- a\n+++ b\n@@ -2,14 +2,14 @@\n 2\n 3\n 4\n-5\n+x5\n 6\n 7\n 8\n 9\n 10\n 11\n-12\n+x12\n 13\n 14\n 15\n"},
		// 7 kept lines apart: two hunks.
		{"far changes split", twenty, replace(twenty, 4, 12), 3, 0,
			"--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+x5\n 6\n 7\n 8\n@@ -10,7 +10,7 @@\n 10\n 11\n 12\n-13\n+x13\n 14\n 15\n 16\n"},
		{"far changes no context", twenty, replace(twenty, 4, 6), 0, 0,
			"--- a\n+++ b\n@@ -5 +5 @@\n-5\n+x5\n@@ -7 +7 @@\n-7\n+x7\n"},
		{"too many changes", ten, replace(ten, 1, 5), 3, 3,
			"--- a\n+++ b\n@@ too many changes to show (10 lines before, 10 after) @@\n"},
		{"cap just enough", ten, replace(ten, 1), 0, 2,
			"--- a\n+++ b\n@@ -2 +2 @@\n-2\n+x2\n"},
		{"negative context", ten, replace(ten, 1), -1, 0,
			"--- a\n+++ b\n@@ -2 +2 @@\n-2\n+x2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Unified("a", "b", tt.a, tt.b, tt.context, tt.maxEdits)
			if got != tt.want {
				t.Errorf("Unified =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// randomLines returns up to maxLen lines drawn from the first k letters.
func randomLines(r *rand.Rand, maxLen, k int) []string {
	l := make([]string, r.Intn(maxLen+1))
	for i := range l {
		l[i] = string(rune('a' + r.Intn(k)))
	}
	return l
}

func TestLinesRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		k := 3 + i%2
		a, b := randomLines(r, 12, k), randomLines(r, 12, k)
		edits, ok := Lines(a, b, 0)
		if !ok {
			t.Fatalf("Lines(%q, %q, 0) gave up", a, b)
		}
		checkEdits(t, a, b, edits)
		want := len(a) + len(b) - 2*lcs(a, b)
		if got := numChanges(edits); got != want {
			t.Fatalf("Lines(%q, %q) has %d changes, want %d: %q", a, b, got, want, edits)
		}
		// The cap: ok exactly when the shortest script fits.
		capped := 1 + r.Intn(want+2)
		edits, ok = Lines(a, b, capped)
		if ok != (want <= capped) {
			t.Fatalf("Lines(%q, %q, %d): ok=%v, shortest script has %d changes", a, b, capped, ok, want)
		}
		if ok {
			checkEdits(t, a, b, edits)
			if got := numChanges(edits); got != want {
				t.Fatalf("Lines(%q, %q, %d) has %d changes, want %d", a, b, capped, got, want)
			}
		} else if edits != nil {
			t.Fatalf("ok=false with edits %q", edits)
		}
	}
}

func TestLinesLong(t *testing.T) {
	// A long listing with a few changes goes through the trimmed fast path
	// and stays under a small cap.
	a := numbered(5000)
	b := replace(a, 10, 2500, 4990)
	b = append(b[:100:100], b[101:]...)
	edits, ok := Lines(a, b, 10)
	if !ok {
		t.Fatal("Lines gave up on 7 changes with a cap of 10")
	}
	checkEdits(t, a, b, edits)
	if n := numChanges(edits); n != 7 {
		t.Errorf("%d changes, want 7", n)
	}
	if _, ok := Lines(a, b, 6); ok {
		t.Error("Lines did not give up on 7 changes with a cap of 6")
	}
	// Unrelated listings give up quickly under a cap.
	c := make([]string, 5000)
	for i := range c {
		c[i] = "y" + a[i]
	}
	if _, ok := Lines(a, c, 100); ok {
		t.Error("Lines did not give up on unrelated listings")
	}
}

// gnuDiff runs diff -u with the given context on a and b and returns its
// output without the two header lines.
func gnuDiff(t *testing.T, path string, a, b []string, context int) string {
	t.Helper()
	dir := t.TempDir()
	fa, fb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(fa, []byte(lines(a)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fb, []byte(lines(b)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, fmt.Sprintf("-U%d", context), fa, fb).Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("diff: %v", err)
	}
	return stripHeaders(string(out))
}

func stripHeaders(s string) string {
	for range 2 {
		_, s, _ = strings.Cut(s, "\n")
	}
	return s
}

// derive returns b made from a by deleting lines and inserting new ones
// that occur in neither side. Every common line then keeps its order, so
// the set of kept lines, and with deletions first the whole diff, is the
// same for any minimal diff program.
func derive(r *rand.Rand, a []string, tag string) []string {
	var b []string
	n := 0
	insert := func() {
		for range r.Intn(3) {
			n++
			b = append(b, fmt.Sprintf("%s%d", tag, n))
		}
	}
	for _, l := range a {
		if r.Intn(8) == 0 {
			insert()
		}
		if r.Intn(8) != 0 {
			b = append(b, l)
		}
	}
	if r.Intn(4) == 0 {
		insert()
	}
	return b
}

func TestUnifiedMatchesGNUDiff(t *testing.T) {
	path, err := exec.LookPath("diff")
	if err != nil {
		t.Skip("diff not on PATH")
	}
	if out, err := exec.Command(path, "--version").Output(); err != nil || !strings.Contains(string(out), "GNU") {
		t.Skip("diff is not GNU diff")
	}
	type pair struct {
		name    string
		a, b    []string
		context int
	}
	forty := numbered(40)
	cases := []pair{
		{"equal", forty, forty, 3},
		{"a empty", nil, numbered(3), 3},
		{"b empty", numbered(3), nil, 3},
		{"one line each", []string{"a"}, []string{"b"}, 3},
		{"insert at start", forty, append([]string{"new"}, forty...), 3},
		{"append", forty, append(forty[:40:40], "new1", "new2"), 3},
		{"merge and split", forty, replace(forty, 0, 5, 12, 25, 39), 3},
		{"no context", forty, replace(forty, 3, 4, 10, 30), 0},
		{"wide context", forty, replace(forty, 3, 30), 20},
		{"delete and insert", forty, append(append(forty[:10:10], "n1", "n2", "n3"), forty[15:]...), 2},
	}
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 40; i++ {
		a := numbered(r.Intn(60))
		cases = append(cases, pair{fmt.Sprintf("random %d", i), a, derive(r, a, "new"), r.Intn(5)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := gnuDiff(t, path, c.a, c.b, c.context)
			got := Unified("a", "b", c.a, c.b, c.context, 0)
			if got != "" && !strings.HasPrefix(got, "--- a\n+++ b\n") {
				t.Fatalf("Unified output lacks headers:\n%s", got)
			}
			if got = stripHeaders(got); got != want {
				t.Errorf("a=%q\nb=%q\nUnified =\n%s\ndiff -U%d =\n%s", c.a, c.b, got, c.context, want)
			}
		})
	}
}

func FuzzLines(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nc\nd\n", 3)
	f.Add("", "x\n", 0)
	f.Add("a\na\nb\n", "b\na\na", 1)
	f.Add("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\nx\n4\n5\n6\n7\n8\ny\n", 2)
	f.Fuzz(func(t *testing.T, sa, sb string, maxEdits int) {
		a, b := SplitLines(sa), SplitLines(sb)
		edits, ok := Lines(a, b, 0)
		if !ok {
			t.Fatal("Lines gave up without a cap")
		}
		checkEdits(t, a, b, edits)
		d := numChanges(edits)
		capped, ok := Lines(a, b, maxEdits%64)
		if ok != (maxEdits%64 <= 0 || d <= maxEdits%64) {
			t.Fatalf("cap %d: ok=%v with %d changes", maxEdits%64, ok, d)
		}
		if ok {
			checkEdits(t, a, b, capped)
			if numChanges(capped) != d {
				t.Fatalf("cap %d: %d changes, uncapped %d", maxEdits%64, numChanges(capped), d)
			}
		}
		out := Unified("a", "b", a, b, maxEdits%5, maxEdits%64)
		if (out == "") != (d == 0) {
			t.Fatalf("Unified gave %q for %d changes", out, d)
		}
	})
}
