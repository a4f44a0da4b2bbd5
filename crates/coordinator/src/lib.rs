//! The sans-IO coordinator (the seed's PNC / control center). It never does I/O:
//! drivers call `handle_message` / `handle_timeout` and drain `poll_*`.
//!
//! Modules (seams for the later split into client manager, content directory and
//! one manager per channel and region, seed 002):
//! - [`config`] — `CoordinatorConfig`.
//! - [`registry`] — the static overlay: registered nodes by tier (V1), liveness, load.
//! - [`manager`] — one channel's Virtual Active Network: active relays, phases, parents (V1, V8).
//! - [`activation`] — start-up path and parent choice (V2), multiple parents (V9).
//! - [`distribute`] — DISTRIBUTE (V4), with farms (V6) and prediction (V7).
//! - [`consolidate`] — CONSOLIDATE (V5).
//! - [`farm`] — bursts: arrival-rate sizing and server farms, round-robin (V6).
//! - [`predict`] — login/logoff rate prediction (SysLinRate, Loffrate_s), tier room (V7).
//! - [`regroup`] — MIN_s and the eligible group of l existing relays (V7).
//! - [`downgrade`] — LinkDowngrade: another parent, a sibling, or a new parent (V10).
//! - [`watch`] — choosing the relay a viewer is redirected to (V2).
//! - [`multitree`] — k substream trees built greedily, one tree at a time (D4, C10).
//! - [`ejection`] — ejecting the lowest-uplink nodes until the system is feasible (C6).
//! - [`peers`] — the peer overlay: three levels, multi-tree, mesh, reassignment (D1-D6, C2, C4, C6, C7).
//! - [`policy`] — operators' policies: the TOML file, its check, per-kind questions (C3).
//! - [`history`] — the history store: sessions, availability, uplink, parent stalls; ranking (C1, C4, D1).
//! - [`geo_block`] — a viewer in a geo-blocked region refused with the reason (C3, C4).
//! - [`policy_store`] — the policies in force: applied whole or refused, restored (C1, C3).
//! - [`link_caps`] — caps between regions from the policies, handed to the overlays (C3, C4).
//! - [`reservation`] — bandwidth reservations on capped links: soft state refreshed by
//!   the managers, partitioned among them, measurement-based in measured mode (C5).
//! - [`idle`] — relays that feed nobody for a while are made idle (V5).
//! - [`adopt`] — a relay back from a partition (or met by a restarted coordinator) is
//!   made active again with the links it reports, not rebuilt (D7, D8, V10, X5).
//! - [`heartbeat_gate`] — a heartbeat is checked against the books before it is used (C1, D8).
//! - [`liveness`] — heartbeats (D8) and crashed relays (timeout).
//! - [`announce`] — channel announcement, origin identity and takeover, re-registration (X1, X3, D7).
//! - [`viewer_moves`] — where each protocol viewer watches; a lost relay's viewers moved (V2, V10).
//! - [`coordinator`] — the machine and its verbs.
//! - [`event`] — everything it decides, for logs and the dashboard.

pub mod activation;
pub mod adopt;
pub mod announce;
pub mod config;
pub mod consolidate;
pub mod coordinator;
pub mod distribute;
pub mod downgrade;
pub mod ejection;
pub mod event;
pub mod farm;
pub mod geo_block;
pub mod heartbeat_gate;
pub mod history;
pub mod idle;
pub mod link_caps;
pub mod liveness;
pub mod manager;
pub mod multitree;
pub mod peers;
pub mod policy;
pub mod policy_store;
pub mod predict;
pub mod registry;
pub mod regroup;
pub mod reservation;
pub mod viewer_moves;
pub mod watch;

pub use config::{CoordinatorConfig, PeerConfig};
pub use coordinator::{Coordinator, Transmit};
pub use event::CoordEvent;
