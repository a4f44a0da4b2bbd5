//! The per-child books ([`super::ChildBooks`]) against the books they replaced
//! (one map per link, keyed (parent, child) and (channel, parent, child)): the
//! same congested links, lag counts and sent reports after any heartbeats and
//! forgettings.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;
use tiercast_proto::{ChannelReport, LinkReport};

/// The pair-keyed books, as they were before issue 12's rewrite.
#[derive(Default)]
struct PairBooks {
    sent: HashMap<(NodeId, NodeId), Sent>,
    lagging: HashMap<(ChannelId, NodeId, NodeId), u32>,
}

impl PairBooks {
    fn compare(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        hb: &Heartbeat,
        in_a_row: u32,
        pushes_to: impl Fn(NodeId, NodeId) -> bool,
    ) -> Vec<(NodeId, NodeId)> {
        let me = hb.node;
        let Some(report) = hb.channels.iter().find(|c| c.channel == channel) else {
            return Vec::new();
        };
        for c in &report.children {
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
            if !pushes_to(p.peer, me) {
                self.lagging.remove(&(channel, p.peer, me));
                continue;
            }
            let Some(reports) = self.sent.get(&(p.peer, me)).copied() else {
                continue;
            };
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
            if *n >= in_a_row {
                *n = 0;
                congested.push((p.peer, me));
            }
        }
        congested
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// A heartbeat of `node` on channel `ch`: its parents and children with seqs.
    Beat {
        node: u32,
        ch: u32,
        parents: Vec<(u32, Option<u64>)>,
        children: Vec<(u32, Option<u64>)>,
        dt_ms: u64,
    },
    ForgetSent(u32),
    ForgetMembers(u32, Vec<u32>),
    ForgetChannel(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let links = || proptest::collection::vec((0u32..6, proptest::option::of(0u64..8)), 0..4);
    prop_oneof![
        8 => (0u32..6, 0u32..2, links(), links(), 0u64..1500).prop_map(
            |(node, ch, parents, children, dt_ms)| Op::Beat { node, ch, parents, children, dt_ms }
        ),
        1 => (0u32..6).prop_map(Op::ForgetSent),
        1 => (0u32..2, proptest::collection::vec(0u32..6, 0..3)).prop_map(|(c, n)| Op::ForgetMembers(c, n)),
        1 => (0u32..2).prop_map(Op::ForgetChannel),
    ]
}

fn links(l: &[(u32, Option<u64>)]) -> Vec<LinkReport> {
    l.iter()
        .map(|(p, s)| LinkReport {
            peer: NodeId(*p),
            last_seq: *s,
            ..LinkReport::default()
        })
        .collect()
}

proptest! {
    #[test]
    fn per_child_books_decide_as_the_pair_keyed_books_did(
        ops in proptest::collection::vec(op(), 1..80),
        in_a_row in 0u32..4,
        push_mask in any::<u64>(),
    ) {
        // parent → child pushes when its bit is set (no link to itself).
        let pushes_to = |p: NodeId, c: NodeId| p != c && push_mask >> (p.0 * 6 + c.0) & 1 == 1;
        let mut new = Congestion::default();
        let mut old = PairBooks::default();
        let mut now = Timestamp(0);
        for op in ops {
            match op {
                Op::Beat { node, ch, parents, children, dt_ms } => {
                    now = Timestamp(now.0 + dt_ms * 1000);
                    let hb = Heartbeat {
                        node: NodeId(node),
                        channels: vec![ChannelReport {
                            channel: ChannelId(ch),
                            parents: links(&parents),
                            children: links(&children),
                            ..ChannelReport::default()
                        }],
                        ..Heartbeat::default()
                    };
                    let a = new.compare(now, ChannelId(ch), &hb, in_a_row, pushes_to);
                    let b = old.compare(now, ChannelId(ch), &hb, in_a_row, pushes_to);
                    prop_assert_eq!(a, b);
                }
                Op::ForgetSent(n) => {
                    new.forget_sent(NodeId(n));
                    old.sent.retain(|(p, c), _| p.0 != n && c.0 != n);
                }
                Op::ForgetMembers(ch, nodes) => {
                    let ids: Vec<NodeId> = nodes.iter().map(|n| NodeId(*n)).collect();
                    new.forget_members(ChannelId(ch), &ids);
                    for n in nodes {
                        old.lagging
                            .retain(|(c, p, k), _| c.0 != ch || (p.0 != n && k.0 != n));
                    }
                }
                Op::ForgetChannel(ch) => {
                    new.forget_channel(ChannelId(ch));
                    old.lagging.retain(|(c, _, _), _| c.0 != ch);
                }
            }
            prop_assert_eq!(new.sent_len(), old.sent.len());
            for (&(p, c), s) in &old.sent {
                prop_assert_eq!(new.books.get(&c).and_then(|b| b.sent_by(p)), Some(*s));
            }
            for ch in 0..2 {
                let with_lag = old.lagging.iter().filter(|(k, n)| k.0 .0 == ch && **n > 0).count();
                prop_assert_eq!(new.lagging_on(ChannelId(ch)), with_lag);
                for p in 0..6 {
                    for c in 0..6 {
                        let want = old.lagging.get(&(ChannelId(ch), NodeId(p), NodeId(c))).copied().unwrap_or(0);
                        prop_assert_eq!(new.lag(ChannelId(ch), NodeId(p), NodeId(c)), want);
                    }
                }
            }
            prop_assert!(new.books.values().all(|b| !b.is_empty()), "no empty books kept");
        }
    }
}
