//! Bandwidth reservations on constrained links (C5, seed 002): the policy
//! manager's soft state of what each link capped by policy has booked, with the
//! cap partitioned among the managers (DCMs) that use the link.
//!
//! The model: a manager reserves the estimated bps of each connection that crosses
//! a capped link, and keeps refreshing it while the connection lives; a reservation
//! not refreshed within `ttl_ms` times out, so a torn-down connection frees its
//! bandwidth without being told. Nothing is ever granted beyond the cap: a grant is
//! refused ([`Refused::Full`]) when booked + asked > cap. In measured mode
//! (`measured`) a refresh carries the bps the connection really used, and that is
//! what is booked, so connections that use less than they reserved let more in. The
//! cap is partitioned among the managers: a request is granted from the manager's
//! own partition, else its partition grows from the unallocated pool, else idle
//! budget is taken back from other managers (the policy manager's part), else it is
//! refused; every `rebalance_ms` the partitions follow usage. A lowered cap is
//! enforced on new requests only: what is booked stays until released or expired,
//! and [`Reservations::excess`] tells the managers how much to shed.
//!
//! Bounds: at most [`MAX_CAPS`] capped links, [`MAX_LINKS`] of them holding
//! reservations at once, [`MAX_RESERVATIONS`] per link and
//! [`MAX_RESERVATIONS_TOTAL`] in all; beyond them a request is refused (`Full`).
//! No input panics: a link from an end to itself, an unknown link, manager or
//! connection is a no-op (`false` from `refresh`, `NoCap` from `reserve`).
//!
//! Verbs of [`Reservations`]:
//! - caps: `set_caps` (whole, from the policy store), `cap`, `is_capped`;
//! - a manager's requests: `reserve`, `would_fit` / `grant_path` (read-only probes
//!   while ranking candidates), `refresh`, `release`;
//! - time: `handle_timeout`, `poll_timeout`;
//! - views: `booked`, `excess`, `partition`, `reservation`, `links`,
//!   `expired_total`, `dropped_total`, `grants`.
//!
//! Polling order: the driver calls `handle_timeout(now)` first whenever
//! `poll_timeout()` is due (so expired bandwidth is free before new requests at the
//! same instant), then the requests of that instant, then `poll_timeout()` again
//! after every call that may have moved it (`reserve`, `refresh`, `handle_timeout`).
//!
//! - [`ids`] — `LinkKey` (sorted ends), `ManagerId`, `ConnId`.
//! - [`ledger`] — one link's soft state: reservations, booked bps, the grant rule.
//! - [`partition`] — budgets among managers: local grant, pool, reclaim, rebalance.
//! - [`machine`] — `Reservations`: the verbs, the expiry index, the rebalance timer.

pub mod ids;
pub mod ledger;
pub mod machine;
pub mod partition;

#[cfg(test)]
mod tests;

pub use ids::{ConnId, LinkKey, ManagerId};
pub use ledger::Reservation;
pub use machine::{
    GrantCounts, Refused, ReservationConfig, ReservationConfigError, Reservations, MAX_CAPS,
    MAX_LINKS, MAX_RESERVATIONS, MAX_RESERVATIONS_TOTAL,
};
pub use partition::GrantPath;
