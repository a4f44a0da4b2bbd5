//! Prometheus `/metrics` (feature X4, issue 16): the text exposition format
//! (version 0.0.4) written by hand from the machines' read-only views — no
//! global recorder, nothing counted twice. Every name starts `tiercast_`,
//! counters end `_total`, units are in the name (`_bytes`, `_seconds`).
//! `docs/METRICS.md` lists every metric.
//!
//! - [`writer`] — [`Exposition`]: families (one `# HELP` and `# TYPE` each),
//!   samples with escaped labels.
//! - [`node`] — an origin's, relay's or peer's metrics from its [`NodeSnapshot`](crate::node_driver::NodeSnapshot).
//! - [`ingest`] — an origin's ingest health (bitrate, keyframe interval, gaps, stalls).
//! - [`coordinator`] — the coordinator's metrics from its machine's views.

pub mod coordinator;
pub mod ingest;
pub mod node;
pub mod writer;

pub use writer::{Exposition, CONTENT_TYPE};
