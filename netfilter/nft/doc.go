// Package nft is edge's one nftables layer: it checks a ruleset (package
// ruleset), renders it as nft text and applies it to the kernel over
// netlink, replacing the whole table inet <name> in one transaction.
// edge-firewall (table inet edge), edge-vpn (inet edge_vpn) and edge-lb
// (inet edge_lb) program the kernel through it; no other package of the
// suite imports google/nftables (a rule in internal/repotest).
//
// Each kind of match (ruleset.MatchKind) is one entry of a table here:
// how it is checked and normalised, printed and encoded; the lowering,
// Render and Apply find it there, so a new kind is one edit.
//
// # Text
//
// Render prints exactly what `nft list table inet <name>` (nft 1.0.6)
// prints once Apply has loaded the ruleset, element order, line breaks
// and priority names included; the oracle test compares the two in a
// throwaway namespace, for the netlink path and for `nft -f` of
// RenderScript's file. RenderScript is the file the NixOS module loads
// at boot: `table inet edge {}`, `delete table inet edge`, then the
// table, which nft runs as one transaction that touches no other table.
// Check refuses what nft could not read back (names that are nft
// keywords, quotes in comments, protocol combinations nft's parser
// rejects) and names the rule, set or chain. The flowtable block cannot
// be checked on a kernel without NF_FLOW_TABLE; it follows nft 1.0.6's
// source.
//
// # Apply
//
// One batch declares the table, deletes it and rebuilds it: the kernel
// switches atomically, a refused batch changes nothing, other tables
// (docker, libvirt, k3s, edge-lb's) are never touched. Messages are
// encoded here and sent on a raw netlink socket rather than through
// google/nftables' Flush, for three reasons measured on v0.3.0:
//
//   - Errors name their object. Every message of the batch has a label
//     ("rule \"zone lan input: allow ssh\" (chain input)", "set block4:
//     elements 10.0.0.0/24 to 10.3.255.0/24"); the kernel reports each
//     refused message under its sequence number, so a *BatchError names
//     the culprit exactly, no bisecting needed. A refusal at commit time
//     (after every message was accepted) is reported as "commit".
//   - Large sets arrive whole. Elements go in messages of at most 1,000
//     (and under netlink's 64 KiB attribute limit, so nothing wraps and
//     is silently truncated), the socket's send buffer is raised to fit
//     the batch, and after the commit the kernel's element count of every
//     set is read back and compared with what was sent: the count the
//     kernel reports with the set (NFTA_SET_COUNT, one request) when it
//     has one and it matches, else a dump of the set's elements, counted
//     (on 100k prefixes that dump costs about as much as the apply).
//   - Only the last message asks for an ack and none asks for an echo,
//     so a batch of thousands of rules cannot overflow the receive
//     buffer with acknowledgements.
//
// google/nftables still encodes tables, chains, named sets and
// flowtables (captured through its test dialer) and every expression;
// rules, set elements and anonymous sets are assembled here.
//
// # Validate
//
// Validate sends Apply's batch without NFNL_MSG_BATCH_END: the kernel
// processes every message as for a commit, reports each refusal under
// its sequence number (so the *BatchError is Apply's, word for word),
// and aborts the unfinished transaction (NFNL_ABORT_VALIDATE), which is
// how nft -c works. `nft -a list ruleset` is byte for byte the same
// before and after, with or without a table holding counters, a meter
// and elements added at run time, and for 5,000 prefixes sent in
// chunks (tests in a throwaway namespace). The one trace: the kernel's
// table handle counter moves on, so the next table created gets a
// higher handle (visible with nft -a only).
//
// On abort the kernel does not run the checks a commit runs on the
// whole table (nft_table_validate) for a table the batch creates, and
// every replace creates its table: measured on Linux 6.18, a jump loop,
// a chain 16 jumps from a base chain, or a dnat, masquerade or reject
// reached from a hook it cannot run in are refused by a commit (EMLINK,
// EOPNOTSUPP) and accepted by the aborted batch, by nft -c as well (nft
// -c -f of a replace with a loop exits 0; nft -f of it fails). The new
// table inherits the namespace's validate state, which only a failed
// commit sets; once one has failed, later aborted batches in that
// namespace do get checked. So Check does these checks itself: the same
// walk from each base chain, naming the rule a failed commit names (the
// first, in batch order, after which the table no longer validates),
// with the hooks and chain types each statement needs measured on the
// kernel (TestHookNeedsMatchKernel).
//
// FlowtableSupported (ProbeFlowtable for the reason) creates a flowtable
// in a scratch table that the same transaction deletes; without kernel
// support the daemon applies StripOffload(r) and says so once. Delete
// removes the table and nothing else.
//
// Statements are translated the way nft compiles them (implicit
// `meta nfproto`/`meta l4proto` dependencies, byte-aligned prefix loads,
// bitmask tests for ct state and status, ICMP or ICMPX reject by the
// rule's family, a TCP reset only after a match on tcp), which is what
// makes the listing match Render.
//
// # What survives a re-apply
//
// A replace recreates every object, so by itself it resets all state.
// With KeepState (or WithState and a snapshot from ReadState) Apply
// carries over:
//
//   - rule counters, matched by rule ID (the rule's comment): the new
//     rule's counter starts at the old packet and byte counts. Rules whose
//     ID changed start at zero; counters of removed rules are dropped.
//   - elements of timeout sets (ban sets) that the ruleset does not
//     declare itself, such as bans added at run time: re-added with the
//     time they had left as their timeout (nft then lists that as the
//     element's timeout), their comment kept. Elements the ruleset
//     declares are added as declared: the ruleset wins for its own keys.
//     Expired elements, and elements that no longer fit the set's type,
//     are dropped.
//
// It does not carry over:
//
//   - meters (dynamic sets): their elements hold the per-source limit
//     state, which netlink cannot write back; a re-added key without it
//     would make an `over` rule match every packet of that source. Meters
//     start empty, which only restarts each source's rate window.
//   - elements of sets without the timeout flag: the ruleset declares
//     those sets completely.
//   - whatever changes between the read and the commit (a few
//     milliseconds: packets counted, elements added).
package nft
