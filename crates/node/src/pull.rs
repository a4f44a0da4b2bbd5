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
    /// Seq → when it was last asked for.
    asked: BTreeMap<u64, Timestamp>,
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
            let mut seqs = Vec::new();
            for s in floor..=top {
                if seqs.len() >= WANT_PER_TICK {
                    break;
                }
                if ch.buffer.get(s).is_some() {
                    continue;
                }
                let recently = ch
                    .pull
                    .asked
                    .get(&s)
                    .is_some_and(|t| now.saturating_since(*t) < delay_us);
                if !recently {
                    ch.pull.asked.insert(s, now);
                    seqs.push(s);
                }
            }
            if !seqs.is_empty() {
                ch.pull.wants_sent += seqs.len() as u64;
                out.push((by, Message::Want { channel, seqs }));
            }
        }
        for (to, msg) in out {
            self.send(to, msg);
        }
    }
}
