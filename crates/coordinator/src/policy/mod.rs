//! The operators' policies (C3), the model and its checker; the questions the
//! parent selection (C4) asks of them. In force: geo blocks (`geo_block.rs`) and
//! caps between regions (`link_caps.rs`, `peers/caps.rs`); the others are not yet
//! applied to any decision.
//!
//! - [`file`] — the TOML schema (`docs/POLICIES.md`), read with serde.
//! - [`check`] — a file refused with the line and the reason; unknown regions and
//!   channels refused when the known ones are given.
//! - [`rules`] — the checked set: ranked by strictness, declared fall-backs.
//! - [`network`] — link caps between regions or nodes, traffic budgets, peering.
//! - [`provider`] — geo blocks, premium first, audio fall-back, delayed feed,
//!   servers or peers.
//! - [`client`] — relaying hours and device classes, content categories, affinity.

pub mod check;
pub mod client;
pub mod file;
pub mod network;
pub mod provider;
pub mod rules;

#[cfg(test)]
mod tests;

pub use check::{check, Known, PolicyError};
pub use file::{AffinityMode, Period, Source, ViewerClass};
pub use network::Cap;
pub use rules::{Policies, Ranked, Refusal};
