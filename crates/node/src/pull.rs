//! Lazy links (D3: flooding with duplicate elimination on the top-level mesh, and
//! repair for peers): a parent pushes no blocks to a lazy child but announces the
//! highest seq it holds (`Have`) every `have_interval_ms`; the child asks (`Want`)
//! for a block announced `pull_delay_ms` ago that its push parent still has not
//! delivered — so a block reaches every node of a c-connected mesh while the push
//! tree is broken, and in steady state each node receives it about once. A block
//! whose live push parent has not reached its seq yet is on its way, not missing:
//! it is not asked for (with substreams, one slow path is not a gap).
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
            self.foreign_push(now, from, channel);
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
    pub(crate) fn take_repair_tokens(&mut self, now: Timestamp, bytes: f64) -> bool {
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
            // (Only needed once a parent answered a want unmet.)
            let pushed: Vec<(NodeId, u64)> = parents
                .iter()
                .filter(|_| !ch.pull.unmet_seqs.is_empty())
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
                // Not a gap but on its way: the live push parent of its substream
                // has not reached it yet (that path is slower than another
                // substream's). Pulled, it would come twice and spend a holder's
                // uplink on the duplicate (a tight population's top members spent
                // their whole repair budget so, every second).
                let on_its_way = ch.parents.iter().any(|(_, l)| {
                    l.feed != Feed::Lazy
                        && l.feed.pushes(s)
                        && l.state == ParentState::Connected
                        && !l.downgraded
                        && l.last_seq.is_some_and(|h| h < s)
                        && l.last_block_at
                            .is_some_and(|t| now.saturating_since(t) < delay_us)
                });
                if on_its_way {
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
mod tests;
