//! The client manager (C1, seed 002): every registered node, its heartbeats and
//! its liveness.
//!
//! - [`registry`] — the static overlay: registered nodes by region and tier (V1),
//!   their declared uplinks and load; bounded region names.
//! - [`heartbeat_gate`] — a heartbeat is checked against the books before any of
//!   its fields is used: its sender, its channels, the links it names (C1, D8).
//! - [`epoch_gate`] — a node following a newer coordinator epoch than ours is
//!   told to go elsewhere, and we order nothing more (D7, X7).
//! - [`last_report`] — what the registry keeps of a node's last heartbeat:
//!   the few fields read afterwards, in place, not the decoded heartbeat.
//! - [`liveness`] — heartbeats (D8) and crashed relays (timeout).
//! - [`node_table`] — the registry's records, found by id through a hash index.
//! - [`parent_sets`] — the one way a node is told its parents: a versioned full
//!   parent set, numbered per (node, channel) from its registration (C1).

pub mod epoch_gate;
pub mod heartbeat_gate;
pub mod last_report;
pub mod liveness;
pub mod node_table;
pub mod parent_sets;
pub mod registry;
