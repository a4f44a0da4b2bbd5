//! The servers-or-peers rule switching for viewers already placed (C3's
//! `provider.prefer_source` and `network.traffic_budget`; a policy change is a
//! C7 recomputation trigger). [`super::source_rules`] decides where a new
//! `Watch` goes; this keeps the source in force per (channel, viewer class) and,
//! when it changes — a policy install, or a budget crossing its threshold at a
//! tick — moves the peers placed before the change whose placement no longer
//! matches (`peers/source_moves.rs`):
//!
//! - servers now in force: members of the overlay go to relays with room, the
//!   leaves and the weakest first, only while a relay has room;
//! - peers now in force (or no rule left): peers the servers rule sent to a relay
//!   join the overlay while it has room, the strongest first.
//!
//! Gradually: at most `source_switch_share` of the peers affected at the switch
//! (and at least `source_switch_min`) per heartbeat interval, so a switch never
//! makes a flash crowd on the relays or in the overlay. Peers left over (no
//! room) are tried again each interval while the choice holds. Bounded: one
//! entry per (channel, class) of a known channel, and at most `max_nodes`
//! relay-placed peers.

use super::file::{Period, Source, ViewerClass};
use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::peers::source_moves::Move;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, NodeId, Timestamp};

/// The source in force for one (channel, class), and the moves it still owes.
#[derive(Clone, Debug)]
struct InForce {
    source: Source,
    /// The rule that decides ("" when none: the peers).
    rule: String,
    /// When it last changed: peers placed before then are the ones moved.
    since: Timestamp,
    /// Peers to move when it changed (sizes the pace).
    affected: u32,
    /// Some peer placed before `since` may still not match.
    moving: bool,
    /// The next pass of moves.
    next_at: Timestamp,
}

/// Where the servers-or-peers rule stands, and who it sent to a relay.
#[derive(Clone, Debug, Default)]
pub struct SourceSwitches {
    /// (channel, premium) → the source in force when last looked.
    in_force: BTreeMap<(ChannelId, bool), InForce>,
    /// (channel, peer) → the relay the servers rule sent it to, and when.
    on_servers: BTreeMap<(ChannelId, NodeId), (NodeId, Timestamp)>,
}

impl SourceSwitches {
    /// The servers rule sent `peer` to `relay` for `channel` (kept while below `limit`).
    pub(crate) fn placed(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        peer: NodeId,
        relay: NodeId,
        limit: usize,
    ) {
        let key = (channel, peer);
        if self.on_servers.len() < limit || self.on_servers.contains_key(&key) {
            self.on_servers.insert(key, (relay, now));
        }
    }

    /// `channel` was retired: its rules in force and its relay-placed peers go.
    pub(crate) fn forget_channel(&mut self, channel: ChannelId) {
        self.in_force.retain(|(c, _), _| *c != channel);
        self.on_servers.retain(|(c, _), _| *c != channel);
    }

    /// Entries kept for `channel` (rules in force, peers placed on relays).
    pub fn on_channel(&self, channel: ChannelId) -> usize {
        let rules = self.in_force.keys().filter(|(c, _)| *c == channel).count();
        rules
            + self
                .on_servers
                .keys()
                .filter(|(c, _)| *c == channel)
                .count()
    }

    /// `peer` no longer watches `channel` at a relay (its LOGOFF, or it joined the overlay).
    pub(crate) fn forget(&mut self, channel: ChannelId, peer: NodeId) {
        self.on_servers.remove(&(channel, peer));
    }

    /// Whether the servers rule sent `peer` to a relay for `channel`.
    pub(crate) fn on_servers(&self, channel: ChannelId, peer: NodeId) -> bool {
        self.on_servers.contains_key(&(channel, peer))
    }

    /// The relay the servers rule sent `peer` to for `channel`, and when.
    pub(crate) fn placement(
        &self,
        channel: ChannelId,
        peer: NodeId,
    ) -> Option<(NodeId, Timestamp)> {
        self.on_servers.get(&(channel, peer)).copied()
    }

    /// The relay-placed peers of `channel`: (peer, relay, when placed).
    pub(crate) fn on_servers_of(&self, channel: ChannelId) -> Vec<(NodeId, NodeId, Timestamp)> {
        let lo = (channel, NodeId(0));
        let hi = (channel, NodeId(u32::MAX));
        self.on_servers
            .range(lo..=hi)
            .map(|((_, p), (r, t))| (*p, *r, *t))
            .collect()
    }

    /// Relay-placed peers kept (tests and monitoring).
    pub fn on_servers_len(&self) -> usize {
        self.on_servers.len()
    }
}

/// The class a peer's `premium` flag puts it in.
pub(crate) fn class_of(premium: bool) -> ViewerClass {
    if premium {
        ViewerClass::Premium
    } else {
        ViewerClass::Free
    }
}

impl Coordinator {
    /// The relay-placed peers the coordinator keeps (read-only).
    pub fn source_switches(&self) -> &SourceSwitches {
        &self.source_switches
    }

    /// The source in force for `class` of `channel_name` now, and its rule.
    fn source_now(&self, now: Timestamp, channel_name: &str, premium: bool) -> (Source, String) {
        let used = |p: Period| self.server_traffic_gb(now, p);
        match self
            .policy
            .policies
            .source_in_force(channel_name, class_of(premium), used)
        {
            Some(c) => (c.source, c.rule.to_string()),
            None => (Source::Peers, String::new()),
        }
    }

    /// Looks at the source in force for every (channel, class) (at a policy
    /// install and every tick): a change starts moving the peers it affects.
    pub(crate) fn detect_source_switches(&mut self, now: Timestamp) {
        let names: Vec<(String, ChannelId)> =
            self.names.iter().map(|(n, c)| (n.clone(), *c)).collect();
        self.source_switches
            .in_force
            .retain(|(c, _), _| names.iter().any(|(_, id)| id == c));
        for (name, channel) in names {
            for premium in [false, true] {
                let (source, rule) = self.source_now(now, &name, premium);
                let before = self
                    .source_switches
                    .in_force
                    .get(&(channel, premium))
                    .map_or(Source::Peers, |f| f.source);
                if before == source {
                    if let Some(f) = self.source_switches.in_force.get_mut(&(channel, premium)) {
                        f.rule = rule;
                    }
                    continue;
                }
                let affected = self.mismatched(now, channel, premium, source).len() as u32;
                self.source_switches.in_force.insert(
                    (channel, premium),
                    InForce {
                        source,
                        rule: rule.clone(),
                        since: now,
                        affected,
                        moving: affected > 0,
                        next_at: now,
                    },
                );
                self.events.push_back(CoordEvent::SourceSwitched {
                    channel,
                    class: class_of(premium),
                    source,
                    rule,
                    affected,
                });
            }
        }
    }

    /// The peers of `channel` in `premium`'s class placed before the switch to
    /// `source` that do not match it, in the order they are moved: into relays
    /// the leaves and the weakest first; into the overlay the strongest first.
    /// With their relay (moving to the peers).
    fn mismatched(
        &self,
        since: Timestamp,
        channel: ChannelId,
        premium: bool,
        source: Source,
    ) -> Vec<(NodeId, Option<NodeId>)> {
        let in_class = |id: NodeId| {
            self.registry
                .get(id)
                .is_some_and(|r| r.alive && r.premium == premium)
        };
        let overlay = self.peers.get(&channel);
        match source {
            Source::Servers => {
                let Some(o) = overlay else {
                    return Vec::new();
                };
                let mut v: Vec<_> = o
                    .members
                    .iter()
                    .filter(|(id, m)| {
                        m.kind == crate::peers::MemberKind::Peer
                            && m.joined_at <= since
                            && in_class(**id)
                    })
                    .map(|(id, m)| ((m.top, m.used > 0, m.uplink_bps, *id), *id))
                    .collect();
                v.sort_by_key(|(k, _)| *k);
                v.into_iter().map(|(_, id)| (id, None)).collect()
            }
            Source::Peers => {
                let mut v: Vec<_> = self
                    .source_switches
                    .on_servers_of(channel)
                    .into_iter()
                    .filter(|(p, _, at)| {
                        *at <= since
                            && in_class(*p)
                            && self
                                .registry
                                .get(*p)
                                .is_some_and(|r| r.registered_at <= *at)
                            && !overlay.is_some_and(|o| o.members.contains_key(p))
                    })
                    .map(|(p, r, _)| {
                        let up = self.registry.get(p).map_or(0, |x| x.uplink_kbps);
                        ((std::cmp::Reverse(up), p), (p, Some(r)))
                    })
                    .collect();
                v.sort_by_key(|(k, _)| *k);
                v.into_iter().map(|(_, x)| x).collect()
            }
        }
    }

    /// Periodic (every tick): switches detected, then the moves they owe, at most
    /// the bound per (channel, class) per heartbeat interval.
    pub(crate) fn source_switch_tick(&mut self, now: Timestamp) {
        self.detect_source_switches(now);
        self.drop_stale_placements();
        let due: Vec<((ChannelId, bool), InForce)> = self
            .source_switches
            .in_force
            .iter()
            .filter(|(_, f)| f.moving && now >= f.next_at)
            .map(|(k, f)| (*k, f.clone()))
            .collect();
        let interval_us = self.cfg.heartbeat_interval_ms.max(1) * 900;
        for ((channel, premium), f) in due {
            let todo = self.mismatched(f.since, channel, premium, f.source);
            let bound = self.switch_bound(f.affected);
            let mut moved = 0usize;
            for (peer, relay) in &todo {
                if moved >= bound {
                    break;
                }
                let outcome = match (f.source, relay) {
                    (Source::Servers, _) => self.move_to_servers(now, channel, *peer, &f.rule),
                    (Source::Peers, Some(r)) => {
                        self.move_to_peers(now, channel, *peer, *r, &f.rule)
                    }
                    (Source::Peers, None) => Move::NotThis,
                };
                match outcome {
                    Move::Done => moved += 1,
                    Move::NotThis => {}
                    // The rest stay where they are, tried again next interval.
                    Move::NoRoom => break,
                }
            }
            if let Some(e) = self.source_switches.in_force.get_mut(&(channel, premium)) {
                e.next_at = Timestamp(now.0.saturating_add(interval_us));
                e.moving = moved < todo.len();
            }
        }
    }

    /// Most peers one (channel, class) moves per heartbeat interval.
    fn switch_bound(&self, affected: u32) -> usize {
        let share = (f64::from(affected) * self.cfg.source_switch_share).ceil() as usize;
        share.max(self.cfg.source_switch_min as usize)
    }

    /// Relay-placed peers that are gone (lost, or registered again since).
    fn drop_stale_placements(&mut self) {
        let stale: Vec<(ChannelId, NodeId)> = self
            .source_switches
            .on_servers
            .iter()
            .filter(|((_, p), (_, at))| {
                self.registry
                    .get(*p)
                    .is_none_or(|r| !r.alive || r.registered_at > *at)
            })
            .map(|(k, _)| *k)
            .collect();
        for (c, p) in stale {
            self.source_switches.forget(c, p);
        }
    }
}
