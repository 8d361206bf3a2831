package nft

import (
	"errors"
	"fmt"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// Check reports, naming the rule, set or chain, anything in r that the
// kernel or nft would refuse or that could not round-trip through nft's
// text syntax: r.Validate's errors, names nft reads as keywords, strings
// with quotes, conflicting protocol matches, overlapping port ranges,
// unknown ICMP types and levels. Apply checks before it sends anything.
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
	return p, nil
}

// lowered returns a rule's lowered form if p has it.
func (p *prepared) lowered(r *ruleset.Rule) (lowered, bool) {
	if p == nil {
		return lowered{}, false
	}
	lr, ok := p.rules[r]
	return lr, ok
}
