//! The sans-IO node: one state machine for origins, relays, peers and protocol viewers
//! (they differ in capabilities, not in logic). It never reads a clock, opens a
//! socket or sleeps: drivers call `handle_*` and drain `poll_*` (DESIGN.md §1).
//!
//! Modules:
//! - [`config`] — `NodeConfig` (capacity, thresholds, heartbeat interval, buffer size).
//! - [`buffer`] — per-channel block ring buffer with duplicate elimination (V9).
//! - [`parents`] — parent links: assigned / connecting / connected / disconnecting (V9).
//! - [`children`] — the ConnectionState table: child nodes and local viewers (V3).
//! - [`channel`] — everything a node keeps for one channel (V8: many channels per node).
//! - [`login`] — LOGIN / LOGOFF, DISTRIBUTE and CONSOLIDATE at the thresholds (V3, V4, V5).
//! - [`predict`] — the ΔT look-ahead: early DISTRIBUTE, CONSOLIDATE only when contracting (V7).
//! - [`forward`] — receiving blocks from parents and forwarding them to children (V9).
//! - [`foreign`] — a node pushing without being a parent (its LOGOFF was lost) is told LOGOFF again (V9).
//! - [`parent_set`] — the coordinator's versioned full parent set, for relays and peers
//!   alike: checked, stale ones ignored, the placement (tier or peer overlay) (C1, V2, C4, C6).
//! - [`switch`] — the one connect-before-disconnect: parent sets, Redirect, a viewer's
//!   move; feeds kept per link, blocks in flight taken (V9, V10, C1).
//! - [`heartbeat`] — the D8 heartbeat report.
//! - [`ingest_health`] — an origin's ingest health sent to the coordinator (X1).
//! - [`strategy`] — forwarding strategies: erasure groups (D5).
//! - [`monitor`] — watching the parent tier, LinkDowngrade (V10).
//! - [`origin_watch`] — a tier-1 relay reports its silent origin at once; a `Probe` is answered (D7).
//! - [`start`] — a fresh peer's start, one for all its substream parents (D4, V9).
//! - [`pull`] — lazy links: Have / Want, flooding with duplicate elimination (D3).
//! - [`middle`] — middle level: erasure-coded k+n substreams, recovery shards sent to
//!   coded children, groups rebuilt from any k, loss measured for n (D5).
//! - [`channel_key`] — the origin key a channel's blocks verify against, as the coordinator gives it (X3, D7).
//! - [`watch`] — a protocol viewer asking the coordinator where to watch (V2), and
//!   moving to the relay the coordinator names when its relay died (V10).
//! - [`continuity`] — a protocol viewer's seqs over its whole run: missing blocks
//!   across relay switches, switches, longest gap (V9, V10).
//! - [`timers`] — the node's timer table: every deadline, its handler, one order.
//! - [`uplink`] — a peer's uplink cap: a token bucket over per-child queues that
//!   drops blocks too late to matter and charges control to the same budget (C4).
//! - [`epoch`] — the coordinator's epoch: orders of an older one ignored (D7, X7).
//! - [`retired`] — a channel the coordinator retired: logged off and forgotten (C1).
//! - [`elsewhere`] — a coordinator that does not serve us names the leader: register there (D7, X7).
//! - [`register`] — registering with the coordinator, again with a bounded backoff when unanswered (D7, D8).
//! - [`audio_viewers`] — local viewers of the audio-only feed, in slots of their own (C3).
//! - [`delay_line`] — a delayed viewer's blocks, released `delay` behind live (C3).
//! - [`playout`] — a peer's playout stage: out-of-order blocks in, in order out, a gap
//!   given up the delay after the missing block was due, with a resync at a keyframe
//!   (D4); run by the tokio driver for a peer's local players and by the simulator
//!   per peer viewer (X5).
//! - [`timings`] — what a node reports of each channel: startup, stored lag,
//!   blocks and bytes stored, each the simulator's figure at the same point (X5).
//! - [`lag_histogram`] — the playout stage's end-to-end lag (origin time → played), bounded.
//! - [`node`] — the `Node` machine and its verbs.
//! - [`event`] — what the node reports to its driver.

pub mod audio_viewers;
pub mod buffer;
pub mod channel;
pub mod channel_key;
pub mod children;
pub mod cluster;
pub mod config;
pub mod continuity;
pub mod delay_line;
pub mod elsewhere;
pub mod epoch;
pub mod event;
pub mod foreign;
pub mod forward;
pub mod heartbeat;
pub mod ingest_health;
pub mod lag_histogram;
pub mod login;
pub mod middle;
pub mod monitor;
pub mod node;
pub mod origin_watch;
pub mod parent_set;
pub mod parents;
pub mod playout;
pub mod predict;
pub mod pull;
pub mod register;
pub mod retired;
pub mod standby;
pub mod start;
pub mod strategy;
pub mod switch;
#[cfg(test)]
mod test_fixture;
pub mod timers;
pub mod timings;
pub mod uplink;
pub mod watch;

pub use buffer::{BlockBuffer, InsertOutcome};
pub use config::NodeConfig;
pub use delay_line::{DelayLine, DelayedStart};
pub use event::Event;
pub use lag_histogram::LagHistogram;
pub use node::{Node, Transmit};
pub use playout::{Playout, PlayoutBlock, PlayoutConfig, PlayoutStats};
pub use standby::{first_backup_seq, PrimaryWatch, StandbyWindow, WindowBlock};
