//! Ranking by history (C4's "rank by history", D1's "good history"): a score in
//! 0..=1 per node — availability × uplink delivered (achieved over declared,
//! when both are known) × (1 − how often its children saw it stall). A node with
//! no history gets [`UNKNOWN_SCORE`], so a newcomer is neither preferred over a
//! proven node nor ranked below a bad one.

use super::History;
use tiercast_proto::{NodeId, Timestamp};

/// The score of a node the history does not know.
pub const UNKNOWN_SCORE: f64 = 0.5;

impl History {
    /// The node's score, 0..=1 (higher is better).
    pub fn score(&self, now: Timestamp, id: NodeId) -> f64 {
        let Some(h) = self.get(id) else {
            return UNKNOWN_SCORE;
        };
        h.availability(now) * h.uplink_ratio().unwrap_or(1.0) * (1.0 - h.fed_stall_rate())
    }

    /// `candidates` best first (ties: lower id first), for parent selection.
    pub fn rank(
        &self,
        now: Timestamp,
        candidates: impl IntoIterator<Item = NodeId>,
    ) -> Vec<NodeId> {
        let mut scored: Vec<(f64, NodeId)> = candidates
            .into_iter()
            .map(|id| (self.score(now, id), id))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().map(|(_, id)| id).collect()
    }
}
