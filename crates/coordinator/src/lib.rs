//! The sans-IO coordinator (the seed's PNC / control center). It never does I/O:
//! drivers call `handle_message` / `handle_timeout` and drain `poll_*`.
//!
//! The crate's folders are the parts of seed 002's control center
//! (`docs/ARCHITECTURE.md` draws them and who calls whom):
//! - [`coordinator`] — the machine and its verbs: it routes every message and tick
//!   to the parts ([`config`], [`event`]: its configuration and everything it decides).
//! - [`client_manager`] — registrations, heartbeats checked before use, liveness (C1, D8).
//! - [`content_directory`] — channels: announcement, names, origins (X1, X3, D7).
//! - [`service_manager`] — creates and retires the managers: the only part that adds
//!   or removes one; the
//!   one interface over both strategies — a read-only view and the routed verbs
//!   (watch, leave, heartbeat report, link downgrade, load report, tick) (C1).
//! - [`van`] — the relays' manager per channel: the Virtual Active Network (V1–V11).
//! - [`peers`] — the peer overlay's manager per channel: three levels, multi-tree,
//!   mesh, reassignment, ejection, caps between regions (D1–D6, C2, C4, C6, C7, C10).
//! - [`network_monitor`] — the network-condition monitor: a graph of links and
//!   region pairs measured from heartbeats; congested links found (C1, C2).
//! - [`policy`] — the policy store: the operators' file, its check, the rules in
//!   force, geo blocks, caps, reservations (C1, C3, C4, C5).
//! - [`history`] — the history store: sessions, availability, uplink, parent stalls;
//!   ranking (C1, C4, D1).
//! - [`timers`] — the coordinator's timer table: every deadline, its handler, one order.
//! - [`uplink_ledger`] — each node's uplink booked once, machine-wide, and shared
//!   by the managers of the channels it is on (C9, V8).
//! - [`dense_map`], [`small_map`] — per-node records in dense slots, and a few
//!   entries in one sorted vector (X7's memory per node).
//!
//! Not parts yet (issue 11): one manager per (channel, region); the policy store
//! and the uplink ledger still hand the peer overlays their caps, rules and
//! shares by calling the overlays' methods, not through the routed verbs.
//!
//! The modules' former flat paths (`registry`, `manager`, `multitree`…) are kept
//! as re-exports for the drivers and the simulator.

pub mod client_manager;
pub mod config;
pub mod content_directory;
pub mod coordinator;
pub mod dense_map;
pub mod event;
pub mod history;
pub mod network_monitor;
pub mod node_hash;
pub mod peers;
pub mod policy;
pub mod service_manager;
pub mod small_map;
pub mod timers;
pub mod uplink_ledger;
pub mod van;

pub use client_manager::{heartbeat_gate, last_report, liveness, registry};
pub use content_directory::announce;
pub use peers::{ejection, multitree};
pub use policy::{geo_block, link_caps, reservation, store as policy_store};
pub use van::{
    activation, adopt, consolidate, distribute, downgrade, farm, idle, manager, predict, regroup,
    viewer_moves, watch, watch_feed,
};

pub use config::{CoordinatorConfig, PeerConfig};
pub use coordinator::{Coordinator, Transmit};
pub use event::CoordEvent;
