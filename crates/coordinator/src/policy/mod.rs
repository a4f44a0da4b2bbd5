//! The policy store (C1's policy database, seed 002): the operators' policies
//! (C3), the model and its checker, the rules in force, and the questions the
//! parent selection (C4) asks of them. In force: geo blocks ([`geo_block`]) and
//! caps between regions ([`link_caps`], `peers/caps.rs`) with their reservations
//! ([`reservation`], C5), and the others listed below.
//!
//! - [`store`] — the policies in force: installed whole or refused, restored.
//! - [`geo_block`] — a viewer in a geo-blocked region refused with the reason.
//! - [`watch_rules`] — a device class or content category refused with the reason.
//! - [`link_caps`] — caps between regions handed to the peer overlays (C3 → C4).
//! - [`parent_rules`] — affinity groups, caps between nodes and peering links as
//!   the parent selection's hook (C3 → C4).
//! - [`provider_rules`] — `premium_first` handed to the peer overlays (C3 → C6).
//! - [`source_rules`] — servers or peers (`prefer_source`, `traffic_budget`):
//!   where a peer's `Watch` is placed.
//! - [`source_switch`] — that rule changing (an install, a budget crossing its
//!   threshold): the peers already placed moved, a bounded number per interval.
//! - [`relay_rules`] — no relaying during given hours or for a device class: such
//!   a node joins with no uplink, its children re-homed when its hours begin.
//! - [`reservation`] — soft-state reservations on capped links, partitioned among
//!   the managers (C5).
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
pub mod geo_block;
pub mod link_caps;
pub mod network;
pub mod parent_rules;
pub mod provider;
pub mod provider_rules;
pub mod relay_rules;
pub mod reservation;
pub mod rules;
pub mod source_rules;
pub mod source_switch;
pub mod store;
pub mod watch_rules;

#[cfg(test)]
mod parent_rules_tests;
#[cfg(test)]
mod tests;

pub use check::{check, Known, PolicyError};
pub use file::{AffinityMode, Period, Source, ViewerClass};
pub use network::Cap;
pub use rules::{Policies, Ranked, Refusal};
