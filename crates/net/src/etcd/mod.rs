//! Several coordinator processes on etcd (X7, D7): logical manager ids mapped
//! to processes. Each id (a cell: its channels, the nodes registered with it)
//! is held by one process under a lease; the others, and spares, answer that
//! id's nodes with where its holder is (`Message::ServedElsewhere`) and its
//! channels' viewers with a redirect to it, and one of them takes the id over —
//! rebuilding its state from what the nodes report — when the holder's lease
//! ends. Every order carries the holder's epoch (the create revision of its
//! key), so a holder cut off from etcd, which stops issuing orders when its
//! lease runs out, cannot fight its successor.
//!
//! - [`client`] — etcd's v3 API through its JSON gateway, several endpoints.
//! - [`directory`] — the map: holders, known ids, channels → ids.
//! - [`election`] — a manager id's key, its lease and the epoch; spares.
//! - [`lease`] — how long a holder may believe its lease holds.

pub mod client;
pub mod directory;
pub mod election;
pub mod lease;

pub use directory::Directory;
pub use election::{Election, ElectionConfig, Leadership, ManagerChoice};
