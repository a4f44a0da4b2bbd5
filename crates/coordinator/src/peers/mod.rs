//! The peer overlay of one channel (seeds 002 and 003): viewers' own uplinks carry
//! the stream. Three levels (D2): the top level — the origin, waypoint relays and
//! preferred peers (D1) — holds the whole stream on a c-connected mesh (D3: a push
//! tree plus lazy Have/Want links); below it every other peer takes one parent per
//! substream of a k-substream multi-tree (D4, C10), interior in one tree and a leaf
//! in the others, so the high-capacity peers form the middle of each region's
//! trees. The coordinator keeps reassigning parents (C4, C6) and recomputes
//! everything when enough has changed or periodically (C7).
//!
//! Modules:
//! - [`overlay`] — members, their parents per substream, booked uplink, the spare index.
//! - [`member`] — one member as the overlay keeps it.
//! - [`member_map`] — the members by id: a dense map, walked by ascending id.
//! - [`per_tree`] — a member's values one per tree, inline for up to four trees.
//! - [`lazy_links`] — a member's lazy links, no allocation for none or one.
//! - [`books`] — the overlay's books checked: links, slots, acyclic trees, depths.
//! - [`caps`] — caps on the links between regions, booked and shed (C3, C4, C5).
//! - [`clusters`] — the bottom clusters: split and merged by size, members
//!   told theirs in heartbeat answers, parents looked for in their own first (C1, C8).
//! - [`cap_rebuild`] — a full recomputation's links into a capped group, shared out per tree (C3, C7).
//! - [`cap_handover`] — after a new or lowered cap, new links across book against a lower
//!   ceiling while the links that stay catch up (C3, C5, C6).
//! - [`cap_fallback`] — a region cap's declared fall-back for premium viewers (C3, C4).
//! - [`cap_joins`] — joins into a region reached only across caps, paced (C3, C6).
//! - [`depth`] — each member's depth per tree, remembered; ancestry (D4, C4).
//! - [`spare`] — the spare index: members with spare slots per tree and region.
//! - [`select`] — parent selection: feasible → policy → history → nearest (C4, C6).
//! - [`history_rank`] — the history store's grade of each member, for selection and D1.
//! - [`place`] — joins, leaves, re-homing orphans, pre-emption by a strong joiner (C6).
//! - [`top`] — preferred nodes and waypoints (D1), the c-connected mesh and its push tree (D3).
//! - [`top_algorithm`] — the top level floods, or runs a plain tree once calm (D6).
//! - [`waypoints`] — waypoint relays only where a region has no preferred peer (D1).
//! - [`middle`] — each region's cluster of high-capacity peers with k+n erasure-coded
//!   substreams, n from its measured loss; the algorithm per level and region (D2, D5, D6).
//! - [`admission`] — whether a newcomer, or an ejected peer back, can be carried (C6).
//! - [`multitree`] — k substream trees built greedily, one tree at a time (D4, C10).
//! - [`ejection`] — ejecting the lowest-uplink nodes until the system is feasible (C6).
//! - [`premium`] — premium viewers before free ones: ejection, replacement, pre-emption (C3, C6).
//! - [`premium_preempt`] — a premium member with no parent in a tree takes a free leaf's (C3, C6).
//! - [`rebuild`] — full recomputation with the greedy multi-tree, ejection (C6, C7, C10).
//! - [`source_moves`] — a peer moved between the overlay and a relay when the
//!   servers-or-peers rule in force changes (C3, C6, C7).
//! - [`subtree_rehome`] — an orphaned subtree whose tree has room only inside it takes a leaf's parent (C6, D4).
//! - [`rejoin`] — a peer back from a partition or a coordinator restart is taken back
//!   with the links it reports (D7).
//! - [`restore`] — after a coordinator restart, the overlay rebuilt top down from
//!   what its peers report, unchanged where nothing is wrong (D7).
//! - [`restore_defer`] — a bottom peer taken back before some of its reported
//!   parents, each such link kept when that parent comes back (D7).
//! - [`restore_top`] — a top peer taken back is not told its mesh while the top
//!   level is still coming back (D7, D3).
//! - [`reshape`] — a member's uplink changed from outside: a C9 share, C3's relaying
//!   hours (asked by the uplink ledger and the policy store, never written by them).
//! - [`batches`] — a full recomputation's moves told in bounded batches, parents first (C7).
//! - [`lend`] — a tree short of slots borrows one of the top level's from a tree with room (C6, C10).
//! - [`links`] — each peer's link cap: slots, push children and repair links within it.
//! - [`congestion`] — which links push (compared for C2 by [`crate::network_monitor`]).
//! - [`coordinator`] — the bodies of the peer overlay's verbs (watch, leave,
//!   report, tick), with ejection and refusal.
//! - [`verbs`] — the peer overlay behind the routed verbs the coordinator hands
//!   every manager (C1, `service_manager/verbs.rs`).

pub mod admission;
pub mod batches;
pub mod books;
pub mod cap_fallback;
pub mod cap_handover;
pub mod cap_joins;
pub mod cap_rebuild;
pub mod caps;
pub mod clusters;
pub mod congestion;
pub mod coordinator;
pub mod depth;
pub mod ejection;
pub mod history_rank;
pub mod lazy_links;
pub mod lend;
pub mod links;
pub mod member;
pub mod member_map;
pub mod middle;
pub mod multitree;
pub mod overlay;
pub mod per_tree;
pub mod place;
pub mod premium;
pub mod premium_preempt;
pub mod premium_swap;
pub mod rebuild;
pub mod rejoin;
pub(crate) mod report_wait;
pub mod reshape;
pub mod restore;
pub mod restore_defer;
pub mod restore_top;
pub mod select;
pub mod source_moves;
pub mod spare;
pub mod subtree_rehome;
pub mod top;
pub mod top_algorithm;
pub mod verbs;
pub mod waypoints;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod top_tests;

pub use middle::{Algorithm, RegionPlan};
pub use overlay::{Member, MemberKind, PeerOverlay, PeerStats};
