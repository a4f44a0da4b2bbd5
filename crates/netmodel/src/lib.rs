//! The simulator's network model (X5): sans-IO, seeded, no clock and no tokio. It
//! answers one question — "a node sends these bytes to that node now: when do they
//! arrive, or why are they lost?" — and keeps the state that answer needs.
//!
//! Modules:
//! - [`dist`] — distributions for per-node capacities (fixed, uniform, clamped
//!   normal, exponential, weighted discrete list).
//! - [`regions`] — regions with a latency matrix, jitter and per-link loss (V11's
//!   geography for the simulator).
//! - [`model`] — `NetModel`: hosts with uplink queueing and downlink serialization,
//!   per-link FIFO, crashes, link cuts and region partitions (V10's failure cases).
//! - [`handshake`] — connection set-up: a pair's first message waits for the
//!   handshake's round trips.
//!
//! Time is `u64` microseconds of virtual time; hosts are dense `u32` indices (the
//! simulator uses the node id itself).

pub mod dist;
pub mod handshake;
pub mod model;
pub mod regions;

pub use dist::{DistError, Distribution};
pub use handshake::DEFAULT_HANDSHAKE_RTTS;
pub use model::{Delivery, DropReason, HostSpec, NetModel, NetStats};
pub use regions::{RegionId, Regions, RegionsError};
