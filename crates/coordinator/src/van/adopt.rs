//! Taking back what nodes report instead of rebuilding from nothing (D7, D8, V10,
//! X5; issue 10's partitions). A relay the coordinator presumed gone — its region
//! was cut off, so its heartbeats stopped — keeps streaming inside the cut and
//! registers again when it hears back ([`crate::registry::NodeRecord::rejoined_at`]);
//! a coordinator that never knew it (restarted) sees it register fresh. Either way
//! its first heartbeat lists, per channel, the parents it takes the stream from and
//! the children it feeds. For every channel it carries but is not active in here,
//! that heartbeat is adopted: the relay becomes active in its tier again with the
//! reported parents that are the channel's origin or alive and active (a reported
//! parent that is itself back but not yet adopted is adopted first, from its own
//! last report); when none is left it gets new ones (V2's choice), and when some are
//! missing it is topped up to `parents_per_relay` (V9) — a parent set
//! (`ParentSet`, C1) only when they changed. Its child relays adopt themselves at
//! their own heartbeats, its viewers are kept by [`crate::viewer_moves`]. A relay that came back is not
//! activated afresh before its heartbeat is in, so the overlay it kept is what the
//! coordinator takes back.
//!
//! Only the first heartbeat after a registration is adopted: later ones may still
//! list a channel the coordinator took away on purpose (consolidation, idling).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, NodeRole, Timestamp};

/// How many tiers of not-yet-adopted parents one adoption follows upwards.
const MAX_ADOPT_DEPTH: u8 = 8;

impl Coordinator {
    /// `from`'s heartbeat is the first since it registered: adopt every channel it
    /// reports links in and is not active in. Returns the channels adopted.
    pub(super) fn adopt_reported(
        &mut self,
        now: Timestamp,
        from: NodeId,
        hb: &Heartbeat,
    ) -> Vec<ChannelId> {
        let first = self
            .registry
            .get(from)
            .is_some_and(|r| r.role == NodeRole::Relay && r.alive && r.rejoined_at.is_some());
        let fresh = self
            .registry
            .get(from)
            .is_some_and(|r| r.role == NodeRole::Relay && r.last_heartbeat.is_none());
        if !first && !fresh {
            return Vec::new();
        }
        let mut adopted = Vec::new();
        for c in &hb.channels {
            if c.parents.is_empty() && c.children.is_empty() {
                continue;
            }
            let reported: Vec<NodeId> = c.parents.iter().map(|l| l.peer).collect();
            if self.adopt(now, c.channel, from, &reported, 0) {
                adopted.push(c.channel);
            }
        }
        for ch in &adopted {
            self.ensure_chain(now, *ch);
        }
        adopted
    }

    /// Makes `node` active in `channel` with what it reported; false when there is
    /// nothing to adopt (no such channel, already active, not a relay).
    fn adopt(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        node: NodeId,
        reported: &[NodeId],
        depth: u8,
    ) -> bool {
        let Some(m) = self.channels.get(&channel) else {
            return false;
        };
        if m.is_active(node) || node == m.origin {
            return false;
        }
        let Some(r) = self.registry.get(node) else {
            return false;
        };
        if r.role != NodeRole::Relay || !r.alive {
            return false;
        }
        let (tier, region) = (r.tier, r.region_id);
        let keep = self.adoptable_parents(now, channel, node, reported, depth);
        let Some(m) = self.channels.get_mut(&channel) else {
            return false;
        };
        m.add_active(now, node, region, tier, Vec::new());
        self.book_relay(now, channel, node);
        let mut new = keep;
        if new.len() < self.cfg.parents_per_relay {
            for p in self.choose_parents(now, channel, tier, node) {
                if new.len() < self.cfg.parents_per_relay && !new.contains(&p) {
                    new.push(p);
                }
            }
        }
        self.set_parents(channel, node, new.clone(), reported.to_vec());
        self.events.push_back(CoordEvent::Activated {
            channel,
            node,
            tier,
            parents: new,
        });
        true
    }

    /// The reported parents of `node` that stay: the origin, alive active relays of
    /// a tier above, and relays back from the same cut (adopted first).
    fn adoptable_parents(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        node: NodeId,
        reported: &[NodeId],
        depth: u8,
    ) -> Vec<NodeId> {
        let tier = self.registry.get(node).map_or(0, |r| r.tier);
        let mut keep = Vec::new();
        for p in reported {
            if keep.len() >= self.cfg.parents_per_relay || keep.contains(p) || *p == node {
                continue;
            }
            if self.parent_stays(now, channel, *p, tier, depth) {
                keep.push(*p);
            }
        }
        keep
    }

    fn parent_stays(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        p: NodeId,
        child_tier: u8,
        depth: u8,
    ) -> bool {
        let Some(m) = self.channels.get(&channel) else {
            return false;
        };
        let Some(r) = self.registry.get(p) else {
            return false;
        };
        if !r.alive {
            return false;
        }
        if p == m.origin {
            return true;
        }
        // (Room is not asked: it already feeds this child.)
        if r.role != NodeRole::Relay || r.tier >= child_tier {
            return false;
        }
        if m.is_active(p) {
            return true;
        }
        if r.rejoined_at.is_none() || depth >= MAX_ADOPT_DEPTH {
            return false;
        }
        // Back from the same cut, its heartbeat not in yet: adopt it from its last one.
        let Some(its) = r
            .last_heartbeat
            .as_ref()
            .and_then(|hb| hb.channel(channel))
            .map(|c| c.parents.iter().map(|l| l.peer).collect::<Vec<NodeId>>())
        else {
            return false;
        };
        self.adopt(now, channel, p, &its, depth + 1)
    }

    /// A relay back from a cut whose heartbeat is not in yet: not activated afresh.
    pub(crate) fn awaiting_adoption(&self, node: NodeId) -> bool {
        self.registry
            .get(node)
            .is_some_and(|r| r.rejoined_at.is_some())
    }
}
