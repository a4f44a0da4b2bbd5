//! Congested links from heartbeats (C2): a parent reports the last seq it sent to
//! each child, a child the last seq it received from each parent. When a child
//! has still not received what its parent said it had sent at least
//! [`LAG_US`] earlier (a full second of queue), the link is lagging; lagging for
//! N reports in a row ("rate under the substream rate for N intervals", C6), it
//! is congested. Only the links the caller says push blocks are compared (the
//! peer overlay's push links: a lazy link carries blocks only when asked), and
//! only those are remembered, so a heartbeat naming any id grows nothing.
//!
//! The books are kept per child ([`ChildBooks`]): what each parent said it sent
//! to it and how long it has lagged behind each, in one small record, so the
//! child's own heartbeat reads all its links with one lookup (issue 12: at
//! 10⁵–10⁶ nodes a lookup per link and map was most of this comparison's time).

use crate::node_hash::NodeHashMap;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, Timestamp};

/// A block the parent sent this long ago must have arrived on a healthy link
/// (latency, serialization at a peer's uplink, a burst in its queue).
pub const LAG_US: u64 = 1_000_000;

/// The last two reports of what a parent sent on a link (seq, when heard),
/// newest first.
type Sent = [(u64, Timestamp); 2];

/// One child's books: its push parents' sent reports, and its lag counts.
/// Both are as long as the child's push links (a few), so they are scanned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChildBooks {
    /// parent → what it said it sent to this child.
    sent: Vec<(NodeId, Sent)>,
    /// (channel, parent) → consecutive heartbeats this child lagged (never 0:
    /// a count back to 0 is dropped, as an absent one reads 0).
    lagging: Vec<(ChannelId, NodeId, u32)>,
}

impl ChildBooks {
    fn is_empty(&self) -> bool {
        self.sent.is_empty() && self.lagging.is_empty()
    }

    fn sent_by(&self, parent: NodeId) -> Option<Sent> {
        self.sent
            .iter()
            .find(|(p, _)| *p == parent)
            .map(|(_, s)| *s)
    }

    /// `parent`'s report of `seq` at `now` (the one before kept).
    fn report_sent(&mut self, parent: NodeId, seq: u64, now: Timestamp) {
        match self.sent.iter_mut().find(|(p, _)| *p == parent) {
            Some((_, e)) => *e = [(seq, now), e[0]],
            None => {
                // Room for exactly the links (a first push reserves four).
                self.sent.reserve_exact(1);
                self.sent.push((parent, [(seq, now); 2]));
            }
        }
    }

    /// Whether a sent report of `parent` was dropped.
    fn drop_sent(&mut self, parent: NodeId) -> bool {
        let before = self.sent.len();
        self.sent.retain(|(p, _)| *p != parent);
        self.sent.len() != before
    }

    fn lag(&self, channel: ChannelId, parent: NodeId) -> u32 {
        self.lagging
            .iter()
            .find(|(c, p, _)| *c == channel && *p == parent)
            .map_or(0, |(_, _, n)| *n)
    }

    fn set_lag(&mut self, channel: ChannelId, parent: NodeId, n: u32) {
        let i = self
            .lagging
            .iter()
            .position(|(c, p, _)| *c == channel && *p == parent);
        match (i, n) {
            (Some(i), 0) => {
                self.lagging.swap_remove(i);
            }
            (Some(i), n) => self.lagging[i].2 = n,
            (None, 0) => {}
            (None, n) => self.lagging.push((channel, parent, n)),
        }
    }
}

/// What parents said they sent, and how long each child has lagged behind it.
/// A hash map of children: every heartbeat looks up its links here, and at
/// 10⁵–10⁶ nodes the ordered maps' searches were a quarter of a heartbeat's
/// handling (issue 12, `tiercast bench heartbeats`); nothing here is read in key
/// order (only looked up, counted, or filtered), so no decision depends on the
/// hash order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Congestion {
    /// child → its books.
    books: NodeHashMap<ChildBooks>,
    /// Sent reports kept, over all children.
    sent_count: usize,
}

impl Congestion {
    /// Links whose sent seqs are remembered.
    pub(crate) fn sent_len(&self) -> usize {
        self.sent_count
    }

    /// The node's sent reports, as parent or child, are forgotten.
    pub(crate) fn forget_sent(&mut self, node: NodeId) {
        let mut dropped = 0;
        if let Some(b) = self.books.get_mut(&node) {
            dropped += b.sent.len();
            b.sent.clear();
        }
        for b in self.books.values_mut() {
            dropped += usize::from(b.drop_sent(node));
        }
        self.sent_count -= dropped;
        self.books.retain(|_, b| !b.is_empty());
    }

    /// The lag counts of `nodes`' links on `channel` are forgotten (they left the
    /// channel's overlay); one pass over the books.
    pub(crate) fn forget_members(&mut self, channel: ChannelId, nodes: &[NodeId]) {
        let mut gone = nodes.to_vec();
        gone.sort_unstable();
        let left = |n: &NodeId| gone.binary_search(n).is_ok();
        self.books.retain(|child, b| {
            let child_left = left(child);
            b.lagging
                .retain(|(c, p, _)| *c != channel || !(child_left || left(p)));
            !b.is_empty()
        });
    }

    /// Every lag count of `channel` is forgotten (its overlay is gone).
    pub(crate) fn forget_channel(&mut self, channel: ChannelId) {
        for b in self.books.values_mut() {
            b.lagging.retain(|(c, _, _)| *c != channel);
        }
        self.books.retain(|_, b| !b.is_empty());
    }

    /// Links of `channel` with a lag count.
    pub(crate) fn lagging_on(&self, channel: ChannelId) -> usize {
        self.books
            .values()
            .map(|b| b.lagging.iter().filter(|(c, _, _)| *c == channel).count())
            .sum()
    }

    /// The consecutive lagging reports of the link on `channel`.
    pub(crate) fn lag(&self, channel: ChannelId, parent: NodeId, child: NodeId) -> u32 {
        self.books.get(&child).map_or(0, |b| b.lag(channel, parent))
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
                if let Some(b) = self.books.get_mut(&c.peer) {
                    if b.drop_sent(me) {
                        self.sent_count -= 1;
                        if b.is_empty() {
                            self.books.remove(&c.peer);
                        }
                    }
                }
                continue;
            }
            if let Some(seq) = c.last_seq {
                let b = self.books.entry(c.peer).or_default();
                let before = b.sent.len();
                b.report_sent(me, seq, now);
                self.sent_count += b.sent.len() - before;
            }
        }
        let mut congested = Vec::new();
        // Without books the child has no sent report to lag behind, nor a count.
        let Some(b) = self.books.get_mut(&me) else {
            return congested;
        };
        for p in &report.parents {
            // Only a push link can lag: a lazy (repair) link carries nothing
            // until asked, and a parent just replaced may still be reported.
            if !pushes_to(p.peer, me) {
                b.set_lag(channel, p.peer, 0);
                continue;
            }
            let Some(reports) = b.sent_by(p.peer) else {
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
            let mut n = if behind {
                b.lag(channel, p.peer) + 1
            } else {
                0
            };
            if n >= reports_in_a_row {
                n = 0;
                congested.push((p.peer, me));
            }
            b.set_lag(channel, p.peer, n);
        }
        if b.is_empty() {
            self.books.remove(&me);
        }
        congested
    }
}

#[cfg(test)]
#[path = "congestion_tests.rs"]
mod tests;
