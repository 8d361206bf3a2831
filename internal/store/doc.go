// Package store provides the embedded, transactional state store that every
// edge daemon uses for what an operator adds at run time: DNS records, VPN
// peers, firewall bans, drained backends, certificates.
//
// The model is etcd's key-value model, so that state shared by several edges
// can later move to an etcd backend behind the same [Store] interface:
//
//   - Keys are slash-separated strings ("peers/laptop"), values are bytes.
//   - One store-wide revision counter goes up by exactly one for every
//     committed change set; a multi-key [Store.Apply] is one revision, like
//     an etcd transaction. Each [KV] carries CreateRev, ModRev and Version.
//   - Writes can be made conditional on a key's ModRev ([IfModRev]), which
//     gives compare-and-swap; [IfModRev](0) means "must not exist".
//   - [Store.List] returns the revision it reflects, so a caller can List
//     and then [Store.Watch] from the next revision without a gap.
//   - Watch replays changes still kept in a bounded change log and then
//     follows live ones. Older revisions are compacted away; asking for them
//     yields [ErrCompacted], and the caller should List again.
//
// [Bolt] is the single-machine backend, built on bbolt. Every commit is
// fsynced before the call returns, so a write that was acknowledged survives
// kill -9 or a power cut. The change log lives in the same bbolt file and is
// written in the same transaction as the data it describes, so watchers pull
// from it at their own pace: a slow watcher never blocks writers and never
// misses an event while its next revision is still in the log.
//
// [Collection] is a typed, JSON-encoded view of one key prefix, with
// create, update-with-retry and listing by name, for the daemons' records.
package store
