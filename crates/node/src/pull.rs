//! Lazy links (D3: flooding with duplicate elimination on the top-level mesh, and
//! repair for peers): a parent pushes no blocks to a lazy child but announces the
//! highest seq it holds (`Have`) every `have_interval_ms`; the child asks (`Want`)
//! for a block announced `pull_delay_ms` ago that its push parent still has not
//! delivered — so a block reaches every node of a c-connected mesh while the push
//! tree is broken, and in steady state each node receives it about once.

use crate::node::Node;
use std::collections::{BTreeMap, VecDeque};
use tiercast_proto::{ChannelId, Feed, Message, NodeId, Timestamp, MAX_WANT_SEQS};

const _: () = assert!(WANT_PER_TICK <= MAX_WANT_SEQS);

/// Announcements kept per channel.
const HEARD_MAX: usize = 32;
/// Seqs looked at behind an announced one (about 3 s of a 2 Mbit/s stream in
/// 16 KiB blocks: older ones would miss their playout anyway).
const PULL_WINDOW: u64 = 48;
/// Most seqs asked for per lazy round (a repair must not flood the parent).
const WANT_PER_TICK: usize = 16;

/// What a node heard from its lazy parents and asked of them, for one channel.
#[derive(Clone, Debug, Default)]
pub struct Pull {
    /// (when heard, highest seq announced, by whom), oldest first.
    heard: VecDeque<(Timestamp, u64, NodeId)>,
    /// Seq → when it was last asked for, and how many times.
    asked: BTreeMap<u64, (Timestamp, u32)>,
    /// Lazy parent → the highest seq it announced: a repair is spread over every
    /// parent that holds it (one parent's repair budget is about one stream),
    /// and a seq asked again goes to the next holder (the last may have refused).
    announced: BTreeMap<NodeId, u64>,
    /// Blocks asked for, and blocks that came back.
    pub wants_sent: u64,
    pub pulled: u64,
}

impl Pull {
    fn hear(&mut self, now: Timestamp, highest: u64, from: NodeId) {
        if self.heard.len() >= HEARD_MAX {
            self.heard.pop_front();
        }
        self.heard.push_back((now, highest, from));
        let a = self.announced.entry(from).or_insert(highest);
        *a = (*a).max(highest);
    }

    /// Who is asked for `seq` on its `tries`-th ask: the holders of it in turn
    /// (`by`, who announced the newest ripe seq, when none is known to).
    fn holder(&self, seq: u64, tries: u32, by: NodeId) -> NodeId {
        let holders = || self.announced.iter().filter(|(_, h)| **h >= seq);
        match holders().count() {
            0 => by,
            n => {
                let pick = (seq as usize).wrapping_add(tries as usize) % n;
                holders().nth(pick).map_or(by, |(id, _)| *id)
            }
        }
    }

    /// The highest seq announced at least `delay_us` ago, and who announced it;
    /// older announcements are folded into it.
    fn ripe(&mut self, now: Timestamp, delay_us: u64) -> Option<(u64, NodeId)> {
        let ripe_count = self
            .heard
            .iter()
            .take_while(|(t, _, _)| now.saturating_since(*t) >= delay_us)
            .count();
        let best = self
            .heard
            .iter()
            .take(ripe_count)
            .max_by_key(|(_, h, _)| *h)
            .copied()?;
        // Keep the best ripe one (it stays ripe) and everything not yet ripe.
        self.heard.drain(..ripe_count);
        self.heard.push_front(best);
        Some((best.1, best.2))
    }
}

fn ch_refused(stats: &mut crate::node::NodeStats) {
    stats.repairs_refused += 1;
}

impl Node {
    pub(crate) fn has_lazy_links(&self) -> bool {
        self.channels
            .values()
            .any(|c| c.children.has_lazy() || c.parents.iter().any(|(_, l)| l.feed == Feed::Lazy))
    }

    /// A lazy parent announced what it holds.
    pub(crate) fn on_have(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        highest: u64,
    ) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            self.invalid(from, "have", "channel not carried");
            return;
        };
        if !ch.parents.contains(from) {
            self.invalid(from, "have", "sender is not a parent");
            return;
        }
        ch.pull.hear(now, highest, from);
    }

    /// A child asks for blocks it misses; those still buffered are sent.
    pub(crate) fn on_want(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        seqs: Vec<u64>,
    ) {
        let Some(ch) = self.channels.get(&channel) else {
            self.invalid(from, "want", "channel not carried");
            return;
        };
        if !ch.children.nodes.contains_key(&from) {
            self.invalid(from, "want", "sender is not a child");
            return;
        }
        if seqs.len() > MAX_WANT_SEQS {
            self.invalid(from, "want", "too many seqs");
            return;
        }
        let blocks: Vec<_> = seqs
            .iter()
            .filter_map(|s| ch.buffer.get(*s).cloned())
            .collect();
        for b in blocks {
            if !self.take_repair_tokens(now, b.wire_len() as f64) {
                ch_refused(&mut self.stats);
                break;
            }
            self.send_block_to_child(now, channel, from, b);
        }
    }

    /// The repair budget: `repair_share` of the declared uplink, at most a
    /// second's worth saved up. True when `bytes` may be sent now.
    fn take_repair_tokens(&mut self, now: Timestamp, bytes: f64) -> bool {
        if self.cfg.uplink_kbps == 0 {
            return true;
        }
        let rate = f64::from(self.cfg.uplink_kbps) * 1000.0 / 8.0 * self.cfg.repair_share;
        let (tokens, at) = self.repair_tokens;
        let refilled = (tokens + rate * now.saturating_since(at) as f64 / 1e6).min(rate);
        if refilled < bytes {
            self.repair_tokens = (refilled, now);
            return false;
        }
        self.repair_tokens = (refilled - bytes, now);
        true
    }

    /// Every `have_interval_ms`: announce to lazy children, ask lazy parents.
    pub(crate) fn pull_tick(&mut self, now: Timestamp) {
        // (At least once a heartbeat: `handle_timeout` runs it whenever it is due.)
        self.drop_overdue_parents(now);
        let delay_us = self.cfg.pull_delay_ms.saturating_mul(1000);
        let mut out: Vec<(NodeId, Message)> = Vec::new();
        for (id, ch) in self.channels.iter_mut() {
            let channel = *id;
            if let Some(highest) = ch.buffer.highest_seq() {
                for (child, link) in ch.children.nodes.iter_mut() {
                    if link.feed == Feed::Lazy && link.have_sent.is_none_or(|h| h < highest) {
                        link.have_sent = Some(highest);
                        out.push((*child, Message::Have { channel, highest }));
                    }
                }
            }
            let Some((announced, by)) = ch.pull.ripe(now, delay_us) else {
                continue;
            };
            if !ch.parents.contains(by) {
                continue;
            }
            // Pull a gap only: below the highest seq this node holds (later blocks
            // came, this one did not) — or anything announced when no push parent
            // has delivered for a whole pull delay (the push tree is broken).
            let pushed_at = ch
                .parents
                .iter()
                .filter(|(_, l)| l.feed != Feed::Lazy)
                .filter_map(|(_, l)| l.last_block_at)
                .max();
            let stalled = pushed_at.is_none_or(|t| now.saturating_since(t) >= delay_us);
            let top = match ch.buffer.highest_seq() {
                Some(h) if !stalled => announced.min(h.saturating_sub(1)),
                _ => announced,
            };
            // From the first block this node held (or just behind the announced
            // one when it holds none), never more than a window back.
            let floor = ch
                .buffer
                .first_seq()
                .unwrap_or(announced.saturating_sub(2))
                .max(announced.saturating_sub(PULL_WINDOW));
            ch.pull.asked.retain(|s, _| *s >= floor);
            let parents = &ch.parents;
            ch.pull.announced.retain(|id, _| parents.contains(*id));
            let mut wants: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
            let mut asked = 0;
            for s in floor..=top {
                if asked >= WANT_PER_TICK {
                    break;
                }
                if ch.buffer.get(s).is_some() {
                    continue;
                }
                let (last, tries) = ch.pull.asked.get(&s).copied().unwrap_or((now, 0));
                if tries > 0 && now.saturating_since(last) < delay_us {
                    continue;
                }
                ch.pull.asked.insert(s, (now, tries.saturating_add(1)));
                wants
                    .entry(ch.pull.holder(s, tries, by))
                    .or_default()
                    .push(s);
                asked += 1;
            }
            ch.pull.wants_sent += asked as u64;
            for (to, seqs) in wants {
                out.push((to, Message::Want { channel, seqs }));
            }
        }
        for (to, msg) in out {
            self.send(to, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Node, NodeConfig};
    use bytes::Bytes;
    use tiercast_proto::{
        Block, ChannelDesc, ChannelId, Feed, Message, NodeId, NodeRole, PeerFeed, PeerInfo,
        SubstreamSet, Timestamp, COORDINATOR_ID,
    };

    const CH: ChannelId = ChannelId(1);

    fn feed(id: u32, feed: Feed) -> PeerFeed {
        PeerFeed {
            peer: PeerInfo {
                id: NodeId(id),
                addr: String::new(),
                http_addr: String::new(),
            },
            feed,
        }
    }

    fn block(seq: u64) -> Message {
        // 2 KB: forty of them exceed a second of a 1000 kbps repair share.
        Message::Block(Block::new(
            CH,
            seq,
            Timestamp(seq),
            false,
            Bytes::from(vec![0u8; 2000]),
        ))
    }

    fn sent(n: &mut Node) -> Vec<(NodeId, Message)> {
        std::iter::from_fn(|| n.poll_transmit())
            .map(|t| (t.to, t.msg))
            .collect()
    }

    /// A peer with a push parent (node 5, all substreams) and a lazy parent (node 6).
    fn peer() -> Node {
        peer_with_lazy(&[6])
    }

    /// A peer with a push parent (node 5, all substreams) and these lazy parents.
    fn peer_with_lazy(lazy: &[u32]) -> Node {
        let cfg = NodeConfig {
            id: NodeId(9),
            role: NodeRole::Peer,
            uplink_kbps: 1000,
            verify_blocks: false,
            ..NodeConfig::default()
        };
        let mut n = Node::new(cfg, Timestamp::ZERO);
        let desc = ChannelDesc {
            id: CH,
            name: "live".into(),
            public_key: [0; 32],
        };
        let all = SubstreamSet::all(4).unwrap();
        let mut parents = vec![feed(5, Feed::Substreams(all))];
        parents.extend(lazy.iter().map(|l| feed(*l, Feed::Lazy)));
        n.handle_message(
            Timestamp::ZERO,
            COORDINATOR_ID,
            Message::PeerAssign {
                channel: desc,
                parents,
            },
        );
        for p in std::iter::once(5).chain(lazy.iter().copied()) {
            n.handle_message(
                Timestamp::ZERO,
                NodeId(p),
                Message::LoginAccepted { channel: CH },
            );
        }
        let logins: Vec<(NodeId, Feed)> = sent(&mut n)
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Login { feed, .. } => Some((to, feed)),
                _ => None,
            })
            .collect();
        let mut expected = vec![(NodeId(5), Feed::Substreams(all))];
        expected.extend(lazy.iter().map(|l| (NodeId(*l), Feed::Lazy)));
        assert_eq!(logins, expected);
        n
    }

    /// Seqs asked of each lazy parent.
    fn wants_by(n: &mut Node) -> std::collections::BTreeMap<u32, Vec<u64>> {
        let mut by = std::collections::BTreeMap::<u32, Vec<u64>>::new();
        for (to, m) in sent(n) {
            if let Message::Want { seqs, .. } = m {
                by.entry(to.0).or_default().extend(seqs);
            }
        }
        by
    }

    #[test]
    fn a_broken_push_parent_is_repaired_from_every_lazy_parent_and_a_seq_asked_again_goes_to_the_next(
    ) {
        let mut n = peer_with_lazy(&[6, 7]);
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        for s in 0..4u64 {
            n.handle_message(t(10), NodeId(5), block(s));
        }
        // The push parent falls silent; both lazy parents hold up to 11.
        for l in [6, 7] {
            n.handle_message(
                t(20),
                NodeId(l),
                Message::Have {
                    channel: CH,
                    highest: 11,
                },
            );
        }
        n.handle_timeout(t(1100));
        let first = wants_by(&mut n);
        let (six, seven) = (first[&6].clone(), first[&7].clone());
        assert!(!six.is_empty() && !seven.is_empty(), "spread: {first:?}");
        let mut all: Vec<u64> = six.iter().chain(&seven).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (4..=11).collect::<Vec<_>>(),
            "each missing seq asked once"
        );
        // Nothing came back: after the delay each seq goes to the other holder.
        n.handle_timeout(t(2200));
        let again = wants_by(&mut n);
        assert_eq!(again[&6], seven, "6 is asked what 7 did not send");
        assert_eq!(again[&7], six, "7 is asked what 6 did not send");
    }

    fn wants(n: &mut Node) -> Vec<u64> {
        sent(n)
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Want { seqs, .. } if to == NodeId(6) => Some(seqs),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn a_gap_announced_by_a_lazy_parent_is_pulled_once_after_the_delay() {
        let mut n = peer();
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        for s in [0u64, 1, 3, 4] {
            n.handle_message(t(10), NodeId(5), block(s));
        }
        n.handle_message(
            t(20),
            NodeId(6),
            Message::Have {
                channel: CH,
                highest: 4,
            },
        );
        n.handle_timeout(t(200));
        assert!(wants(&mut n).is_empty(), "not before the pull delay");
        n.handle_timeout(t(1100));
        assert_eq!(
            wants(&mut n),
            vec![2],
            "only the gap, not what push parents bring"
        );
        n.handle_timeout(t(1300));
        assert!(wants(&mut n).is_empty(), "not asked again within the delay");
        n.handle_message(t(1350), NodeId(6), block(2));
        assert_eq!(n.channel(CH).unwrap().pull.pulled, 1);
        n.handle_timeout(t(2500));
        assert!(wants(&mut n).is_empty(), "nothing missing any more");
    }

    #[test]
    fn a_parent_answers_wants_within_its_repair_budget_and_announces_to_lazy_children() {
        let mut n = peer();
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        n.handle_message(
            t(0),
            NodeId(7),
            Message::Login {
                channel: CH,
                from_seq: None,
                feed: Feed::Lazy,
            },
        );
        for s in 0..40u64 {
            n.handle_message(t(1), NodeId(5), block(s));
        }
        sent(&mut n);
        n.handle_timeout(t(200));
        let haves: Vec<u64> = sent(&mut n)
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Have { highest, .. } if to == NodeId(7) => Some(highest),
                _ => None,
            })
            .collect();
        assert_eq!(haves, vec![39]);
        // 1000 kbps × 0.2 = 25 000 bytes/s of repair; a second saved up at most.
        n.handle_message(
            t(5000),
            NodeId(7),
            Message::Want {
                channel: CH,
                seqs: (0..40).collect(),
            },
        );
        let answered = sent(&mut n).iter().filter(|(_, m)| m.is_block()).count();
        assert!(
            answered > 0 && answered < 40,
            "bounded by the budget: {answered}"
        );
        assert_eq!(n.stats().repairs_refused, 1);
        // A node that is not a child is not served.
        n.handle_message(
            t(9000),
            NodeId(8),
            Message::Want {
                channel: CH,
                seqs: vec![1],
            },
        );
        assert!(sent(&mut n).iter().all(|(_, m)| !m.is_block()));
    }
}
