package nft

import "github.com/homeedge/edge/netfilter/ruleset"

// StripOffload returns a copy of r without the flowtable and without
// offload statements, for kernels without flowtable support
// (FlowtableSupported). r is not modified; rules are copied only where
// they change.
func StripOffload(r *ruleset.Ruleset) *ruleset.Ruleset {
	out := *r
	out.Flowtable = nil
	out.Chains = make([]*ruleset.Chain, len(r.Chains))
	for i, c := range r.Chains {
		nc := *c
		nc.Rules = make([]*ruleset.Rule, len(c.Rules))
		for j, rule := range c.Rules {
			if rule.Offload {
				nr := *rule
				nr.Offload = false
				rule = &nr
			}
			nc.Rules[j] = rule
		}
		out.Chains[i] = &nc
	}
	return &out
}
