//! The locality machine's timer table (DESIGN.md §1, as crates/node's): one
//! row per deadline — probes (L2), the join search (L3), a link request (L4),
//! Alive and announce (L5, L1), the member's leader watch and the election
//! (L5), re-measurement (L6) and housekeeping. `poll_timeout` is the earliest
//! row; `handle_timeout` runs every due row in this order.

use crate::machine::LocalityNode;
use tiercast_proto::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalityTimer {
    Probe,
    Search,
    LinkRequest,
    Alive,
    Announce,
    LeaderWatch,
    Election,
    Remeasure,
    Housekeeping,
}

impl LocalityTimer {
    pub const TABLE: [LocalityTimer; 9] = [
        LocalityTimer::Probe,
        LocalityTimer::Search,
        LocalityTimer::LinkRequest,
        LocalityTimer::Alive,
        LocalityTimer::Announce,
        LocalityTimer::LeaderWatch,
        LocalityTimer::Election,
        LocalityTimer::Remeasure,
        LocalityTimer::Housekeeping,
    ];

    pub fn deadline(self, n: &LocalityNode) -> Option<Timestamp> {
        match self {
            LocalityTimer::Probe => n.prober.next_deadline(&n.cfg),
            LocalityTimer::Search => n.search.as_ref().map(|s| s.deadline(&n.cfg)),
            LocalityTimer::LinkRequest => n
                .leading
                .as_ref()
                .and_then(|l| l.links.pending.map(|p| p.deadline)),
            LocalityTimer::Alive => n.leading.as_ref().map(|l| l.next_alive),
            LocalityTimer::Announce => n.leading.as_ref().map(|l| l.next_announce),
            LocalityTimer::LeaderWatch => match (&n.group, &n.leading, &n.election) {
                (Some(g), None, None) => Some(g.last_alive.plus_millis(n.cfg.leader_timeout_ms)),
                _ => None,
            },
            LocalityTimer::Election => n
                .election
                .as_ref()
                .and_then(|e| [e.claim_at, e.decide_at].into_iter().flatten().min()),
            LocalityTimer::Remeasure => n.leading.as_ref().map(|_| n.next_remeasure),
            LocalityTimer::Housekeeping => {
                (n.boot.is_some() || n.group.is_some()).then_some(n.next_housekeeping)
            }
        }
    }

    pub(crate) fn fire(self, n: &mut LocalityNode, now: Timestamp) {
        match self {
            LocalityTimer::Probe => {}
            LocalityTimer::Search => n.advance_search(now),
            LocalityTimer::LinkRequest => n.link_timeout(now),
            LocalityTimer::Alive => n.send_alive(now),
            LocalityTimer::Announce => n.announce(now),
            LocalityTimer::LeaderWatch => n.leader_silent(now),
            LocalityTimer::Election => n.election_tick(now),
            LocalityTimer::Remeasure => n.remeasure_tick(now),
            LocalityTimer::Housekeeping => n.housekeeping(now),
        }
    }
}

impl LocalityNode {
    pub(crate) fn earliest_timer(&self) -> Option<Timestamp> {
        LocalityTimer::TABLE
            .iter()
            .filter_map(|t| t.deadline(self))
            .min()
    }
}
