//! The machine-wide uplink ledger (C9; V8's "bandwidth enforced machine-wide"):
//! a node on several channels has its declared uplink booked once and shared by
//! those channels' managers, instead of each channel's peer overlay booking all
//! of it as if the node served that channel alone.
//!
//! - [`ledger`] — the books: per node, its declared uplink and each channel's
//!   share; acquire, release, bounds. Pure, no coordinator.
//! - `apply` — the coordinator's side: a peer's share is taken when it joins a
//!   channel's overlay (`peers/coordinator.rs`), given back when it leaves, is
//!   ejected or crashes, and the other channels' overlays see their member's
//!   new share at once (grown in place; shrunk in place when its children still
//!   fit, else it is placed again and its children re-homed, as C6 does for a
//!   leave).
//!
//! **The split rule: proportional to each channel's stream rate.** A channel's
//! share is `⌊U·rᶜ / Σr⌋` over the channels the node is on. Why this rule:
//! - one channel gets exactly `U`, so a node on one channel is booked exactly as
//!   before (the simulator's figures do not move);
//! - the floors never add up to more than `U`: never over-booked;
//! - it does not depend on the order the node joined its channels, so a
//!   coordinator rebuilt from heartbeats (D7) finds the same shares, and a
//!   channel the node joined first cannot starve the later ones (the
//!   "first gets what it needs" rule left a second channel nothing from a strong
//!   peer whose first overlay had booked its whole uplink);
//! - weighting by rate gives each channel uplink in proportion to what one child
//!   costs there: a node with `U = 2r` on two channels of rate `r` offers each
//!   `k` substream slots, as two nodes of uplink `r` would.
//!
//! The cost: joining a second channel shrinks the first's share at once, which
//! may re-home some of the node's children there (only when its booked slots no
//! longer fit the smaller share).
//!
//! - [`lending`] — a channel that uses less than its share lends the rest to
//!   the other channels on that node, and takes it back when it needs it; the
//!   shares never add up to more than the node's uplink. Measured and applied
//!   at the coordinator's periodic check (`usage`: each channel's booked
//!   children × rate; `CoordinatorConfig::uplink_lending` switches it off).
//!
//! - `relays` — the relays' side: a channel's VAN takes a share of a relay when
//!   it activates it and gives it back when the relay leaves the channel or is
//!   lost; activation, `/watch` redirection, DISTRIBUTE and CONSOLIDATE count a
//!   shared relay's room within the channel's share; a waypoint joins the
//!   channel's peer overlay with that same share, not its whole uplink.
//!
//! Not shared: the origin's uplink is per channel by design.

mod claims;
pub mod ledger;
pub mod lending;

mod apply;
mod relays;
mod usage;

#[cfg(test)]
mod lending_tests;
#[cfg(test)]
mod test_books;
#[cfg(test)]
mod tests;

pub use ledger::{Grant, ShareError, UplinkLedger, MAX_CHANNELS_PER_NODE};
