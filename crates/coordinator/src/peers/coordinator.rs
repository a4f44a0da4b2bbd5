//! The coordinator's verbs for peers: a peer's `Watch` joins the channel's overlay
//! (created on the first one, with the origin and the waypoint relays on the top
//! level); its LOGOFF to the coordinator, or its crash, leaves it; a
//! `LinkDowngrade` or a congested link (C2) re-homes a link; heartbeats also carry
//! the middle level's shard loss (D5); a periodic check retries members waiting
//! for a parent, reviews the top and middle levels (D1, D5, D6) and decides on full
//! recomputation (C7).
//! Every change ends with a parent set (`ParentSet`, C1) to each member whose parents
//! changed.
//! An ejected peer is sent to a relay when one has room, else told why (C6).

use super::overlay::{MemberKind, PeerOverlay};
use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::policy::parent_rules::parent_policy;
use tiercast_proto::{ChannelId, DenyReason, Heartbeat, Message, NodeId, NodeRole, Timestamp};

/// The longest wait an ejected peer is told before it asks again (s).
pub const MAX_TURN_AWAY_S: u32 = 60;

/// A peer ejected a second time is not let back in for this long after (s): the
/// aggregate check that re-admits it (`PeerOverlay::would_fit`) and the rule of a
/// full recomputation that ejects do not count the top level's room alike, and
/// 15 peers of 1 000 were let back in and ejected again within the minute (the
/// full recomputation's seed 38). After a first ejection it may come back as soon
/// as it fits: ejected in a flash crowd's first seconds, held out for a minute
/// while the crowd brought room, cost the top mesh's seed 33 154 blocks.
pub const READMIT_HOLD_S: u32 = 60;

/// A peer let into an overlay, as its admission saw it.
pub(super) struct Joiner {
    pub info: std::sync::Arc<tiercast_proto::PeerInfo>,
    pub region: crate::registry::RegionId,
    /// The uplink share the overlay books (0: it may not relay now).
    pub uplink: u64,
    /// The uplink it declared (bits/s).
    pub declared: u64,
    pub premium: bool,
    /// Back from a cut with its stream stalled: not a parent until fed.
    pub unfed: bool,
    /// A member already (asking again).
    pub member: bool,
}

impl Coordinator {
    pub fn peer_overlay(&self, channel: ChannelId) -> Option<&PeerOverlay> {
        self.peers.get(&channel)
    }

    /// Every channel's peer overlay (read-only).
    pub fn peer_overlays(&self) -> impl Iterator<Item = &PeerOverlay> {
        self.peers.values()
    }

    /// The channel's overlay, created by the service manager on first use.
    pub(super) fn overlay_for(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
    ) -> Option<&mut PeerOverlay> {
        if !self.start_peer_overlay(now, channel) {
            return None;
        }
        self.peers.get_mut(&channel)
    }

    /// A peer asks to watch a channel: it joins the overlay.
    pub(super) fn on_peer_watch(&mut self, now: Timestamp, from: NodeId, name: String) {
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let Some(channel) = self.channel_named(&name) else {
            self.deny_watch(from, name, DenyReason::UnknownChannel);
            return;
        };
        let Some(r) = self.registry.get(from) else {
            return;
        };
        let (info, region, uplink) = (r.info.clone(), r.region_id, u64::from(r.uplink_kbps) * 1000);
        // C9: the overlay sees the channel's share of the node's uplink (all of
        // it on one channel, `uplink_ledger/`); C3: a node that may not relay
        // now joins with no uplink (`relay_rules.rs`).
        let declared = uplink;
        let uplink = if self.may_relay(now, from) {
            self.uplink_quote(channel, from, declared)
        } else {
            0
        };
        let premium = r.premium;
        let pc = self.cfg.peers.clone();
        // Back from a cut with its stream stalled (its heartbeat, sent right
        // behind its Register, says so): not a parent to pick until it is fed.
        let fresh_us = super::rejoin::fed_window_us(self.cfg.heartbeat_interval_ms);
        let unfed = r
            .last_heartbeat
            .as_ref()
            .and_then(|hb| {
                let c = hb.channel(channel)?;
                Some(super::rejoin::fed_marks(c, hb.local_time_us, fresh_us).is_empty())
            })
            .unwrap_or(false);
        let Some(o) = self.overlay_for(now, channel) else {
            self.deny_watch(from, name, DenyReason::UnknownChannel);
            return;
        };
        // In a region reached only across caps, held after its first ejection:
        // the region's aggregate check cannot see how few of the cap's slots
        // each tree gets, and a peer let back in was ejected again at the next
        // recomputation (`region-cap` seed 31: 36 times within a minute).
        let times_held = if o.capped_group(region) { 1 } else { 2 };
        let held = o.held_out(now, from, times_held, u64::from(READMIT_HOLD_S) * 1_000_000);
        if o.ejected.contains(&from)
            && (held || !o.would_fit(uplink) || !o.region_fits(region, uplink, true))
        {
            // Still cannot be carried, or ejected too lately to be let back in
            // only to be ejected again: answer at once, touching nobody.
            self.turn_away(now, channel, from);
            return;
        }
        let member = o.members.contains_key(&from);
        if !member && !o.cap_join_allowed(now, region) {
            // Its start backlog would cross a cap already spent this second
            // ([`super::cap_joins`]): it comes back.
            if o.ejected.contains(&from) {
                self.turn_away(now, channel, from);
            } else {
                self.wait_for_room(now, channel, from);
            }
            return;
        }
        let room = o.admits_newcomer(from, uplink)
            && (member || o.region_fits_as(region, uplink, false, premium));
        if !o.ejected.contains(&from) && !room {
            // Admitted, it would be fed by taking from the members until the
            // next recomputation ejected someone: it takes a weaker member's
            // place, or waits for room.
            let Some(weak) = o.replaced_by(uplink, premium, region, now) else {
                self.wait_for_room(now, channel, from);
                return;
            };
            o.swap_out(weak, &pc, policy);
            self.eject(now, channel, weak);
        }
        let joiner = Joiner {
            info,
            region,
            uplink,
            declared,
            premium,
            unfed,
            member,
        };
        self.admit_peer(now, channel, joiner);
        self.flush_peers(now, channel);
    }

    /// `joiner` is let into `channel`'s overlay (its admission decided): its
    /// uplink share booked, placed, graded; true when it has a parent in every
    /// tree. The caller flushes the assignments.
    pub(super) fn admit_peer(&mut self, now: Timestamp, channel: ChannelId, j: Joiner) -> bool {
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let pc = self.cfg.peers.clone();
        let from = j.info.id;
        // In the overlay now, no longer a viewer the servers rule placed (C3).
        self.source_switches.forget(channel, from);
        let share = self.book_uplink(now, channel, from, j.declared);
        debug_assert!(j.uplink <= share, "the share quoted is the share booked");
        let Some(o) = self.peers.get_mut(&channel) else {
            return false;
        };
        o.let_in(from);
        if !j.member {
            o.charge_cap_join(now, j.region);
        }
        o.join(
            now,
            j.info,
            j.region,
            MemberKind::Peer,
            j.uplink,
            &pc,
            policy,
        );
        o.update(from, |m| m.premium = j.premium);
        o.place_premium_now(from, &pc, policy);
        if j.unfed {
            o.update(from, |m| m.proven = false);
        }
        let placed = o.members.contains_key(&from) && !o.pending.contains(&from);
        self.grade_member(now, channel, from);
        self.events.push_back(CoordEvent::PeerJoined {
            channel,
            peer: from,
        });
        placed
    }

    /// Tells `to` it may not watch `channel_name`, and when to ask again.
    pub(crate) fn deny_watch(&mut self, to: NodeId, channel_name: String, reason: DenyReason) {
        let retry_after_ms = self.cfg.retry_after_s.saturating_mul(1000);
        self.deny_watch_after(to, channel_name, reason, retry_after_ms);
    }

    fn deny_watch_after(
        &mut self,
        to: NodeId,
        channel_name: String,
        reason: DenyReason,
        retry_after_ms: u32,
    ) {
        self.send(
            to,
            Message::WatchDenied {
                channel_name,
                reason,
                retry_after_ms,
            },
        );
    }

    /// An ejected peer that asks again while the overlay still cannot carry it:
    /// a relay with room takes it, else it is told why and to wait twice as long as
    /// the last time (from `retry_after_s` up to [`MAX_TURN_AWAY_S`]) — ejected
    /// peers had come back every 2 s, turned away thousands of times a run.
    fn turn_away(&mut self, now: Timestamp, channel: ChannelId, peer: NodeId) {
        let Some(name) = self.channel_name(channel) else {
            return;
        };
        let base_ms = self.cfg.retry_after_s.saturating_mul(1000).max(1);
        let times = self
            .peers
            .get_mut(&channel)
            .map_or(1, |o| o.turned_away_again(peer));
        let retry_after_ms = base_ms
            .saturating_mul(1u32 << (times - 1).min(16))
            .min(MAX_TURN_AWAY_S * 1000)
            .max(base_ms);
        self.refuse(now, channel, name, peer, retry_after_ms);
    }

    /// A peer the overlay does not take now: an event, then a relay with room,
    /// else `WatchDenied{Ejected}` and when to ask again.
    fn refuse(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        name: String,
        peer: NodeId,
        retry_after_ms: u32,
    ) {
        self.events.push_back(CoordEvent::PeerTurnedAway {
            channel,
            peer,
            retry_after_ms,
        });
        self.unmet_demand.insert(channel, now);
        if self.send_to_relay(now, &name, peer) {
            return;
        }
        self.deny_watch_after(peer, name, DenyReason::Ejected, retry_after_ms);
    }

    /// A newcomer that takes more than it gives while the overlay has no room:
    /// a relay with room takes it, else it asks again after `retry_after_s`
    /// (not doubled: it was never a burden) and is let in once a peer with
    /// uplink to spare, or a leave, makes room.
    fn wait_for_room(&mut self, now: Timestamp, channel: ChannelId, peer: NodeId) {
        let Some(name) = self.channel_name(channel) else {
            return;
        };
        let retry_after_ms = self.cfg.retry_after_s.saturating_mul(1000).max(1);
        self.refuse(now, channel, name, peer, retry_after_ms);
    }

    /// A peer the overlay cannot carry goes to a relay with room, if any.
    fn send_to_relay(&mut self, now: Timestamp, name: &str, peer: NodeId) -> bool {
        let region = self
            .registry
            .get(peer)
            .map(|r| r.region.clone())
            .unwrap_or_default();
        let has_relays = self
            .registry
            .iter()
            .any(|(_, r)| r.alive && r.role == NodeRole::Relay);
        if has_relays {
            if let Ok((channel, relay)) = self.watch_in(now, name, &region) {
                self.send(peer, Message::WatchAt { channel, relay });
                return true;
            }
        }
        false
    }

    /// A full recomputation of `channel`'s overlay was made: its event, and
    /// the peers it ejected sent to a relay or told why.
    pub(crate) fn recomputed(&mut self, now: Timestamp, channel: ChannelId, ejected: Vec<NodeId>) {
        self.events.push_back(CoordEvent::PeersRecomputed {
            channel,
            ejected: ejected.len() as u32,
        });
        for e in ejected {
            self.eject(now, channel, e);
        }
    }

    /// An ejected peer goes to a relay when one has room, else is told why.
    pub(crate) fn eject(&mut self, now: Timestamp, channel: ChannelId, peer: NodeId) {
        let Some(name) = self.channel_name(channel) else {
            return;
        };
        self.events
            .push_back(CoordEvent::PeerEjected { channel, peer });
        self.release_uplink(now, channel, peer);
        if let Some(o) = self.peers.get_mut(&channel) {
            o.ejected_again(now, peer);
        }
        if self.send_to_relay(now, &name, peer) {
            return;
        }
        self.deny_watch(peer, name, DenyReason::Ejected);
    }

    /// A peer left a channel (its LOGOFF to the coordinator) or every channel (crash).
    pub(super) fn peer_left(&mut self, now: Timestamp, peer: NodeId, only: Option<ChannelId>) {
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let pc = self.cfg.peers.clone();
        let chans: Vec<ChannelId> = self
            .peers
            .iter()
            .filter(|(c, o)| only.is_none_or(|x| x == **c) && o.members.contains_key(&peer))
            .map(|(c, _)| *c)
            .collect();
        self.network.forget_sent(peer);
        if only.is_none() {
            for o in self.peers.values_mut() {
                o.forget_refusals(peer);
            }
        }
        for c in chans {
            if let Some(o) = self.peers.get_mut(&c) {
                o.remove(peer, &pc, policy);
            }
            self.events
                .push_back(CoordEvent::PeerLeft { channel: c, peer });
            self.flush_peers(now, c);
            if only.is_some() {
                self.release_uplink(now, c, peer);
            }
        }
        if only.is_none() {
            self.forget_uplink(peer);
        }
    }

    /// A member reported a bad parent link; true when the overlay handled it.
    pub(super) fn peer_link_bad(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        parent: NodeId,
    ) -> bool {
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let pc = self.cfg.peers.clone();
        let Some(o) = self.peers.get_mut(&channel) else {
            return false;
        };
        if !o.members.contains_key(&from) {
            return false;
        }
        o.link_bad(from, parent, &pc, policy);
        self.flush_peers(now, channel);
        true
    }

    /// C2: compares the heartbeat with what the parents said they sent.
    pub(super) fn peer_heartbeat(&mut self, now: Timestamp, hb: &Heartbeat) {
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let pc = self.cfg.peers.clone();
        let fresh_us = super::rejoin::fed_window_us(self.cfg.heartbeat_interval_ms);
        for r in &hb.channels {
            let c = r.channel;
            let Some(o) = self.peers.get_mut(&c) else {
                continue;
            };
            let Some(m) = o.members.get(&hb.node) else {
                continue;
            };
            {
                // A member proven already stays so: neither its links read nor
                // its entry re-indexed (`update`) for nothing, every heartbeat.
                if let Some(top) = (!m.proven).then_some(m.top) {
                    let fed = !super::rejoin::fed_links(r, hb.local_time_us, fresh_us).is_empty();
                    if fed || top {
                        o.update(hb.node, |m| m.proven = true);
                    }
                }
                o.middle_report(
                    hb.node,
                    r.shards_expected,
                    r.shards_received,
                    r.groups_rebuilt,
                );
            }
            let congested = o.congestion_from(now, &mut self.network, hb, &pc);
            for (parent, child) in &congested {
                o.link_bad(*child, *parent, &pc, policy);
            }
            if !congested.is_empty() {
                self.flush_peers(now, c);
            }
        }
    }

    /// Periodic: members waiting for a parent retry; full recomputation when due (C7).
    pub(super) fn peers_tick(&mut self, now: Timestamp) {
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let pc = self.cfg.peers.clone();
        let chans: Vec<ChannelId> = self.peers.keys().copied().collect();
        for c in chans {
            let Some(o) = self.peers.get_mut(&c) else {
                continue;
            };
            o.retry_pending(now, &pc, policy);
            let review = now.saturating_since(o.last_top_review) >= pc.top_review_ms.max(1) * 1000;
            if review {
                // D1: promote and demote in place (a partial recomputation).
                o.last_top_review = now;
                o.review_top_algorithm(now, &pc);
                o.review_top(now, &pc, policy);
                o.review_waypoints(now, &pc, policy);
                // D5, D6: each region's redundancy from its loss, its cluster.
                o.review_middle(&pc);
            }
            if o.due_for_full(now, &pc) {
                let ejected = o.full_recompute(now, &pc, policy);
                if pc.recompute_batch > 0 {
                    o.hold_dirty();
                }
                self.recomputed(now, c, ejected);
            }
            if pc.recompute_batch > 0 {
                // Nearly a heartbeat interval: the tick's own jitter must not skip one.
                let interval_us = self.cfg.heartbeat_interval_ms * 900;
                if let Some(o) = self.peers.get_mut(&c) {
                    o.release_batch(now, pc.recompute_batch, interval_us);
                }
            }
            self.flush_peers(now, c);
        }
    }

    /// Sends each changed member its parents.
    pub(crate) fn flush_peers(&mut self, _now: Timestamp, channel: ChannelId) {
        let Some(o) = self.peers.get_mut(&channel) else {
            return;
        };
        // One still waiting for a reported parent is told a whole set (D7).
        o.settle_told(&self.cfg.peers, &super::select::AllowAll);
        let desc = o.desc.clone();
        let dirty = o.dirty.clone();
        o.held.told(&dirty);
        let mut out = o.take_dirty();
        // Retired waypoints drop every link of the overlay (D1).
        out.extend(o.take_retired().into_iter().map(|w| (w, Vec::new())));
        o.stats.assignments_sent += out.len() as u64;
        for (to, parents) in out {
            self.send_parent_set(to, desc.clone(), tiercast_proto::Placement::Member, parents);
        }
    }
}
