//! CONSOLIDATE (V5, V11): a contracting relay whose load fell below the min threshold
//! asks to be made idle. The request is ignored for the last relay of its tier in its
//! region (its viewers would be sent to another region) and when no other relay of the
//! tier there has room; otherwise the relay's viewers are sent to the most recently
//! activated relay of the tier in the region, its child relays are switched
//! there by the coordinator, and the relay leaves the VAN (it logs off from its
//! parents once its last child is gone). With `prediction` on (V7, seed 001 [0063])
//! it is also ignored when the consolidation would force a new activation within
//! `sp`: the load predicted for the tier over `sp` exceeds the room the other relays
//! would have left.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{ChannelId, Message, NodeId, Timestamp};

impl Coordinator {
    pub(super) fn on_consolidate(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        load: u32,
    ) {
        self.registry.set_load(from, load);
        if self.cfg.prediction {
            if let Some(tier) = self.registry.get(from).map(|r| r.tier) {
                self.forecast.observed_load(channel, tier, from, load);
            }
        }
        let Some(m) = self.channels.get(&channel) else {
            self.invalid(from, "consolidate", "unknown channel");
            return;
        };
        let Some(a) = m.active.get(&from) else {
            self.invalid(from, "consolidate", "relay not active for the channel");
            return;
        };
        let tier = a.tier;
        let others: Vec<NodeId> = m
            .active_in(self.region_of(from), tier)
            .into_iter()
            .filter(|n| *n != from)
            .collect();
        if others.is_empty() {
            self.ignore_consolidate(channel, from, "last active relay of its tier in its region");
            return;
        }
        let moving = load;
        let target = others.iter().copied().find(|n| {
            self.registry
                .get(*n)
                .is_some_and(|r| r.alive && self.load_of(*n).saturating_add(moving) <= r.capacity)
                && moving <= self.share_room(*n, channel)
        });
        let Some(target) = target else {
            self.ignore_consolidate(channel, from, "no other relay of the tier has room");
            return;
        };
        if self.cfg.prediction {
            let room: u64 = others
                .iter()
                .map(|n| self.room_for(*n, channel) as u64)
                .sum();
            let left = room.saturating_sub(moving as u64) as f64;
            let sp = self.cfg.stability_sp_ms;
            if self.forecast.growth_over(channel, tier, sp) > left {
                self.ignore_consolidate(
                    channel,
                    from,
                    "consolidation would force a new activation within sp",
                );
                return;
            }
        }
        self.registry.book_pending(target, moving);
        self.move_children(now, channel, from, target);
        self.stats.consolidate_events += 1;
        self.events.push_back(CoordEvent::Consolidated {
            channel,
            node: from,
            moved_to: target,
        });
    }

    /// Takes `from` out of the channel's VAN and moves its children to `to`, a relay
    /// of the same tier: child relays are switched by the coordinator (connecting
    /// before disconnecting), viewers are redirected by `from` itself (ConsolidateOrder).
    /// `from`'s share of its uplink for the channel goes back (C9).
    pub(crate) fn move_children(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        from: NodeId,
        to: NodeId,
    ) {
        let Some(m) = self.channels.get_mut(&channel) else {
            return;
        };
        let child_relays = m.children_of(from);
        m.remove_active(from);
        self.release_relay(now, channel, from);
        let Some(to_info) = self
            .registry
            .get(to)
            .map(|r| tiercast_proto::PeerInfo::clone(&r.info))
        else {
            return;
        };
        self.send(
            from,
            Message::ConsolidateOrder {
                channel,
                move_to: to_info,
            },
        );
        for c in child_relays {
            let Some(old) = self.channels[&channel]
                .active
                .get(&c)
                .map(|a| a.parents.clone())
            else {
                continue;
            };
            let mut new: Vec<NodeId> = old.iter().copied().filter(|p| *p != from).collect();
            if !new.contains(&to) {
                new.insert(0, to);
            }
            new.truncate(self.cfg.parents_per_relay.max(1));
            self.set_parents(channel, c, new, old);
        }
    }

    fn ignore_consolidate(&mut self, channel: ChannelId, node: NodeId, why: &'static str) {
        self.events
            .push_back(CoordEvent::ConsolidateIgnored { channel, node, why });
    }
}
