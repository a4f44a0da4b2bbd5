//! Bounded batches of a full recomputation's assignments (C7, C6, V9): after a
//! full recomputation the members whose parents changed are not all told at once
//! (every parent would take its new children, and their backlogs, in the same
//! instant while still feeding the old ones); at most `PeerConfig::recompute_batch`
//! are released per heartbeat interval, parents before children (by their depth
//! in the new trees), so only a bounded share of the overlay is moving at any
//! time. A held member that changes again for another reason (a leave, a bad
//! link) is told at once with everything else that changed.

use super::overlay::PeerOverlay;
use std::collections::{BTreeSet, VecDeque};
use tiercast_proto::{NodeId, Timestamp};

/// Members still to be told of a full recomputation's parents, in order.
#[derive(Clone, Debug, Default)]
pub struct HeldAssignments {
    queue: VecDeque<NodeId>,
    /// When the last batch was released.
    last_release: Option<Timestamp>,
}

impl HeldAssignments {
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Replaces what is held with `order` (a new recomputation supersedes the
    /// last one's rest: those members are in `order` again if still changed).
    pub fn hold(&mut self, order: Vec<NodeId>) {
        self.queue = order.into();
        self.last_release = None;
    }

    /// Up to `batch` members, if a batch is due (none released within `interval_us`).
    pub fn release(&mut self, now: Timestamp, batch: usize, interval_us: u64) -> Vec<NodeId> {
        if self.queue.is_empty()
            || self
                .last_release
                .is_some_and(|t| now.saturating_since(t) < interval_us)
        {
            return Vec::new();
        }
        self.last_release = Some(now);
        let n = batch.max(1).min(self.queue.len());
        self.queue.drain(..n).collect()
    }

    /// Members told anyway (they changed again) leave the queue.
    pub fn told(&mut self, ids: &BTreeSet<NodeId>) {
        if !ids.is_empty() {
            self.queue.retain(|id| !ids.contains(id));
        }
    }
}

impl PeerOverlay {
    /// After a full recomputation: holds the changed members for batches,
    /// shallowest first (a parent moves before its children), instead of
    /// telling them all now. Returns how many are held.
    pub(crate) fn hold_dirty(&mut self) -> usize {
        let dirty = std::mem::take(&mut self.dirty);
        let mut order: Vec<(u32, NodeId)> = dirty
            .into_iter()
            .map(|id| {
                let d = (0..self.k).map(|t| self.depth(id, t)).min().unwrap_or(0);
                (d, id)
            })
            .collect();
        order.sort();
        let n = order.len();
        self.held
            .hold(order.into_iter().map(|(_, id)| id).collect());
        n
    }

    /// The next batch of held members becomes due to be told (if one is due).
    pub(crate) fn release_batch(&mut self, now: Timestamp, batch: usize, interval_us: u64) {
        for id in self.held.release(now, batch, interval_us) {
            self.dirty.insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_and_one_per_interval() {
        let mut h = HeldAssignments::default();
        h.hold((1..=10).map(NodeId).collect());
        let t0 = Timestamp::ZERO;
        assert_eq!(
            h.release(t0, 4, 1_000_000),
            vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4)]
        );
        assert!(
            h.release(t0.plus_millis(500), 4, 1_000_000).is_empty(),
            "not within the interval"
        );
        h.told(&[NodeId(5)].into_iter().collect());
        let next = h.release(t0.plus_millis(1000), 4, 1_000_000);
        assert_eq!(next, vec![NodeId(6), NodeId(7), NodeId(8), NodeId(9)]);
        assert_eq!(
            h.release(t0.plus_millis(2000), 4, 1_000_000),
            vec![NodeId(10)]
        );
        assert!(h.is_empty());
    }
}
