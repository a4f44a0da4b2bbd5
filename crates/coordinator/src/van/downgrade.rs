//! LinkDowngrade (V10): a relay reports a bad link to one of its parents. The
//! coordinator, in the seed's order: switches it to another active relay of the
//! parent tier; else migrates its children to a sibling in its own tier (child
//! relays switch parents, viewers are moved as in a consolidation) and idles it;
//! else activates a new relay in the parent tier and switches it there.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{ChannelId, NodeId, Timestamp};

impl Coordinator {
    pub(super) fn on_link_downgrade(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        parent: NodeId,
    ) {
        let Some(m) = self.channels.get(&channel) else {
            self.invalid(from, "link_downgrade", "unknown channel");
            return;
        };
        let Some(a) = m.active.get(&from) else {
            self.invalid(from, "link_downgrade", "relay not active for the channel");
            return;
        };
        if !a.parents.contains(&parent) {
            return; // Already replaced.
        }
        let (tier, region, old) = (a.tier, a.region, a.parents.clone());
        self.events.push_back(CoordEvent::LinkDowngraded {
            channel,
            node: from,
            parent,
        });
        let Some(upper) = self.registry.tier_above(region, tier) else {
            // The parent is the origin: nothing can stand in for it.
            return;
        };
        let room = |c: &Coordinator, n: NodeId| c.has_room_for(n, channel);
        // 1. Another active relay of the parent tier.
        let alternative = m
            .newest_in(region, upper)
            .find(|n| *n != parent && !old.contains(n) && room(self, *n));
        if let Some(alt) = alternative {
            let new: Vec<NodeId> = old
                .iter()
                .map(|p| if *p == parent { alt } else { *p })
                .collect();
            self.set_parents(channel, from, new, old);
            return;
        }
        // 2. A sibling that does not depend on the bad parent takes the children.
        let sibling = m.newest_in(region, tier).find(|n| {
            *n != from
                && room(self, *n)
                && !m.active.get(n).is_some_and(|s| s.parents.contains(&parent))
        });
        if let Some(s) = sibling {
            self.migrate_children(now, channel, from, s);
            return;
        }
        // 3. A new parent.
        if let Some(n) = self.idle_relays(channel, region, upper).first().copied() {
            self.activate(now, channel, n, upper);
            let new: Vec<NodeId> = old
                .iter()
                .map(|p| if *p == parent { n } else { *p })
                .collect();
            self.set_parents(channel, from, new, old);
        }
    }

    /// Moves every child of `from` to the sibling `to` and takes `from` out of the VAN.
    pub(crate) fn migrate_children(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        from: NodeId,
        to: NodeId,
    ) {
        self.move_children(now, channel, from, to);
        self.events.push_back(CoordEvent::Migrated {
            channel,
            node: from,
            to,
        });
    }
}
