//! A node's record in one byte (C4's "rank by history", D1's "good history"):
//! [`Grade::Bad`], [`Grade::Neutral`] or [`Grade::Good`], read from the history
//! store once per heartbeat that changes it and kept on the overlay's member, so
//! parent selection (a hot path: the simulator runs a million peers) compares a
//! byte, never a record.
//!
//! - **Bad**: as a parent, at least [`MIN_FED_REPORTS`] reports by its children
//!   and more than [`BAD_STALL_RATE`] of them stalled; or, after a second
//!   session, alive less than [`BAD_AVAILABILITY`] of the time known.
//! - **Good**: not bad, at least [`MIN_FED_REPORTS`] reports as a parent with at
//!   most [`GOOD_STALL_RATE`] stalled, one session (never lost), and — where it
//!   declared an uplink and was measured — an achieved uplink of at least
//!   [`GOOD_UPLINK_RATIO`] of it, or at least one stream rate.
//! - **Neutral**: anything else, and every node the store does not know.
//!
//! The uplink achieved against declared raises a node, never lowers it: a peer
//! achieves only what the coordinator gives it, so a low ratio mostly says
//! "underused"; under-delivery on what it was given is what the stall rate counts.

use super::record::NodeHistory;
use super::History;
use tiercast_proto::{NodeId, Timestamp};

/// Reports as a parent before its stall rate counts either way.
pub const MIN_FED_REPORTS: u64 = 8;
/// Stalled share of its children's reports past which a parent is bad.
pub const BAD_STALL_RATE: f64 = 0.25;
/// Stalled share at or under which a parent may be good.
pub const GOOD_STALL_RATE: f64 = 0.05;
/// Availability under which a node back for another session is bad.
pub const BAD_AVAILABILITY: f64 = 0.8;
/// Achieved over declared uplink from which a node may be good.
pub const GOOD_UPLINK_RATIO: f64 = 0.5;

/// A node's record, worst first (so `Ord` ranks it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grade {
    Bad,
    /// No record, or not enough of one.
    #[default]
    Neutral,
    Good,
}

impl History {
    /// The node's grade at `now` (a stream of `stream_kbps` for "one stream rate").
    pub fn grade(&self, now: Timestamp, id: NodeId, stream_kbps: u32) -> Grade {
        self.get(id)
            .map_or(Grade::Neutral, |h| grade_of(h, now, stream_kbps))
    }

    /// The nodes whose grade the last [`History::heard`] changed, with the new
    /// grade (the sender and the parents it reported; usually none).
    pub fn regraded(&self) -> &[(NodeId, Grade)] {
        &self.regraded
    }
}

/// The grade of one record at `now`.
pub fn grade_of(h: &NodeHistory, now: Timestamp, stream_kbps: u32) -> Grade {
    {
        let judged = h.fed_reports >= MIN_FED_REPORTS;
        let stalls = h.fed_stall_rate();
        if (judged && stalls > BAD_STALL_RATE)
            || (h.sessions >= 2 && h.availability(now) < BAD_AVAILABILITY)
        {
            return Grade::Bad;
        }
        let delivers = h.uplink_samples == 0
            || h.declared_uplink_kbps == 0
            || h.uplink_ratio().is_some_and(|r| r >= GOOD_UPLINK_RATIO)
            || h.achieved_uplink_kbps >= f64::from(stream_kbps);
        if judged && stalls <= GOOD_STALL_RATE && h.sessions <= 1 && delivers {
            Grade::Good
        } else {
            Grade::Neutral
        }
    }
}
