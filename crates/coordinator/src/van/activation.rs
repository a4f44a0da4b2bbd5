//! Activating relays (V2, V11; each told by a parent set, C1): at start-up, in
//! every region, one relay per tier forms a path from the origin to the viewers'
//! tier (as many as `parents_per_relay` in the upper tiers, so every relay gets
//! redundant parents, V9); each activated relay is told its parents — the entry
//! relay of the tier above first, then others. Relays that
//! register after the channel started fill empty tiers, and relays whose parents
//! are no longer in the nearest tier above are re-parented.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::manager::RelayPhase;
use crate::registry::RegionId;
use tiercast_proto::{ChannelId, Feed, NodeId, PeerFeed, PeerInfo, Placement, Tier, Timestamp};

impl Coordinator {
    /// Makes sure every tier with registered relays has an active one for the channel.
    pub(crate) fn ensure_chain(&mut self, now: Timestamp, channel: ChannelId) {
        for region in self.registry.regions_with_relays() {
            self.ensure_chain_in(now, channel, region);
        }
        self.reparent_misplaced(now, channel);
    }

    fn ensure_chain_in(&mut self, now: Timestamp, channel: ChannelId, region: RegionId) {
        let tiers = self.registry.tiers_in(region);
        let bottom = tiers.last().copied();
        for t in tiers {
            let want = if Some(t) == bottom {
                1
            } else {
                self.cfg.parents_per_relay
            };
            loop {
                let have = self
                    .channels
                    .get(&channel)
                    .map_or(0, |m| m.active_count_in(region, t));
                if have >= want {
                    break;
                }
                let Some(n) = self.idle_relays(channel, region, t).first().copied() else {
                    break;
                };
                self.activate(now, channel, n, t);
            }
        }
    }

    /// Live relays of a region's tier not active for the channel, with room on the
    /// machine and within the share the channel would get of it (C9).
    pub(crate) fn idle_relays(
        &self,
        channel: ChannelId,
        region: RegionId,
        tier: Tier,
    ) -> Vec<NodeId> {
        let Some(m) = self.channels.get(&channel) else {
            return Vec::new();
        };
        self.registry
            .relays_in(region, tier)
            .into_iter()
            .filter(|n| {
                !m.is_active(*n) && self.has_room_for(*n, channel) && !self.awaiting_adoption(*n)
            })
            .collect()
    }

    /// Activates `node` in `tier` for the channel and tells it its parents.
    pub(crate) fn activate(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        node: NodeId,
        tier: Tier,
    ) {
        let parents = self.choose_parents(now, channel, tier, node);
        let region = self.region_of(node);
        let Some(m) = self.channels.get_mut(&channel) else {
            return;
        };
        m.add_active(now, node, region, tier, parents.clone());
        let desc = m.desc.clone();
        self.book_relay(now, channel, node);
        let feeds = self.parent_feeds(&parents);
        self.send_parent_set(
            node,
            desc,
            Placement::Tier {
                tier,
                activate: true,
            },
            feeds,
        );
        self.events.push_back(CoordEvent::Activated {
            channel,
            node,
            tier,
            parents,
        });
    }

    /// Parents for a relay of `tier`: up to `parents_per_relay` relays of the nearest
    /// tier above (the entry relay first), activating more there if needed; the
    /// origin when no tier is above.
    pub(crate) fn choose_parents(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        tier: Tier,
        for_node: NodeId,
    ) -> Vec<NodeId> {
        if !self.channels.contains_key(&channel) {
            return Vec::new();
        }
        let region = self.region_of(for_node);
        let Some(upper) = self.registry.tier_above(region, tier) else {
            return self.origin_or_stand_ins(channel, tier, for_node);
        };
        let k = self.cfg.parents_per_relay;
        let mut chosen: Vec<NodeId> = Vec::new();
        if let Some(e) = self.entry_of_tier(channel, region, upper) {
            chosen.push(e);
        }
        for n in self
            .channels
            .get(&channel)
            .map(|m| m.active_in(region, upper))
            .unwrap_or_default()
        {
            if chosen.len() >= k {
                break;
            }
            if !chosen.contains(&n) && n != for_node && self.has_room_for(n, channel) {
                chosen.push(n);
            }
        }
        while chosen.len() < k {
            let Some(n) = self
                .idle_relays(channel, region, upper)
                .into_iter()
                .find(|n| *n != for_node)
            else {
                break;
            };
            self.activate(now, channel, n, upper);
            chosen.push(n);
        }
        // The region's tier above is short (a crash took one of few relays): an
        // active relay of the same tier in another region stands in, so a relay
        // keeps redundant parents (V9) — better far than single.
        self.stand_ins(channel, region, upper, for_node, &mut chosen);
        if chosen.is_empty() {
            // Every relay above is full: take the most recent one anyway (it will refuse
            // or DISTRIBUTE), never leave a relay without a path.
            if let Some(n) = self
                .channels
                .get(&channel)
                .and_then(|m| m.newest_in(region, upper).next())
            {
                chosen.push(n);
            }
        }
        chosen.truncate(k);
        chosen
    }

    /// Parents for a relay with no tier above it in its region: the origin while it
    /// has room; when it is full, active relays of a tier above in other regions with
    /// room stand in (a full origin refuses, and the refused relay would be
    /// downgraded and reassigned back to it again and again); the origin when none has.
    fn origin_or_stand_ins(&self, channel: ChannelId, tier: Tier, for_node: NodeId) -> Vec<NodeId> {
        let Some(origin) = self.channels.get(&channel).map(|m| m.origin) else {
            return Vec::new();
        };
        if self.has_room_for(origin, channel) {
            return vec![origin];
        }
        let region = self.region_of(for_node);
        let mut chosen: Vec<NodeId> = Vec::new();
        for upper in 1..tier {
            self.stand_ins(channel, region, upper, for_node, &mut chosen);
        }
        if chosen.is_empty() {
            chosen.push(origin);
        }
        chosen
    }

    /// Adds to `chosen`, up to `parents_per_relay`, active relays of `tier` in
    /// regions other than `region` that have room.
    fn stand_ins(
        &self,
        channel: ChannelId,
        region: RegionId,
        tier: Tier,
        for_node: NodeId,
        chosen: &mut Vec<NodeId>,
    ) {
        let Some(m) = self.channels.get(&channel) else {
            return;
        };
        let k = self.cfg.parents_per_relay;
        for r in self.registry.regions_with_relays() {
            if r == region {
                continue;
            }
            for n in m.active_in(r, tier) {
                if chosen.len() >= k {
                    return;
                }
                if n != for_node && !chosen.contains(&n) && self.has_room_for(n, channel) {
                    chosen.push(n);
                }
            }
        }
    }

    /// The relay new children of a tier go to: the most recently activated one still
    /// expanding with room (machine-wide and within the channel's share, C9);
    /// else any active one with room.
    pub(crate) fn entry_of_tier(
        &self,
        channel: ChannelId,
        region: RegionId,
        tier: Tier,
    ) -> Option<NodeId> {
        let m = self.channels.get(&channel)?;
        let room = |n: &NodeId| {
            self.registry
                .get(*n)
                .is_some_and(|r| r.has_room() && r.alive)
                && self.share_room(*n, channel) > 0
        };
        m.newest_in(region, tier)
            .find(|n| m.active[n].phase == RelayPhase::Expanding && room(n))
            .or_else(|| m.newest_in(region, tier).find(|n| room(n)))
    }

    /// A node's load as the coordinator books it: its last report or the child
    /// relays it was given (whichever is more, as a child logs in only when it has
    /// children of its own), plus viewers sent to it since the report.
    pub(crate) fn load_of(&self, node: NodeId) -> u32 {
        let Some(r) = self.registry.get(node) else {
            return u32::MAX;
        };
        let booked: u32 = self
            .channels
            .values()
            .map(|m| m.relay_children_of(node))
            .sum();
        r.reported_load.max(booked).saturating_add(r.pending)
    }

    pub(crate) fn has_room(&self, node: NodeId) -> bool {
        self.registry
            .get(node)
            .is_some_and(|r| r.alive && self.load_of(node) < r.capacity)
    }

    /// The region a node registered in.
    pub(crate) fn region_of(&self, node: NodeId) -> RegionId {
        self.registry
            .get(node)
            .map(|r| r.region_id)
            .unwrap_or_default()
    }

    /// Relays whose parents are not in the nearest tier above (a tier appeared or
    /// emptied since) get new ones, connecting before disconnecting.
    fn reparent_misplaced(&mut self, now: Timestamp, channel: ChannelId) {
        let Some(m) = self.channels.get(&channel) else {
            return;
        };
        let mut misplaced = Vec::new();
        for (n, a) in &m.active {
            let expected_parent_tier = self.registry.tier_above(a.region, a.tier);
            let wrong = a.parents.is_empty()
                || a.parents.iter().any(|p| {
                    let pt = if *p == m.origin {
                        None
                    } else {
                        self.registry.get(*p).map(|r| r.tier)
                    };
                    pt != expected_parent_tier || (*p != m.origin && !m.is_active(*p))
                });
            if wrong {
                misplaced.push((*n, a.tier, a.parents.clone()));
            }
        }
        for (n, tier, old) in misplaced {
            let new = self.choose_parents(now, channel, tier, n);
            self.set_parents(channel, n, new, old);
        }
        self.top_up_parents(now, channel);
    }

    /// Relays with fewer parents than `parents_per_relay` (the tier above was short
    /// when they were activated, or lost one) get more, keeping the ones they have.
    pub(crate) fn top_up_parents(&mut self, now: Timestamp, channel: ChannelId) {
        let k = self.cfg.parents_per_relay;
        let Some(m) = self.channels.get(&channel) else {
            return;
        };
        let short: Vec<(NodeId, Tier, Vec<NodeId>)> = m
            .active
            .iter()
            .filter(|(_, a)| a.parents.len() < k && !a.parents.contains(&m.origin))
            .map(|(n, a)| (*n, a.tier, a.parents.clone()))
            .collect();
        for (n, tier, old) in short {
            let mut new = old.clone();
            for p in self.choose_parents(now, channel, tier, n) {
                if new.len() < k && !new.contains(&p) {
                    new.push(p);
                }
            }
            self.set_parents(channel, n, new, old);
        }
    }

    /// Records new parents for an active relay and sends it its new parent set
    /// (C1; it connects to the new ones before it drops the old, V9).
    pub(crate) fn set_parents(
        &mut self,
        channel: ChannelId,
        node: NodeId,
        new: Vec<NodeId>,
        old: Vec<NodeId>,
    ) {
        let Some(m) = self.channels.get_mut(&channel) else {
            return;
        };
        if m.replace_parents(node, new.clone()).is_none() {
            return;
        }
        let added: Vec<NodeId> = new.iter().copied().filter(|p| !old.contains(p)).collect();
        let removed: Vec<NodeId> = old.iter().copied().filter(|p| !new.contains(p)).collect();
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let Some(tier) = m.active.get(&node).map(|a| a.tier) else {
            return;
        };
        let desc = m.desc.clone();
        let feeds = self.parent_feeds(&new);
        self.send_parent_set(
            node,
            desc,
            Placement::Tier {
                tier,
                activate: false,
            },
            feeds,
        );
        self.events.push_back(CoordEvent::Reassigned {
            channel,
            node,
            added,
            removed,
        });
    }

    /// A relay's parents as a parent set lists them: each pushes everything.
    pub(crate) fn parent_feeds(&self, ids: &[NodeId]) -> Vec<PeerFeed> {
        self.peer_infos(ids)
            .into_iter()
            .map(|peer| PeerFeed {
                peer,
                feed: Feed::All,
            })
            .collect()
    }

    pub(crate) fn peer_infos(&self, ids: &[NodeId]) -> Vec<PeerInfo> {
        ids.iter()
            .filter_map(|n| self.registry.get(*n).map(|r| PeerInfo::clone(&r.info)))
            .collect()
    }
}
