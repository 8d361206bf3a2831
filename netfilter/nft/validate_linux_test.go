//go:build linux

package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/homeedge/edge/internal/nettest"
	"github.com/homeedge/edge/netfilter/ruleset"
)

// The tests here run in a throwaway namespace each (newTestNS):
//
//	host namespace (untouched)
//	  edge-nfttest-<random>: lo up, table ip foreign, table inet edge
//	                         with counters, meter and run-time elements

// listAll is everything nft shows of the namespace's rulesets, handles
// included.
func (ns *testNS) listAll(t *testing.T) string {
	t.Helper()
	return ns.run(t, "nft", "-a", "list", "ruleset")
}

// TestValidateChangesNothing: Validate of a good ruleset returns nil and
// leaves `nft -a list ruleset` byte for byte as it was, whether the table
// is absent or holds state (counters, a meter's element, elements added
// at run time), for a small change, a whole other ruleset and sets large
// enough to be sent in chunks.
func TestValidateChangesNothing(t *testing.T) {
	ns := newTestNS(t)
	if out, err := ns.nftFile(t, foreignTable); err != nil {
		t.Fatalf("nft -f foreign table: %v\n%s", err, out)
	}

	before := ns.listAll(t)
	if err := Validate(ns.conn, representative()); err != nil {
		t.Fatalf("Validate(representative) without a table: %v", err)
	}
	if diff := cmp.Diff(before, ns.listAll(t)); diff != "" {
		t.Fatalf("Validate without a table changed the rulesets (-before +after):\n%s", diff)
	}

	// Live state whose listing does not tick: permanent elements only.
	r := stateRuleset(false)
	r.Sets[0].Elements[0].Timeout = 0
	if err := Apply(ns.conn, r); err != nil {
		t.Fatal(err)
	}
	ns.run(t, "ping", "-c", "2", "-i", "0.2", "-W", "1", "127.0.0.1")
	ns.run(t, "nft", "add", "element", "inet", "edge", "ban4", `{ 203.0.113.10 comment "api" }`)
	ns.run(t, "nft", "add", "element", "inet", "edge", "tempnets", `{ 198.51.100.0/24 }`)
	if c, _ := ReadCounters(ns.conn, "edge"); c["pings"].Packets != 2 {
		t.Fatalf("counter of pings = %+v, want 2 packets", c["pings"])
	}
	before = ns.listAll(t)

	for _, tc := range []struct {
		name string
		r    *ruleset.Ruleset
		opts []ApplyOption
	}{
		{"the same ruleset", r, nil},
		{"a new rule, keeping state", stateRuleset(true), []ApplyOption{KeepState()}},
		{"another ruleset", representative(), nil},
		{"large sets", blocklistRuleset(5000), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(ns.conn, tc.r, tc.opts...); err != nil {
				t.Fatalf("Validate = %v, want nil", err)
			}
			if diff := cmp.Diff(before, ns.listAll(t)); diff != "" {
				t.Errorf("Validate changed the rulesets (-before +after):\n%s", diff)
			}
		})
	}

	// What Validate accepts, Apply applies.
	if err := Apply(ns.conn, stateRuleset(true), KeepState()); err != nil {
		t.Fatalf("Apply after Validate: %v", err)
	}
	if c, _ := ReadCounters(ns.conn, "edge"); c["pings"].Packets != 2 {
		t.Errorf("after Apply(KeepState), counter of pings = %+v, want 2 packets", c["pings"])
	}
}

// TestValidateRefusesAsApply: for batches the kernel refuses message by
// message, Validate fails with the same *BatchError as Apply, and
// neither changes anything.
func TestValidateRefusesAsApply(t *testing.T) {
	ns := newTestNS(t)
	if err := Apply(ns.conn, representative()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    *ruleset.Ruleset
		want string
	}{
		{"jump to a base chain", withExtraChains(t, func(chain func(string) *ruleset.Chain) {
			chain("extra_a").Rules = []*ruleset.Rule{{ID: "jump to input", Verdict: ruleset.Jump, Target: "input"}}
		}), `rule "jump to input" (chain extra_a): operation not supported`},
		{"goto an undefined chain", withExtraChains(t, func(chain func(string) *ruleset.Chain) {
			chain("extra_b").Rules = []*ruleset.Rule{{ID: "to nowhere", Verdict: ruleset.Goto, Target: "nowhere"}}
		}), `rule "to nowhere" (chain extra_b): no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Element expiry times tick; all else must stay as it was.
			before := nettest.NFTWithoutExpiry(ns.listAll(t))
			verr := validate(ns.conn, tc.r, nil)
			if diff := cmp.Diff(before, nettest.NFTWithoutExpiry(ns.listAll(t))); diff != "" {
				t.Fatalf("a refused Validate changed the rulesets (-before +after):\n%s", diff)
			}
			aerr := apply(ns.conn, tc.r, nil)
			var vbe, abe *BatchError
			if !errors.As(verr, &vbe) || !errors.As(aerr, &abe) {
				t.Fatalf("validate = %v, apply = %v; want a *BatchError from both", verr, aerr)
			}
			if diff := cmp.Diff(abe, vbe); diff != "" {
				t.Errorf("validate's *BatchError differs from apply's (-apply +validate):\n%s", diff)
			}
			if vbe.Errors[0] != tc.want {
				t.Errorf("validate = %v, want its first error %q", verr, tc.want)
			}
			if diff := cmp.Diff(before, nettest.NFTWithoutExpiry(ns.listAll(t))); diff != "" {
				t.Errorf("a refused Apply changed the rulesets (-before +after):\n%s", diff)
			}
		})
	}
}

// TestValidateCommitChecks: what the kernel refuses only when it
// commits (a jump loop, a chain too many jumps from a base chain, a
// statement reached from a base chain it cannot run in) it does not
// check when it aborts a batch that creates the table, which every
// replace does (on this kernel at least; nft -c misses such a loop too).
// Check catches these instead, for Validate and Apply alike, and names
// the rule the kernel names when a commit fails.
//
// Each case has a namespace of its own: once a commit failed these
// checks, the kernel runs them for every rule of the batches that follow
// in that namespace, aborted ones too.
func TestValidateCommitChecks(t *testing.T) {
	// The deepest the kernel takes passes.
	ns := newTestNS(t)
	if err := Validate(ns.conn, jumpChain(t, 15, ruleset.Jump)); err != nil {
		t.Fatalf("Validate(15 jumps deep) = %v, want nil", err)
	}
	if err := Apply(ns.conn, jumpChain(t, 15, ruleset.Jump)); err != nil {
		t.Fatalf("Apply(15 jumps deep) = %v, want nil", err)
	}
	dnat := &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: netip.MustParseAddr("192.168.1.10")}
	for _, tc := range []struct {
		name  string
		r     *ruleset.Ruleset
		want  string // the rule Check and the kernel name
		errno syscall.Errno
	}{
		{"loop", withExtraChains(t, func(chain func(string) *ruleset.Chain) {
			chain("wan_in").Rules = append(chain("wan_in").Rules, &ruleset.Rule{ID: "to a", Verdict: ruleset.Jump, Target: "extra_a"})
			chain("extra_a").Rules = []*ruleset.Rule{{ID: "to b", Verdict: ruleset.Jump, Target: "extra_b"}}
			chain("extra_b").Rules = []*ruleset.Rule{{ID: "back to a", Verdict: ruleset.Jump, Target: "extra_a"}}
		}), `rule "back to a" (chain extra_b)`, syscall.EMLINK},
		{"loop entered before it closes", withExtraChains(t, func(chain func(string) *ruleset.Chain) {
			chain("wan_in").Rules = append(chain("wan_in").Rules, &ruleset.Rule{ID: "into the loop", Verdict: ruleset.Jump, Target: "extra_b"})
			chain("extra_a").Rules = []*ruleset.Rule{{ID: "a to b", Verdict: ruleset.Goto, Target: "extra_b"}, {ID: "a counts", Counter: true}}
			chain("extra_b").Rules = []*ruleset.Rule{{ID: "b to a", Verdict: ruleset.Jump, Target: "extra_a"}}
			chain("extra_c").Rules = []*ruleset.Rule{{ID: "c counts", Counter: true}}
		}), `rule "b to a" (chain extra_b)`, syscall.EMLINK},
		{"16 jumps deep", jumpChain(t, 16, ruleset.Jump), `rule "to c16" (chain c15)`, syscall.EMLINK},
		{"16 gotos deep", jumpChain(t, 16, ruleset.Goto), `rule "to c16" (chain c15)`, syscall.EMLINK},
		{"dnat in a filter chain", withExtraChains(t, func(chain func(string) *ruleset.Chain) {
			chain("forward").Rules = append(chain("forward").Rules, &ruleset.Rule{ID: "misplaced dnat", NAT: dnat})
		}), `rule "misplaced dnat" (chain forward)`, syscall.EOPNOTSUPP},
		{"dnat reached from postrouting", withExtraChains(t, func(chain func(string) *ruleset.Chain) {
			chain("extra_a").Rules = []*ruleset.Rule{{ID: "dnat here", NAT: dnat}}
			chain("postrouting").Rules = append(chain("postrouting").Rules, &ruleset.Rule{ID: "to the dnat", Verdict: ruleset.Jump, Target: "extra_a"})
		}), `rule "dnat here" (chain extra_a)`, syscall.EOPNOTSUPP},
		{"reject reached from postrouting", withExtraChains(t, func(chain func(string) *ruleset.Chain) {
			chain("extra_b").Rules = []*ruleset.Rule{{ID: "reject here", Verdict: ruleset.Reject}}
			chain("extra_c").Rules = []*ruleset.Rule{{ID: "to the reject", Verdict: ruleset.Goto, Target: "extra_b"}}
			chain("postrouting").Rules = append(chain("postrouting").Rules, &ruleset.Rule{ID: "to c", Verdict: ruleset.Jump, Target: "extra_c"})
		}), `rule "to the reject" (chain extra_c)`, syscall.EOPNOTSUPP},
		{"masquerade in prerouting", withExtraChains(t, func(chain func(string) *ruleset.Chain) {
			chain("prerouting").Rules = append(chain("prerouting").Rules, &ruleset.Rule{ID: "misplaced masquerade", NAT: &ruleset.NAT{Kind: ruleset.Masquerade}})
		}), `rule "misplaced masquerade" (chain prerouting)`, syscall.EOPNOTSUPP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newTestNS(t)
			if err := Apply(ns.conn, representative()); err != nil {
				t.Fatal(err)
			}
			before := nettest.NFTWithoutExpiry(ns.listAll(t))
			// Aborting the batch, sent past Check: this kernel does not
			// validate a table the batch creates. Should a kernel do so,
			// its answer must be Apply's (compared below).
			rawValidate := validate(ns.conn, tc.r, nil)
			if rawValidate == nil {
				t.Logf("validate past Check = nil: the kernel skipped the commit checks when it aborted")
			}
			cerr := Check(tc.r)
			if cerr == nil {
				t.Fatal("Check = nil, want the rule refused")
			}
			t.Logf("Check: %v", cerr)
			verr, aerr := Validate(ns.conn, tc.r), Apply(ns.conn, tc.r)
			if verr == nil || aerr == nil || !strings.HasSuffix(verr.Error(), cerr.Error()) || !strings.HasSuffix(aerr.Error(), cerr.Error()) {
				t.Errorf("Validate = %v\nApply = %v\nwant both to end with Check's %v", verr, aerr, cerr)
			}
			// The kernel, sent the batch past Check: a commit refuses it
			// and names the rule Check names.
			kerr := apply(ns.conn, tc.r, nil)
			var be *BatchError
			if !errors.As(kerr, &be) || !strings.HasPrefix(be.Errors[0], tc.want+": ") || be.Errno != tc.errno {
				t.Fatalf("apply past Check = %v, want a *BatchError naming %s first, %v", kerr, tc.want, tc.errno)
			}
			if chain, id := labelParts(t, tc.want); !strings.HasPrefix(cerr.Error(), fmt.Sprintf("chain %s: rule %q: ", chain, id)) {
				t.Errorf("Check = %v, want it to name %s as the kernel does", cerr, tc.want)
			}
			if rawValidate != nil && (!errors.As(rawValidate, new(*BatchError)) || !strings.HasSuffix(rawValidate.Error(), be.Error())) {
				t.Errorf("validate past Check = %v, want nil or apply's %v", rawValidate, be)
			}
			if diff := cmp.Diff(before, nettest.NFTWithoutExpiry(ns.listAll(t))); diff != "" {
				t.Errorf("refused batches changed the rulesets (-before +after):\n%s", diff)
			}
		})
	}
}

// withExtraChains is representative() with chains extra_a, extra_b and
// extra_c, edited by edit.
func withExtraChains(t *testing.T, edit func(chain func(string) *ruleset.Chain)) *ruleset.Ruleset {
	r := representative()
	r.Chains = append(r.Chains, &ruleset.Chain{Name: "extra_a"}, &ruleset.Chain{Name: "extra_b"}, &ruleset.Chain{Name: "extra_c"})
	edit(func(name string) *ruleset.Chain {
		for _, c := range r.Chains {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no chain %s", name)
		return nil
	})
	return r
}

// jumpChain is representative() with chains c1 to cn, each a jump (or
// goto) further from base chain input.
func jumpChain(t *testing.T, n int, verdict ruleset.Verdict) *ruleset.Ruleset {
	r := representative()
	prev := r.Chains[0]
	if prev.Name != "input" {
		t.Fatalf("representative's first chain is %s, want input", prev.Name)
	}
	for i := 1; i <= n; i++ {
		c := &ruleset.Chain{Name: fmt.Sprintf("c%d", i)}
		prev.Rules = append(prev.Rules, &ruleset.Rule{ID: fmt.Sprintf("to %s", c.Name), Verdict: verdict, Target: c.Name})
		r.Chains = append(r.Chains, c)
		prev = c
	}
	return r
}

// labelParts splits a rule's label, `rule "id" (chain name)`.
func labelParts(t *testing.T, label string) (chain, id string) {
	var q string
	if _, err := fmt.Sscanf(label, "rule %q (chain %s", &q, &chain); err != nil {
		t.Fatalf("label %q: %v", label, err)
	}
	return strings.TrimSuffix(chain, ")"), q
}

// TestHookNeedsMatchKernel: for every statement with a hook need and
// every kind of base chain, Check refuses the statement exactly when the
// kernel refuses to commit it, in the base chain and one jump away.
func TestHookNeedsMatchKernel(t *testing.T) {
	ns := newTestNS(t)
	addr := netip.MustParseAddr("192.0.2.1")
	stmts := map[string]func(*ruleset.Rule){
		"dnat":       func(r *ruleset.Rule) { r.NAT = &ruleset.NAT{Kind: ruleset.DNAT, Family: ruleset.IP, Addr: addr} },
		"snat":       func(r *ruleset.Rule) { r.NAT = &ruleset.NAT{Kind: ruleset.SNAT, Family: ruleset.IP, Addr: addr} },
		"masquerade": func(r *ruleset.Rule) { r.NAT = &ruleset.NAT{Kind: ruleset.Masquerade} },
		"redirect":   func(r *ruleset.Rule) { r.NAT = &ruleset.NAT{Kind: ruleset.Redirect} },
		"reject":     func(r *ruleset.Rule) { r.Verdict = ruleset.Reject },
		"counter":    func(r *ruleset.Rule) { r.Counter = true },
	}
	for name, set := range stmts {
		for _, typ := range []ruleset.ChainType{ruleset.Filter, ruleset.NATType} {
			for _, hook := range []ruleset.Hook{ruleset.Prerouting, ruleset.Input, ruleset.Forward, ruleset.Output, ruleset.Postrouting} {
				if typ == ruleset.NATType && hook == ruleset.Forward {
					continue // no such chain
				}
				for _, jump := range []bool{false, true} {
					rule := &ruleset.Rule{ID: "stmt"}
					set(rule)
					base := &ruleset.Chain{Name: "base", Hook: hook, Type: typ, Policy: ruleset.Accept}
					r := &ruleset.Ruleset{Table: "edge", Chains: []*ruleset.Chain{base}}
					if jump {
						base.Rules = []*ruleset.Rule{{ID: "jump", Verdict: ruleset.Jump, Target: "regular"}}
						r.Chains = append(r.Chains, &ruleset.Chain{Name: "regular", Rules: []*ruleset.Rule{rule}})
					} else {
						base.Rules = []*ruleset.Rule{rule}
					}
					cerr := Check(r)
					kerr := apply(ns.conn, r, nil)
					if (cerr == nil) != (kerr == nil) {
						t.Errorf("%s in a %s chain at %s (through a jump: %v): Check = %v, kernel = %v", name, typ, hook, jump, cerr, kerr)
					}
				}
			}
		}
	}
}
