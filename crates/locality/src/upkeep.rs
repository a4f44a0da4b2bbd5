//! L6 upkeep: the leader re-measures its neighbour groups every
//! `remeasure_interval_ms` (a link whose leader stops answering is lost and
//! the link search restores the count, L4); caches are trimmed and the
//! rendezvous forgets groups not re-announced (L1).

use crate::machine::{LocalityEvent, LocalityNode};
use crate::measure::Measured;
use tiercast_proto::{NodeId, Timestamp};

/// Known, unlinked groups measured per re-measure tick at most.
pub const KNOWN_MEASURED_PER_TICK: usize = 16;

/// Housekeeping period (cache trims, boot-cache expiry).
pub const HOUSEKEEPING_MS: u64 = 10_000;

impl LocalityNode {
    pub(crate) fn remeasure_tick(&mut self, now: Timestamp) {
        self.next_remeasure = now.plus_millis(self.cfg.remeasure_interval_ms);
        let Some(lead) = self.leading.as_mut() else {
            return;
        };
        lead.links.tried.clear();
        let leaders: Vec<NodeId> = self.inter.links.values().map(|l| l.leader).collect();
        for l in &leaders {
            self.prober.start(now, *l);
        }
        // Known groups not linked are measured too (a few per tick): a group
        // founded at once nearby shows up here and merges (merge.rs).
        let stale = Timestamp(now.0.saturating_sub(self.cfg.remeasure_interval_ms * 1000));
        let unmeasured: Vec<NodeId> = self
            .inter
            .known
            .iter()
            .filter(|(g, l)| {
                !self.inter.links.contains_key(g) && self.prober.fresh(**l, stale).is_none()
            })
            .map(|(_, l)| *l)
            .take(KNOWN_MEASURED_PER_TICK)
            .collect();
        for l in unmeasured {
            self.prober.start(now, l);
        }
        // The link asked again: a leader that no longer leads says so (and a
        // neighbour that dropped the link takes it back).
        self.restore_links();
        if self.maybe_merge(now) {
            return;
        }
        self.nudge_near_groups();
        // The rendezvous names more groups each tick (L1 for L4): new groups
        // nearby are found even when the links are at their target.
        if let Some(r) = self.rendezvous.filter(|r| *r != self.id) {
            self.send(r, crate::msg::LocalityMsg::GetBootGroups);
        }
        self.link_step(now);
    }

    pub(crate) fn remeasured(&mut self, _now: Timestamp, m: Measured) {
        if self.leading.is_none() {
            return;
        }
        for group in self.inter.remeasured(m.target, m.rtt_us) {
            self.inter.known.remove(&group);
            self.events.push_back(LocalityEvent::LinkLost { group });
        }
    }

    pub(crate) fn housekeeping(&mut self, now: Timestamp) {
        self.next_housekeeping = now.plus_millis(HOUSEKEEPING_MS);
        self.prober.trim_cache(self.cfg.cache_max);
        if let Some(b) = self.boot.as_mut() {
            b.expire(now, self.cfg.announce_interval_ms * 3);
        }
    }
}
