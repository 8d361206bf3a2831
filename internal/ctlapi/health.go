package ctlapi

import (
	"net/netip"
	"time"
)

// HealthTarget is one health-checked address, as the daemons that run
// checks (edge-dns) report it.
type HealthTarget struct {
	Key  string     `json:"key"`
	Addr netip.Addr `json:"addr"`
	// Type is tcp or http.
	Type string `json:"type"`
	Port uint16 `json:"port"`
	// Up is whether the address is answered.
	Up bool `json:"up"`
	// Checked is false until the first check finished; until then the
	// target counts as up.
	Checked bool `json:"checked"`
	// Since is when the target last went up or down, or when its checks
	// started.
	Since time.Time `json:"since"`
	// LastCheck is when the latest finished check started.
	LastCheck time.Time `json:"last_check,omitzero"`
	// LastError is why the latest check failed; empty when it passed.
	LastError string `json:"last_error,omitempty"`
	// Successes and Failures count the latest run of equal results.
	Successes int `json:"successes"`
	Failures  int `json:"failures"`
}
