package ctlapi

import "time"

// Paths of edge-firewall's admin API.
const (
	// PathFWApply re-reads the config and applies it (POST FWApplyRequest,
	// answers FWApplyResult).
	PathFWApply = "/v1/fw/apply"
	// PathFWConfirm keeps an apply made with a confirm timeout (POST,
	// answers FWConfirmResult).
	PathFWConfirm = "/v1/fw/confirm"
	// PathFWDiff shows what an apply of the config file would change
	// (GET, answers FWDiff).
	PathFWDiff = "/v1/fw/diff"
	// PathFWShow shows the live ruleset with counters (GET, answers
	// FWShow; ?elements=N lists at most N elements per set, 0 all).
	PathFWShow = "/v1/fw/show"
	// PathFWBans lists (GET, answers []FWBan), adds or refreshes (POST
	// FWBanRequest) and lifts (DELETE FWUnbanRequest) bans; changes
	// answer FWBanResult.
	PathFWBans = "/v1/fw/bans"
)

// FWApplyRequest is the body of POST PathFWApply.
type FWApplyRequest struct {
	// Confirm, when set, is how long the new ruleset stays without a
	// confirm before the previous one is restored: a duration ("60s",
	// "5m"), or "default" for the config's confirm.default_timeout.
	Confirm string `json:"confirm,omitempty"`
}

// FWApplyResult answers an apply.
type FWApplyResult struct {
	// Generation is the daemon's config generation now running.
	Generation int64 `json:"generation"`
	// Changed says whether the ruleset differs from the one before.
	Changed bool `json:"changed"`
	// Diff is what changed, as a unified diff of nft text (sets' elements
	// summarized), empty when nothing did.
	Diff string `json:"diff,omitempty"`
	// Pending is set when the apply waits for a confirm.
	Pending *FWPending `json:"pending,omitempty"`
	// Summary counts what is loaded.
	Summary FWSummary `json:"summary"`
}

// FWPending is an apply that is rolled back unless confirmed in time.
type FWPending struct {
	// Generation is the config generation applied; Previous the one a
	// rollback restores.
	Generation int64 `json:"generation"`
	Previous   int64 `json:"previous"`
	// Deadline is when the rollback happens.
	Deadline time.Time `json:"deadline"`
}

// FWSummary counts what a ruleset holds.
type FWSummary struct {
	Chains   int `json:"chains"`
	Rules    int `json:"rules"`
	Sets     int `json:"sets"`
	Elements int `json:"elements"`
	// Offload is "on", "off" (not configured) or "unsupported: <reason>".
	Offload string `json:"offload"`
}

// FWConfirmResult answers a confirm.
type FWConfirmResult struct {
	// Generation is the confirmed config generation.
	Generation int64 `json:"generation"`
}

// FWDiff answers PathFWDiff.
type FWDiff struct {
	// Changed says whether an apply would change the ruleset.
	Changed bool `json:"changed"`
	// Diff is a unified diff from the applied ruleset to the config
	// file's, in nft syntax; set elements are listed as added and
	// removed per set.
	Diff string `json:"diff,omitempty"`
}

// FWShow answers PathFWShow.
type FWShow struct {
	// Ruleset is table inet edge in nft syntax with live counters and
	// the ban sets' live elements (their timeouts are the time left).
	Ruleset string `json:"ruleset"`
	// Generation is the config generation whose ruleset is loaded.
	Generation int64      `json:"generation"`
	Pending    *FWPending `json:"pending,omitempty"`
}

// FWBan is one ban.
type FWBan struct {
	Addr string `json:"addr"`
	// Expires is when the ban ends; nil for a ban without end.
	Expires *time.Time `json:"expires,omitempty"`
	// Source is "config" (bans.static) or "runtime" (edgectl fw ban).
	Source  string `json:"source"`
	Comment string `json:"comment,omitempty"`
	// Created is when the ban was first made (refreshes keep it).
	Created time.Time `json:"created"`
	// By names who made (or last refreshed) it: "uid 0".
	By string `json:"by,omitempty"`
	// Active says the kernel's ban set holds the address.
	Active bool `json:"active"`
}

// FWBanRequest is the body of POST PathFWBans. Banning an address again
// refreshes its ban with the new length.
type FWBanRequest struct {
	Addr string `json:"addr"`
	// For is the ban's length ("1h", "7d"); empty means the config's
	// bans.default_timeout, "forever" a ban without end (allowed only
	// when bans.max_timeout is 0).
	For     string `json:"for,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// FWUnbanRequest is the body of DELETE PathFWBans.
type FWUnbanRequest struct {
	Addr string `json:"addr"`
}

// FWBanResult answers a ban or an unban.
type FWBanResult struct {
	Ban FWBan `json:"ban"`
	// Refreshed says a ban of the address existed and was replaced.
	Refreshed bool `json:"refreshed,omitempty"`
	// Warnings are things the operator should know, such as a ban of an
	// address in a zone bans do not cover.
	Warnings []string `json:"warnings,omitempty"`
}

// FWStatus is edge-firewall's status detail.
type FWStatus struct {
	// Applied is when the loaded ruleset was applied.
	Applied time.Time `json:"applied"`
	// Generation is the config generation whose ruleset is loaded (after
	// a rollback, older than the daemon's).
	Generation int64      `json:"generation"`
	Summary    FWSummary  `json:"summary"`
	Bans       int        `json:"bans"`
	Pending    *FWPending `json:"pending,omitempty"`
	// LastRollback is when an unconfirmed apply was last rolled back.
	LastRollback *time.Time `json:"last_rollback,omitempty"`
}
