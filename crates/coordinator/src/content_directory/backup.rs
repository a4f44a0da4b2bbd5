//! The backup origin (D7, issue 12): a channel may have one hot-standby origin
//! besides its primary. The rules, all here so the simulator runs them:
//!
//! - an origin announcing with `backup` becomes the channel's standby when the
//!   channel exists, it signs with the channel's key, and no other live node is
//!   the standby already; it is answered `StandbyAccepted` and fed to nobody.
//!   Refused, with the reason in `AnnounceDenied`: a channel not announced yet, a
//!   backup with another key, a second backup, the origin itself. A backup
//!   announcing while the channel has no live origin takes it at once;
//! - the primary is lost — its heartbeats stop for `heartbeat_timeout_ms`, or
//!   an active tier-1 relay reports the origin silent (`LinkDowngrade`, sent
//!   after the node's `origin_silence_ms`, `tiercast_node::origin_watch`) and
//!   the origin does not confirm it lives: either the coordinator has not heard
//!   it for more than [`SILENT_ORIGIN_HEARTBEATS`] half heartbeat intervals, or it
//!   leaves a `Probe` unanswered for `origin_probe_ms` (`origin_probe.rs`) —
//!   the backup is promoted: it becomes the channel's origin (`Announced`,
//!   with `next_seq`) and the tier-1 relays are re-homed to it as for any lost
//!   parent. One report is enough (any active tier-1 relay's), but never alone:
//!   a relay that lies, or whose own link broke, meets an origin that answers
//!   the probe, and nothing changes;
//! - go back by configuration: a returning primary (the channel's key, a new
//!   process) announcing with `backup` becomes the standby of the promoted
//!   backup; announcing without it, it takes the channel back and the promoted
//!   backup becomes the standby again (`StandbyAccepted`; its tier-1 children
//!   are re-homed to the primary, connecting before disconnecting).
//!
//! The backup's blocks continue the seq space: it cuts from the highest seq it
//! saw of the primary (it watches the channel) plus a margin, and never below
//! the coordinator's `next_seq` (node side: `tiercast_node::standby`).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::service_manager::verbs::{ManagerVerbs, Van};
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{ChannelId, DenyReason, Message, NodeId, Timestamp};

/// A tier-1 relay's report of a silent origin promotes the backup at once when
/// the coordinator has not heard the primary for more than this many half
/// heartbeat intervals (1.5 intervals: a live primary heartbeats every
/// interval); otherwise the primary is probed first.
pub const SILENT_ORIGIN_HEARTBEATS: u64 = 3;

/// Per channel: its standby origin, and whether its origin now is a promoted
/// backup (one entry per channel at most: bounded by the channels).
#[derive(Clone, Debug, Default)]
pub struct BackupSlots {
    standby: BTreeMap<ChannelId, NodeId>,
    promoted: BTreeSet<ChannelId>,
    /// Reported origins asked whether they live (`origin_probe.rs`).
    pub(crate) probes: super::origin_probe::OriginProbes,
}

impl BackupSlots {
    /// The channel's standby origin, if any.
    pub fn standby(&self, channel: ChannelId) -> Option<NodeId> {
        self.standby.get(&channel).copied()
    }

    /// Whether the channel's origin now is its promoted backup.
    pub fn promoted(&self, channel: ChannelId) -> bool {
        self.promoted.contains(&channel)
    }
}

impl Coordinator {
    /// An origin asks to be `name`'s standby (see the module's rules).
    pub(crate) fn on_announce_backup(
        &mut self,
        now: Timestamp,
        from: NodeId,
        name: String,
        public_key: [u8; 32],
    ) {
        let Some(id) = self.names.get(&name).copied() else {
            return self.deny_backup(
                from,
                name,
                "no such channel yet: start its primary origin first",
            );
        };
        let m = &self.channels[&id];
        if m.desc.public_key != public_key {
            return self.deny_backup(
                from,
                name,
                "a backup must sign with the channel's key (give the primary's --key-file)",
            );
        }
        if m.origin == from {
            return self.deny_backup(from, name, "this node is the channel's origin");
        }
        if !self.registry.is_alive(m.origin) {
            // No primary to stand in for: the backup is the origin now.
            self.backups.standby.remove(&id);
            self.on_announce(now, from, name, public_key, Some(id));
            return;
        }
        if let Some(b) = self.backups.standby(id) {
            if b != from && self.registry.is_alive(b) {
                return self.deny_backup(
                    from,
                    name,
                    "the channel has a live backup origin already",
                );
            }
        }
        self.backups.standby.insert(id, from);
        let channel = m.desc.clone();
        self.send_publish_keys(from, &channel.name);
        self.send(from, Message::StandbyAccepted { channel });
    }

    fn deny_backup(&mut self, from: NodeId, channel_name: String, why: &str) {
        self.stats.denied += 1;
        let reason = DenyReason::Invalid(format!("backup origin refused: {why}"));
        self.events.push_back(CoordEvent::AnnounceDenied {
            channel_name: channel_name.clone(),
            from,
            reason: reason.clone(),
        });
        self.send(
            from,
            Message::AnnounceDenied {
                channel_name,
                reason,
            },
        );
    }

    /// `node` is being lost: a channel it was the origin of gets its backup as
    /// origin (before the relays are re-homed, so they go to the backup); a
    /// channel it was the standby of has none.
    pub(crate) fn backup_on_node_lost(&mut self, now: Timestamp, node: NodeId) {
        self.backups.standby.retain(|_, b| *b != node);
        let orphaned: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, m)| m.origin == node)
            .map(|(id, _)| *id)
            .collect();
        for id in orphaned {
            let Some(b) = self.backups.standby.remove(&id) else {
                continue;
            };
            if !self.registry.is_alive(b) {
                continue;
            }
            self.promote_backup(now, id, node, b);
        }
    }

    fn promote_backup(&mut self, _now: Timestamp, id: ChannelId, old: NodeId, backup: NodeId) {
        let m = self.channels.get_mut(&id).expect("listed by the caller");
        m.origin = backup;
        let desc = m.desc.clone();
        let next_seq = m.highest_seq.map_or(0, |s| s.saturating_add(1));
        self.backups.promoted.insert(id);
        self.events.push_back(CoordEvent::OriginReplaced {
            channel: id,
            old,
            new: backup,
            key_changed: false,
        });
        self.send(
            backup,
            Message::Announced {
                channel: desc,
                next_seq,
            },
        );
    }

    /// An active relay says `parent` went silent on `channel`: when `parent` is
    /// the channel's origin and it has a live backup, the origin is lost now
    /// (the backup promoted) if the coordinator has not heard it for
    /// [`SILENT_ORIGIN_HEARTBEATS`] half intervals, else it is probed (lost if it
    /// does not answer within `origin_probe_ms`) — rather than waiting for its
    /// heartbeat timeout. True: handled here.
    pub(crate) fn backup_on_origin_silent(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        parent: NodeId,
    ) -> bool {
        let Some(m) = self.channels.get(&channel) else {
            return false;
        };
        if m.origin != parent || !m.active.contains_key(&from) {
            return false;
        }
        let has_backup = self
            .backups
            .standby(channel)
            .is_some_and(|b| self.registry.is_alive(b));
        let quiet_us = self.cfg.heartbeat_interval_ms * 1000 * SILENT_ORIGIN_HEARTBEATS / 2;
        let silent = self
            .registry
            .get(parent)
            .is_some_and(|r| now.saturating_since(r.last_heard) > quiet_us);
        if !has_backup {
            return false;
        }
        if silent {
            self.node_lost(now, parent);
        } else {
            self.probe_origin(now, parent);
        }
        true
    }

    /// The channel's own key announced by a new node while a promoted backup is
    /// its origin, without `backup`: the primary takes the channel back and the
    /// backup becomes the standby again. True: handled here.
    pub(crate) fn primary_returns(&mut self, now: Timestamp, from: NodeId, id: ChannelId) -> bool {
        let Some(m) = self.channels.get(&id) else {
            return false;
        };
        let backup = m.origin;
        if !self.backups.promoted(id) || backup == from || !self.registry.is_alive(backup) {
            return false;
        }
        let desc = m.desc.clone();
        self.backups.promoted.remove(&id);
        if let Some(old) = self.backups.standby.insert(id, backup) {
            if old != from {
                // The standby that was is neither origin nor standby now.
                self.send(
                    old,
                    Message::AnnounceDenied {
                        channel_name: desc.name.clone(),
                        reason: DenyReason::ChannelLive { origin: from },
                    },
                );
            }
        }
        self.channels.get_mut(&id).expect("checked").origin = from;
        self.events.push_back(CoordEvent::OriginReplaced {
            channel: id,
            old: backup,
            new: from,
            key_changed: false,
        });
        self.send(backup, Message::StandbyAccepted { channel: desc });
        // Its tier-1 children go to the primary (connect before disconnect).
        Van::on_leave(self, now, backup, None);
        true
    }
}
