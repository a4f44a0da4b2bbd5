//! tiercast's discrete-event simulator (X5, and the simulator half of issue 3): it
//! drives the *unchanged* node and coordinator machines — no decision is made here —
//! over a seeded network model, from a scenario file, and measures what happens.
//! The same scenario and seed give a byte-identical metrics.json (except the two
//! wall-clock fields, see [`report::WALL_CLOCK_FIELDS`]).
//!
//! Modules:
//! - [`scenario`] — the TOML scenario format and its validation (docs/SCENARIOS.md).
//! - [`queue`] — the event heap keyed by `(time, seq)`, messages in a slab.
//! - [`world`] — the machines (coordinator = NodeId 0, nodes indexed by id), construction.
//! - [`run`] — the event loop: deliver, drain transmits / events, one timer per machine.
//! - [`population`] — viewers: flash crowds, churn, leave waves.
//! - [`faults`] — crashes, leaves, link cuts, partitions; orphan re-homing (V10, V11).
//! - [`flaky`] — peers that crash and come back under the same id (C4, D1).
//! - [`blocks`] — the "blocks" data plane: real blocks, per-viewer continuity, lag.
//! - [`second`] — a second channel from the same origin, watched by some peers
//!   too, with its own continuity (C9: one uplink shared by two channels).
//! - [`rate`] — path walks; the "rate" data plane (bandwidth shares along paths).
//! - [`viewer`] — per-viewer bookkeeping (block window, startup).
//! - [`playout`] — a peer viewer's playout stage: the core's `tiercast_node::Playout`
//!   (the tokio driver's, not a copy) driven with time passed in; [`playout_books`]
//!   — a peer's block is on time when that stage plays it by the deadline.
//! - [`sample`] — the per-second sample: relays per tier, lower bound, capacity bound.
//! - [`metrics`], [`report`] — accumulators and metrics.json; [`peer_report`] and
//!   [`middle_report`] — the peer overlay's figures, per level and region.
//! - [`ledger`] — expected and on-time per region and slot: efficiency, per-region
//!   continuity, per-fault windows; [`upload`] — the origin's bytes as sent;
//!   [`fault_windows`] — each fault's window and orphans; [`recompute_windows`] — the
//!   seconds around each full recomputation; [`restarts`] — nodes and the coordinator
//!   stopped and started again; [`starving`] — "fed".
//! - [`carried`] — the peers the overlay carries at the end against the least it could leave out (C6).
//! - [`members_ledger`] — the same over the overlay's members at the time (C6, C7).
//! - [`policies`] — operators' policy files applied at their time; traffic between regions against caps (C3).
//! - [`signing`] — the origin signs, every node checks; the `tamper` fault (X3).
//! - [`invariants`] — checks run during every simulation, and how a test plants a bug.
//! - [`locality`] — issue 14: the peer-group machines (crates/locality) over the
//!   network model, a runner of its own (`tiercast sim-locality`).
//! - [`log`], [`output`], [`plot`], [`progress`] — events.log, CSVs, PNGs, progress on stderr.

pub mod blocks;
pub mod carried;
pub mod fault_windows;
pub mod faults;
pub mod flaky;
pub mod invariants;
pub mod ledger;
pub mod locality;
pub mod log;
pub mod members_ledger;
pub mod metrics;
pub mod middle_report;
pub mod output;
pub mod peer_report;
pub mod playout;
pub mod playout_books;
pub mod plot;
pub mod policies;
pub mod population;
pub mod progress;
pub mod queue;
pub mod rate;
pub mod recompute_windows;
pub mod report;
pub mod restarts;
pub mod run;
pub mod sample;
pub mod scenario;
pub mod second;
pub mod signing;
pub mod starving;
pub mod upload;
pub mod viewer;
pub mod world;

pub use playout::{PlayoutTotals, PlayoutTrace, SimBlock};
pub use report::{Metrics, Report, WALL_CLOCK_FIELDS};
pub use scenario::{Scenario, ScenarioError};
pub use world::{Plant, Role, RunOptions, Simulation};

use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("output: {0}")]
    Io(String),
    #[error("plant: {0}")]
    Plant(String),
}

/// Reads a scenario file and runs it.
pub fn run_file(path: &Path, opts: RunOptions) -> Result<Report, SimError> {
    let sc = Scenario::from_file(path)?;
    Simulation::new(sc, opts)?.run()
}
