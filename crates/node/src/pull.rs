//! Lazy links (D3: flooding with duplicate elimination on the top-level mesh, and
//! repair for peers): a parent pushes no blocks to a lazy child but announces the
//! highest seq it holds (`Have`) every `have_interval_ms`; the child asks (`Want`)
//! for a block announced `pull_delay_ms` ago that its push parent still has not
//! delivered — so a block reaches every node of a c-connected mesh while the push
//! tree is broken, and in steady state each node receives it about once.
//!
//! A parent that cannot send what was wanted (not held, or over its repair
//! budget) says so (`WantUnmet`), and the child asks the next holder at its next
//! round instead of waiting out the pull delay; from then on, when no live push
//! parent delivers that seq's substream, the push parents that pushed later seqs
//! are holders too: a peer's push parent holds the whole stream, so when one
//! parent dies and the lazy parent's budget is spent, the others' budgets fill
//! its substreams. (Asked of push parents first, repairs
//! queue behind their booked pushes on tight uplinks: the simulator's loss ×
//! churn continuity fell from 0.96 to 0.59.)

use crate::node::Node;
use crate::parents::ParentState;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
    /// Seq → when it may be asked for again, and how many times it was.
    asked: BTreeMap<u64, (Timestamp, u32)>,
    /// Seqs a parent answered it did not send: asked of the push parents too.
    unmet_seqs: BTreeSet<u64>,
    /// Lazy parent → the highest seq it announced: a repair is spread over every
    /// parent that holds it (one parent's repair budget is about one stream),
    /// and a seq asked again goes to the next holder (the last may have refused).
    announced: BTreeMap<NodeId, u64>,
    /// Blocks asked for, blocks that came back, and seqs a parent said it did
    /// not send (`WantUnmet`).
    pub wants_sent: u64,
    pub pulled: u64,
    pub unmet: u64,
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

    /// Who is asked for `seq` on its `tries`-th ask: the holders of it in turn —
    /// lazy parents that announced it, and the push parents in `pushed` that
    /// pushed it or later (given once a parent answered it unmet and its
    /// substream is orphaned: a peer's push parent holds the whole stream, not
    /// only what it pushes us, so a dead sibling's substream is repaired by every
    /// parent's budget when the lazy one's is spent) — or `by`, who announced the
    /// newest ripe seq, when none is known to.
    fn holder(&self, seq: u64, tries: u32, by: NodeId, pushed: &[(NodeId, u64)]) -> NodeId {
        let holders = || {
            self.announced
                .iter()
                .chain(pushed.iter().map(|(id, h)| (id, h)))
                .filter(|(_, h)| **h >= seq)
        };
        match holders().count() {
            0 => by,
            n => {
                let pick = (seq as usize).wrapping_add(tries as usize) % n;
                holders().nth(pick).map_or(by, |(id, _)| *id)
            }
        }
    }

    /// `seq` was asked for (a block from a push parent may be a repair too).
    pub(crate) fn was_asked(&self, seq: u64) -> bool {
        self.asked.contains_key(&seq)
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
        let held: Vec<_> = seqs
            .iter()
            .map(|s| (*s, ch.buffer.get(*s).cloned()))
            .collect();
        // What cannot be sent now is said at once: the child asks another holder
        // at its next round rather than after a whole pull delay.
        let mut unmet = Vec::new();
        let mut over_budget = false;
        for (seq, b) in held {
            let Some(b) = b else {
                unmet.push(seq);
                continue;
            };
            if over_budget || !self.take_repair_tokens(now, b.wire_len() as f64) {
                if !over_budget {
                    ch_refused(&mut self.stats);
                    over_budget = true;
                }
                unmet.push(seq);
                continue;
            }
            self.send_block_to_child(now, channel, from, b);
        }
        if !unmet.is_empty() {
            self.send(
                from,
                Message::WantUnmet {
                    channel,
                    seqs: unmet,
                },
            );
        }
    }

    /// A parent did not send these wanted seqs: each is due again at the next
    /// round, where it goes to the next holder (its tries are counted).
    pub(crate) fn on_want_unmet(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        seqs: Vec<u64>,
    ) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            self.invalid(from, "want_unmet", "channel not carried");
            return;
        };
        if !ch.parents.contains(from) {
            self.invalid(from, "want_unmet", "sender is not a parent");
            return;
        }
        if seqs.len() > MAX_WANT_SEQS {
            self.invalid(from, "want_unmet", "too many seqs");
            return;
        }
        for s in seqs {
            if let Some((due, _)) = ch.pull.asked.get_mut(&s) {
                *due = (*due).min(now);
                ch.pull.unmet += 1;
                ch.pull.unmet_seqs.insert(s);
            }
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
            ch.pull.unmet_seqs.retain(|s| *s >= floor);
            let parents = &ch.parents;
            ch.pull.announced.retain(|id, _| parents.contains(*id));
            let pushed: Vec<(NodeId, u64)> = parents
                .iter()
                .filter(|(_, l)| l.feed != Feed::Lazy && l.state == ParentState::Connected)
                .filter(|(_, l)| !l.downgraded)
                .filter_map(|(id, l)| Some((*id, l.last_seq?)))
                .collect();
            let mut wants: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
            let mut asked = 0;
            for s in floor..=top {
                if asked >= WANT_PER_TICK {
                    break;
                }
                if ch.buffer.get(s).is_some() {
                    continue;
                }
                let (due, tries) = ch.pull.asked.get(&s).copied().unwrap_or((now, 0));
                if tries > 0 && now < due {
                    continue;
                }
                let again = now.plus_millis(self.cfg.pull_delay_ms);
                // A substream no live push parent delivers (its parent died).
                let orphaned = !ch.parents.iter().any(|(_, l)| {
                    l.feed.pushes(s)
                        && l.state == ParentState::Connected
                        && !l.downgraded
                        && l.last_block_at
                            .is_some_and(|t| now.saturating_since(t) < delay_us)
                });
                let holders_too: &[(NodeId, u64)] = if orphaned && ch.pull.unmet_seqs.contains(&s) {
                    &pushed
                } else {
                    &[]
                };
                ch.pull.asked.insert(s, (again, tries.saturating_add(1)));
                wants
                    .entry(ch.pull.holder(s, tries, by, holders_too))
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

    /// [`peer`] holding seqs 0..40, with node 7 logged in as its lazy child.
    fn peer_serving_lazy_child_7() -> Node {
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
        n
    }

    #[test]
    fn a_parent_answers_wants_within_its_repair_budget_and_announces_to_lazy_children() {
        let mut n = peer_serving_lazy_child_7();
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
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

    #[test]
    fn a_want_the_parent_cannot_meet_is_answered_with_what_it_did_not_send() {
        let mut n = peer_serving_lazy_child_7();
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        // 25 000 bytes of repair a second: about a dozen 2 KB blocks, then the
        // rest is unmet; seq 99 is not held at all.
        let asked: Vec<u64> = (0..40).chain([99]).collect();
        n.handle_message(
            t(5000),
            NodeId(7),
            Message::Want {
                channel: CH,
                seqs: asked.clone(),
            },
        );
        let out = sent(&mut n);
        let served: Vec<u64> = out
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Block(b) => Some(b.seq),
                _ => None,
            })
            .collect();
        let unmet: Vec<u64> = out
            .iter()
            .filter_map(|(to, m)| match m {
                Message::WantUnmet { seqs, .. } if *to == NodeId(7) => Some(seqs.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(!served.is_empty() && served.len() < 40, "{served:?}");
        let mut all: Vec<u64> = served.iter().chain(&unmet).copied().collect();
        all.sort_unstable();
        assert_eq!(all, asked, "every seq is either sent or said unmet");
        assert_eq!(unmet.last(), Some(&99));
        // A want met in full gets no answer besides its blocks.
        n.handle_message(
            t(9000),
            NodeId(7),
            Message::Want {
                channel: CH,
                seqs: vec![1],
            },
        );
        assert!(sent(&mut n)
            .iter()
            .all(|(_, m)| !matches!(m, Message::WantUnmet { .. })));
    }

    #[test]
    fn an_unmet_want_goes_to_the_next_holder_at_the_next_round_not_after_the_delay() {
        let mut n = peer_with_lazy(&[6, 7]);
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        for s in [0u64, 1, 3] {
            n.handle_message(t(10), NodeId(5), block(s));
        }
        for l in [6, 7] {
            n.handle_message(
                t(20),
                NodeId(l),
                Message::Have {
                    channel: CH,
                    highest: 3,
                },
            );
        }
        n.handle_timeout(t(1100));
        let first = wants_by(&mut n);
        let (holder, seqs) = first.iter().next().expect("seq 2 is asked");
        assert_eq!(seqs, &vec![2]);
        n.handle_timeout(t(1300));
        assert!(wants_by(&mut n).is_empty(), "unanswered: wait the delay");
        n.handle_message(
            t(1350),
            NodeId(*holder),
            Message::WantUnmet {
                channel: CH,
                seqs: vec![2],
            },
        );
        n.handle_timeout(t(1500));
        let again = wants_by(&mut n);
        assert_eq!(
            again.values().flatten().collect::<Vec<_>>(),
            vec![&2],
            "asked again at the next round, not after the delay: {again:?}"
        );
        // Push parent 5 has been silent for the delay: the seq's substream is
        // orphaned, so after the unmet answer 5 may be asked too (tries rotate).
        assert!(again.keys().all(|k| [5, 6, 7].contains(k)));
        assert_eq!(n.channel(CH).unwrap().pull.unmet, 1);
        // From a node that is not a parent, the answer is ignored.
        n.handle_message(
            t(1600),
            NodeId(8),
            Message::WantUnmet {
                channel: CH,
                seqs: vec![2],
            },
        );
        n.handle_timeout(t(1700));
        assert!(wants_by(&mut n).is_empty());
        assert_eq!(n.channel(CH).unwrap().pull.unmet, 1);
    }

    #[test]
    fn a_dead_siblings_substream_the_lazy_parent_cannot_send_is_asked_of_the_live_push_parents() {
        // Push parent 5 carries substreams 0 and 1, parent 4 carries 2 and 3 and
        // dies after seq 1; lazy parent 6 announces.
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
        let two = |a, b| Feed::Substreams(SubstreamSet::single(4, a).unwrap().with(b));
        n.handle_message(
            Timestamp::ZERO,
            COORDINATOR_ID,
            Message::PeerAssign {
                channel: desc,
                parents: vec![feed(4, two(2, 3)), feed(5, two(0, 1)), feed(6, Feed::Lazy)],
            },
        );
        for p in [4, 5, 6] {
            n.handle_message(
                Timestamp::ZERO,
                NodeId(p),
                Message::LoginAccepted { channel: CH },
            );
        }
        sent(&mut n);
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        // Seqs 0..16: 5 delivers its substreams throughout, 4 only up to seq 3.
        for s in 0..16u64 {
            let from = if s % 4 < 2 { 5 } else { 4 };
            if from == 5 || s < 4 {
                n.handle_message(t(10), NodeId(from), block(s));
            }
        }
        n.handle_message(
            t(20),
            NodeId(6),
            Message::Have {
                channel: CH,
                highest: 15,
            },
        );
        n.handle_timeout(t(1100));
        let first = wants_by(&mut n);
        assert_eq!(
            first.get(&6),
            Some(&vec![6, 7, 10, 11, 14, 15]),
            "first the lazy parent alone: {first:?}"
        );
        // Its budget is spent: the dead substreams go to the live push parent too.
        n.handle_message(
            t(1150),
            NodeId(6),
            Message::WantUnmet {
                channel: CH,
                seqs: vec![6, 7, 10, 11, 14, 15],
            },
        );
        n.handle_timeout(t(1300));
        let by = wants_by(&mut n);
        let mut all: Vec<u64> = by.values().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, vec![6, 7, 10, 11, 14, 15], "the dead substreams");
        assert!(
            by.contains_key(&5) && by.contains_key(&6),
            "spread over the lazy parent and the live push parent: {by:?}"
        );
        assert!(!by.contains_key(&4), "not the parent that stopped: {by:?}");
        // A repair on a push link counts as pulled.
        let to_five = by[&5].clone();
        for s in &to_five {
            n.handle_message(t(1350), NodeId(5), block(*s));
        }
        assert_eq!(n.channel(CH).unwrap().pull.pulled, to_five.len() as u64);
    }
}
