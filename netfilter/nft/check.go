package nft

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// Check reports, naming the rule, set or chain, anything in r that the
// kernel or nft would refuse or that could not round-trip through nft's
// text syntax: r.Validate's errors, names nft reads as keywords, strings
// with quotes, conflicting protocol matches, overlapping port ranges,
// unknown ICMP types and levels, jump loops and chains nested too deep.
// Apply and Validate check before they send anything.
func Check(r *ruleset.Ruleset) error {
	_, err := prepare(r)
	return err
}

// prepared is a checked ruleset with what checking computed, for Apply.
type prepared struct {
	sets  map[string]*ruleset.Set
	elems map[string][]ruleset.Element // canonical, by set name
	rules map[*ruleset.Rule]lowered
}

func prepare(r *ruleset.Ruleset) (*prepared, error) {
	if r == nil {
		return nil, errors.New("nil ruleset")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := checkName("table", r.Table); err != nil {
		return nil, err
	}
	if err := checkFamily(r); err != nil {
		return nil, err
	}
	p := &prepared{sets: setsByName(r), elems: map[string][]ruleset.Element{}, rules: map[*ruleset.Rule]lowered{}}
	for _, s := range r.Sets {
		if err := checkSet(s); err != nil {
			return nil, err
		}
		elems, err := canonElements(s)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", s.Name, err)
		}
		p.elems[s.Name] = elems
	}
	if ft := r.Flowtable; ft != nil {
		if err := checkName("flowtable", ft.Name); err != nil {
			return nil, err
		}
		if len(ft.Devices) == 0 {
			return nil, fmt.Errorf("flowtable %s: no devices", ft.Name)
		}
		if _, err := normIfnames(ft.Devices); err != nil {
			return nil, fmt.Errorf("flowtable %s: %w", ft.Name, err)
		}
	}
	for _, c := range r.Chains {
		if err := checkName("chain", c.Name); err != nil {
			return nil, err
		}
		if c.Hook != "" {
			if _, ok := hookNums[c.Hook]; !ok {
				return nil, fmt.Errorf("chain %s: hook %q; use prerouting, input, forward, output or postrouting", c.Name, c.Hook)
			}
			if c.Type != "" && c.Type != ruleset.Filter && c.Type != ruleset.NATType {
				return nil, fmt.Errorf("chain %s: type %q; use filter or nat", c.Name, c.Type)
			}
		}
		for _, rule := range c.Rules {
			lr, err := lowerRule(rule, p.sets, r.Flowtable)
			if err != nil {
				return nil, fmt.Errorf("chain %s: rule %q: %w", c.Name, rule.ID, err)
			}
			p.rules[rule] = lr
		}
	}
	if err := checkCommit(r); err != nil {
		return nil, err
	}
	return p, nil
}

// What the kernel refuses only when it commits a batch, as it validates
// the table from every base chain (nft_table_validate): a chain too many
// jumps from a base chain, and statements reached from a base chain they
// cannot run in. checkCommit does the same walk, so that Check (and
// Validate) refuse what a commit would: the kernel skips these checks
// when it aborts a batch that creates the table, as every replace does
// (nft -c misses them as well).

// maxJumpDepth is how many jumps and gotos deep from a base chain the
// kernel lets a chain be (NFT_JUMP_STACK_SIZE is 16; a chain at depth
// 16 is refused with EMLINK, measured with nft -f).
const maxJumpDepth = 15

// hookNeed is where a statement can run: in a base chain (or a chain
// one jumps to) at one of hooks, of type nat if nat; the kernel refuses
// it elsewhere with EOPNOTSUPP. Measured on Linux 6.18 in every hook and
// chain type (TestHookNeedsMatchKernel holds the table to the kernel);
// flow offload (forward only) is from the kernel's source, as the
// kernel here has no flowtables.
type hookNeed struct {
	what  string
	nat   bool
	hooks []ruleset.Hook
}

var (
	needDNAT    = hookNeed{"dnat", true, []ruleset.Hook{ruleset.Prerouting, ruleset.Output}}
	needSNAT    = hookNeed{"snat", true, []ruleset.Hook{ruleset.Input, ruleset.Postrouting}}
	needMasq    = hookNeed{"masquerade", true, []ruleset.Hook{ruleset.Postrouting}}
	needRedir   = hookNeed{"redirect", true, []ruleset.Hook{ruleset.Prerouting, ruleset.Output}}
	needReject  = hookNeed{"reject", false, []ruleset.Hook{ruleset.Prerouting, ruleset.Input, ruleset.Forward, ruleset.Output}}
	needOffload = hookNeed{"flow offload", false, []ruleset.Hook{ruleset.Forward}}
)

// ruleNeeds are the hook needs of a rule's statements.
func ruleNeeds(r *ruleset.Rule) []hookNeed {
	var out []hookNeed
	if r.NAT != nil {
		switch r.NAT.Kind {
		case ruleset.DNAT:
			out = append(out, needDNAT)
		case ruleset.SNAT:
			out = append(out, needSNAT)
		case ruleset.Masquerade:
			out = append(out, needMasq)
		case ruleset.Redirect:
			out = append(out, needRedir)
		}
	}
	if r.Offload {
		out = append(out, needOffload)
	}
	if r.Verdict == ruleset.Reject {
		out = append(out, needReject)
	}
	return out
}

func (n hookNeed) allows(c *ruleset.Chain) bool {
	return (!n.nat || chainType(c) == ruleset.NATType) && slices.Contains(n.hooks, c.Hook)
}

func (n hookNeed) String() string {
	hooks := make([]string, len(n.hooks))
	for i, h := range n.hooks {
		hooks[i] = string(h)
	}
	where := "a chain"
	if n.nat {
		where = "a chain of type nat"
	}
	return fmt.Sprintf("%s needs %s at hook %s", n.what, where, strings.Join(hooks, ", "))
}

// batchRule is a rule with its chain, in the order Apply sends rules.
type batchRule struct {
	chain *ruleset.Chain
	rule  *ruleset.Rule
}

// checkCommit refuses what a commit of r would refuse, naming the rule
// the kernel names: the first one, in batch order, with which the table
// no longer validates (once a commit failed, the kernel validates the
// table again after every rule).
func checkCommit(r *ruleset.Ruleset) error {
	var rules []batchRule
	for _, c := range r.Chains {
		for _, rule := range c.Rules {
			rules = append(rules, batchRule{c, rule})
		}
	}
	if tableProblem(r, rules) == "" {
		return nil // the usual case: one walk
	}
	// Adding rules only adds problems: search for the first prefix of
	// the batch that has one.
	n := sort.Search(len(rules), func(n int) bool { return tableProblem(r, rules[:n+1]) != "" })
	at := rules[n]
	return fmt.Errorf("chain %s: rule %q: %s", at.chain.Name, at.rule.ID, tableProblem(r, rules[:n+1]))
}

// tableProblem walks the jumps and gotos of rules from every base chain
// of r and describes the first problem it finds, or returns "".
func tableProblem(r *ruleset.Ruleset, rules []batchRule) string {
	if len(rules) == 0 {
		return ""
	}
	chains := map[string]*ruleset.Chain{}
	for _, c := range r.Chains {
		chains[c.Name] = c
	}
	targets := map[string][]string{}
	for _, br := range rules {
		if v := br.rule.Verdict; v != ruleset.Jump && v != ruleset.Goto {
			continue
		}
		// A jump to a base chain is refused on its own (EOPNOTSUPP),
		// and leads nowhere.
		if t := chains[br.rule.Target]; t != nil && t.Hook == "" {
			targets[br.chain.Name] = append(targets[br.chain.Name], t.Name)
		}
	}
	last := rules[len(rules)-1].rule
	if path := tooDeep(r, targets); path != nil {
		why := fmt.Sprintf("chain %s is %d jumps from base chain %s", path[len(path)-1], len(path)-1, path[0])
		for i, ch := range path {
			if slices.Index(path[:i], ch) >= 0 {
				path = path[:i+1]
				why = fmt.Sprintf("a loop through chain %s, reached from base chain %s", ch, path[0])
				break
			}
		}
		return fmt.Sprintf("%s %s: %s (%s); the kernel refuses loops and chains more than %d jumps from a base chain",
			last.Verdict, last.Target, why, strings.Join(path, " -> "), maxJumpDepth)
	}
	for _, base := range r.Chains {
		if base.Hook == "" {
			continue
		}
		// from[c] is the chain c is first reached from.
		from := map[string]string{base.Name: ""}
		queue := []string{base.Name}
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			for _, t := range targets[c] {
				if _, seen := from[t]; !seen {
					from[t] = c
					queue = append(queue, t)
				}
			}
		}
		for _, br := range rules {
			if _, ok := from[br.chain.Name]; !ok {
				continue
			}
			for _, need := range ruleNeeds(br.rule) {
				if need.allows(base) {
					continue
				}
				path := []string{br.chain.Name}
				for c := from[br.chain.Name]; c != ""; c = from[c] {
					path = append([]string{c}, path...)
				}
				where := fmt.Sprintf("base chain %s (type %s, hook %s; %s)", base.Name, chainType(base), base.Hook, strings.Join(path, " -> "))
				if br.rule == last {
					return fmt.Sprintf("%s runs from %s: %s", need.what, where, need)
				}
				return fmt.Sprintf("%s %s: makes rule %q (chain %s) run its %s from %s: %s",
					last.Verdict, last.Target, br.rule.ID, br.chain.Name, need.what, where, need)
			}
		}
	}
	return ""
}

// tooDeep returns the path of jumps (targets) from a base chain of r to
// the first chain it finds more than maxJumpDepth jumps from it, or nil.
func tooDeep(r *ruleset.Ruleset, targets map[string][]string) []string {
	// below[c] is the longest path of jumps from c, once known.
	below := map[string]int{}
	var path []string
	var walk func(c string, depth int) bool
	walk = func(c string, depth int) bool {
		path = append(path, c)
		if depth > maxJumpDepth {
			return true
		}
		if b, ok := below[c]; ok && depth+b <= maxJumpDepth {
			path = path[:len(path)-1]
			return false
		}
		longest := 0
		for _, t := range targets[c] {
			if walk(t, depth+1) {
				return true
			}
			longest = max(longest, below[t]+1)
		}
		below[c] = longest
		path = path[:len(path)-1]
		return false
	}
	for _, c := range r.Chains {
		if c.Hook != "" && walk(c.Name, 0) {
			return path
		}
	}
	return nil
}

// lowered returns a rule's lowered form if p has it.
func (p *prepared) lowered(r *ruleset.Rule) (lowered, bool) {
	if p == nil {
		return lowered{}, false
	}
	lr, ok := p.rules[r]
	return lr, ok
}
