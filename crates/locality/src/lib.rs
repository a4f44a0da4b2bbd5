//! tiercast's locality-aware peer groups (seed 004, issue 14: L1–L6), sans-IO:
//! nodes find the group of their neighbourhood by measuring round-trip times,
//! with no map of the Internet. One machine per node, time passed in, the
//! verbs of DESIGN.md §1.
//!
//! Modules:
//! - [`config`] — settings with seed 004's figures as defaults.
//! - [`msg`] — the messages (postcard), `GroupId`, `GroupRef`.
//! - [`machine`] — `LocalityNode`: inputs routed to the rules, polls.
//! - [`timers`] — the timer table.
//! - [`rendezvous`] — L1 the boot cache of groups (any node can serve it).
//! - [`measure`] — L2 Measure → RTT, minimum of several probes.
//! - [`ratelimit`] — L2 bounded answers to Measure (per sender and overall).
//! - [`join`] — L3 the locality test and the join search.
//! - [`links`] — L4 a new group and its inter-group links.
//! - [`leader`] — L5 leader, leadership list, Alive, succession, election.
//! - [`merge`] — beyond seed 004: two groups founded at once in one place
//!   (their leaders nearer than `merge_rtt_ms`) merge, the higher id into the lower.
//! - [`cache`] — L6 own-group and inter-group caches; [`upkeep`] — L6
//!   periodic re-measurement, link restoration, expiry.

pub mod cache;
pub mod config;
pub mod join;
pub mod leader;
pub mod links;
pub mod machine;
pub mod measure;
pub mod merge;
pub mod msg;
pub mod ratelimit;
pub mod rendezvous;
pub mod timers;
pub mod upkeep;

#[cfg(test)]
mod election_tests;
#[cfg(test)]
mod machine_tests;
#[cfg(test)]
mod testnet;

pub use cache::{GroupView, InterCache, Link};
pub use config::{ConfigError, LocalityConfig};
pub use join::{locality_test, Verdict};
pub use machine::{LocalityEvent, LocalityNode, LocalityStats, Takeover, Transmit};
pub use msg::{DecodeError, GroupId, GroupRef, LocalityMsg};
