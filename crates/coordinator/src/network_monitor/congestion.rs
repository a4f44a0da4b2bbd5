//! Congested links from heartbeats (C2): a parent reports the last seq it sent to
//! each child, a child the last seq it received from each parent. When a child
//! has still not received what its parent said it had sent at least
//! [`LAG_US`] earlier (a full second of queue), the link is lagging; lagging for
//! N reports in a row ("rate under the substream rate for N intervals", C6), it
//! is congested. Only the links the caller says push blocks are compared (the
//! peer overlay's push links: a lazy link carries blocks only when asked), and
//! only those are remembered, so a heartbeat naming any id grows nothing.

use std::collections::HashMap;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, Timestamp};

/// A block the parent sent this long ago must have arrived on a healthy link
/// (latency, serialization at a peer's uplink, a burst in its queue).
pub const LAG_US: u64 = 1_000_000;

/// What parents said they sent, and how long each child has lagged behind it.
/// Hash maps: every heartbeat looks up each of its links here, and at 10⁵–10⁶
/// nodes the ordered maps' searches were a quarter of a heartbeat's handling
/// (issue 12, `tiercast bench heartbeats`); nothing here is read in key order
/// (only looked up, counted, or filtered by `retain`), so no decision depends
/// on the hash order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Congestion {
    /// (parent, child) → the last two reports (seq, when heard), newest first.
    sent: HashMap<(NodeId, NodeId), [(u64, Timestamp); 2]>,
    /// (channel, parent, child) → consecutive heartbeats the child lagged.
    lagging: HashMap<(ChannelId, NodeId, NodeId), u32>,
}

impl Congestion {
    /// Links whose sent seqs are remembered.
    pub(crate) fn sent_len(&self) -> usize {
        self.sent.len()
    }

    /// The node's sent reports, as parent or child, are forgotten.
    pub(crate) fn forget_sent(&mut self, node: NodeId) {
        self.sent.retain(|(p, c), _| *p != node && *c != node);
    }

    /// The lag counts of `node`'s links on `channel` are forgotten (it left the
    /// channel's overlay).
    pub(crate) fn forget_member(&mut self, channel: ChannelId, node: NodeId) {
        self.lagging
            .retain(|(ch, p, c), _| *ch != channel || (*p != node && *c != node));
    }

    /// Every lag count of `channel` is forgotten (its overlay is gone).
    pub(crate) fn forget_channel(&mut self, channel: ChannelId) {
        self.lagging.retain(|(ch, _, _), _| *ch != channel);
    }

    /// Links of `channel` with a lag count.
    pub(crate) fn lagging_on(&self, channel: ChannelId) -> usize {
        self.lagging
            .keys()
            .filter(|(c, _, _)| *c == channel)
            .count()
    }

    /// The consecutive lagging reports of the link on `channel`.
    pub(crate) fn lag(&self, channel: ChannelId, parent: NodeId, child: NodeId) -> u32 {
        self.lagging
            .get(&(channel, parent, child))
            .copied()
            .unwrap_or(0)
    }

    /// Folds one heartbeat's report on `channel` in; returns the links (parent,
    /// child) lagging for `reports_in_a_row` reports (their count starts again).
    pub(crate) fn compare(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        hb: &Heartbeat,
        reports_in_a_row: u32,
        pushes_to: impl Fn(NodeId, NodeId) -> bool,
    ) -> Vec<(NodeId, NodeId)> {
        let me = hb.node;
        let Some(report) = hb.channels.iter().find(|c| c.channel == channel) else {
            return Vec::new();
        };
        for c in &report.children {
            // Only a link the caller has: a heartbeat naming any child id must not
            // grow the log (issue 11), and a link gone is forgotten.
            if !pushes_to(me, c.peer) {
                self.sent.remove(&(me, c.peer));
                continue;
            }
            if let Some(seq) = c.last_seq {
                let e = self.sent.entry((me, c.peer)).or_insert([(seq, now); 2]);
                *e = [(seq, now), e[0]];
            }
        }
        let mut congested = Vec::new();
        for p in &report.parents {
            let key = (p.peer, me);
            // Only a push link can lag: a lazy (repair) link carries nothing
            // until asked, and a parent just replaced may still be reported.
            if !pushes_to(p.peer, me) {
                self.lagging.remove(&(channel, p.peer, me));
                continue;
            }
            let Some(reports) = self.sent.get(&key).copied() else {
                continue;
            };
            // The newest parent report at least LAG_US old.
            let Some((sent, _)) = reports
                .into_iter()
                .find(|(_, at)| now.saturating_since(*at) >= LAG_US)
            else {
                continue;
            };
            let behind = p.last_seq.is_none_or(|got| got < sent);
            let n = self.lagging.entry((channel, p.peer, me)).or_insert(0);
            if behind {
                *n += 1;
            } else {
                *n = 0;
            }
            if *n >= reports_in_a_row {
                *n = 0;
                congested.push(key);
            }
        }
        congested
    }
}
