//! Several coordinator processes on etcd (X7, D7): one leader serves every
//! manager; the others stand by, answer nodes with where the leader is
//! (`Message::ServedElsewhere`) and viewers with a redirect to it, and take
//! over — rebuilding the managers' state from what the nodes report — when
//! its lease ends. Every order carries the leader's epoch (the create
//! revision of its key), so a leader cut off from etcd, which stops issuing
//! orders when its lease runs out, cannot fight its successor.
//!
//! - [`client`] — etcd's v3 API through its JSON gateway, several endpoints.
//! - [`election`] — the leader key, its lease and the epoch.
//! - [`lease`] — how long a leader may believe its lease holds.

pub mod client;
pub mod election;
pub mod lease;

pub use election::{Election, ElectionConfig, Leadership};
