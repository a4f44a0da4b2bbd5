//! Pushes from a node that is not a parent (V9, C7; issue 10's partitions): the
//! LOGOFF that ended the link was lost — sent across a cut, or to a parent whose
//! region was cut off — so the old parent still spends its uplink on this node, an
//! upload the coordinator no longer books. It is told LOGOFF again once it has
//! kept pushing for [`FOREIGN_GRACE_INTERVALS`] heartbeat intervals (what it queued
//! before an ordinary LOGOFF arrived is not), then at most once per interval, from a
//! bounded table.

use crate::node::Node;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, Message, NodeId, Timestamp};

/// Senders remembered per channel; the oldest is forgotten first.
const MAX_FOREIGN_SENDERS: usize = 64;

/// Heartbeat intervals a sender keeps pushing before it is told: the blocks and
/// `Have`s it queued before our LOGOFF reached it arrive for as long as its uplink
/// queue is deep; a LOGOFF sent while a LOGIN to it may follow (the coordinator
/// named it again) could overtake nothing but would undo that LOGIN.
const FOREIGN_GRACE_INTERVALS: u64 = 3;

/// A foreign sender: since when it pushes (a pause of an interval starts again),
/// when it last did, when it was last told LOGOFF.
#[derive(Clone, Copy, Debug)]
struct Foreign {
    since: Timestamp,
    last: Timestamp,
    told: Option<Timestamp>,
}

/// The foreign senders of one channel.
#[derive(Clone, Debug, Default)]
pub struct ForeignSenders {
    senders: BTreeMap<NodeId, Foreign>,
}

impl ForeignSenders {
    /// `from` pushed at `now`: whether it is due a LOGOFF (and marks it told).
    fn due(&mut self, now: Timestamp, from: NodeId, interval_us: u64) -> bool {
        if self.senders.len() >= MAX_FOREIGN_SENDERS && !self.senders.contains_key(&from) {
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(n, _)| *n);
            if let Some(o) = oldest {
                self.senders.remove(&o);
            }
        }
        let f = self.senders.entry(from).or_insert(Foreign {
            since: now,
            last: now,
            told: None,
        });
        if now.saturating_since(f.last) > interval_us {
            *f = Foreign {
                since: now,
                last: now,
                told: None,
            };
        }
        f.last = now;
        let pushing_long = now.saturating_since(f.since) >= FOREIGN_GRACE_INTERVALS * interval_us;
        let told_lately = f
            .told
            .is_some_and(|t| now.saturating_since(t) < interval_us);
        if pushing_long && !told_lately {
            f.told = Some(now);
            return true;
        }
        false
    }

    /// `id` is a parent again: what it sent before says nothing now.
    pub(crate) fn forget(&mut self, id: NodeId) {
        self.senders.remove(&id);
    }
}

impl Node {
    /// A block, shard or `Have` on `channel` from `from`, which is not a parent.
    pub(crate) fn foreign_push(&mut self, now: Timestamp, from: NodeId, channel: ChannelId) {
        let interval_us = self.cfg.heartbeat_interval_ms.max(1) * 1000;
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        ch.foreign_blocks += 1;
        if ch.foreign.due(now, from, interval_us) {
            self.send(from, Message::Logoff { channel });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    fn t(ms: u64) -> Timestamp {
        Timestamp(ms * 1000)
    }

    #[test]
    fn a_sender_that_keeps_pushing_is_told_after_the_grace_once_per_interval() {
        let mut f = ForeignSenders::default();
        // Blocks in flight for two seconds after our LOGOFF: nobody is told.
        let told: Vec<u64> = (0..=20)
            .map(|i| i * 100)
            .filter(|ms| f.due(t(*ms), NodeId(1), S))
            .collect();
        assert!(told.is_empty(), "{told:?}");
        // It goes on pushing (its LOGOFF was lost): told at 3 s, then every second.
        let told: Vec<u64> = (21..=55)
            .map(|i| i * 100)
            .filter(|ms| f.due(t(*ms), NodeId(1), S))
            .collect();
        assert_eq!(told, vec![3000, 4000, 5000]);
        // A pause longer than an interval starts the grace again.
        assert!(!f.due(t(7000), NodeId(1), S));
        // A parent again: forgotten.
        f.forget(NodeId(1));
        assert!(!f.senders.contains_key(&NodeId(1)));
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut f = ForeignSenders::default();
        for i in 0..200 {
            f.due(t(i), NodeId(100 + i as u32), S);
        }
        assert_eq!(f.senders.len(), MAX_FOREIGN_SENDERS);
        assert!(f.senders.contains_key(&NodeId(299)), "the newest is kept");
    }
}
