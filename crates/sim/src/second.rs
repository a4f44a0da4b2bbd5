//! The scenario's second channel (C9: a node on several channels has its
//! uplink shared by their managers): `[second_stream]` names a second channel
//! the origin announces and cuts at the same rate; the crowds with
//! `both_channels` watch it too, so their uplink is booked once for both
//! overlays (and lent between them, `strategy.uplink_lending`). Blocks mode
//! only. Kept apart from the first channel's books: its blocks are counted per
//! viewer here, for its own continuity in metrics.json (`channels`); every
//! other figure is the first channel's (the network totals count both).
//! With `playout_stage`, a peer's blocks of this channel go through a playout
//! stage of their own (a real peer runs one per channel) and count as the
//! first channel's do (`playout_books.rs`); its counters are not in `playout`.
//! A scenario without it runs exactly as before.

use crate::blocks::{tally_blocks, Ingest};
use crate::playout::{SimBlock, ViewerPlayout};
use crate::scenario::Scenario;
use crate::viewer::{Mark, ViewerStats};
use crate::world::Simulation;
use serde::Serialize;
use std::collections::BTreeMap;
use tiercast_node::Node;
use tiercast_proto::{Block, ChannelDesc, ChannelId, Message, NodeId, Timestamp};

pub(crate) struct SecondChannel {
    pub name: String,
    /// Its id, once the origin's announce was accepted.
    pub id: Option<ChannelId>,
    pub ingest: Ingest,
    /// Per viewer (index) watching it: its blocks of this channel.
    pub views: BTreeMap<u32, ViewerStats>,
    /// Per viewer (index), with `playout_stage`: its stage for this channel.
    pub playouts: BTreeMap<u32, ViewerPlayout>,
    pub viewers: u64,
    pub expected: f64,
    pub delivered: f64,
    pub watch_denied: u64,
}

impl SecondChannel {
    pub fn new(sc: &Scenario) -> Option<Self> {
        let s = sc.second_stream.as_ref()?;
        Some(SecondChannel {
            name: s.channel.clone(),
            id: None,
            ingest: Ingest::new(sc),
            views: BTreeMap::new(),
            playouts: BTreeMap::new(),
            viewers: 0,
            expected: 0.0,
            delivered: 0.0,
            watch_denied: 0,
        })
    }
}

/// One channel's figures (metrics.json `channels`, with a second channel only).
#[derive(Clone, Debug, Serialize)]
pub struct ChannelFigures {
    pub channel: String,
    pub viewers: u64,
    pub blocks_expected: u64,
    pub blocks_missed: u64,
    pub continuity_index: f64,
    /// Watches of this channel refused or turned away (told to retry).
    pub watch_denied: u64,
    /// At the end: the uplink this channel borrows from the others on the
    /// nodes they share, and what it lends them (bps, summed; C9's lending).
    pub uplink_borrowed_bps_end: u64,
    pub uplink_lent_bps_end: u64,
}

impl ChannelFigures {
    /// From blocks (expected, delivered) and (borrowed, lent) bps.
    fn new(
        channel: &str,
        viewers: u64,
        (expected, delivered): (f64, f64),
        watch_denied: u64,
        (borrowed, lent): (u64, u64),
    ) -> Self {
        ChannelFigures {
            channel: channel.to_string(),
            viewers,
            blocks_expected: expected.round() as u64,
            blocks_missed: (expected - delivered).round() as u64,
            continuity_index: if expected > 0.0 {
                delivered / expected
            } else {
                0.0
            },
            watch_denied,
            uplink_borrowed_bps_end: borrowed,
            uplink_lent_bps_end: lent,
        }
    }
}

impl Simulation {
    /// Whether `channel` is the second channel.
    pub(crate) fn is_second(&self, channel: ChannelId) -> bool {
        self.second.as_ref().is_some_and(|s| s.id == Some(channel))
    }

    /// A block message of the second channel (not in the first's counters).
    pub(crate) fn second_block_msg(&self, msg: &Message) -> bool {
        matches!(msg, Message::Block(b) if self.is_second(b.channel))
    }

    /// Whether `name` is the second channel's.
    pub(crate) fn is_second_named(&self, name: &str) -> bool {
        self.second.as_ref().is_some_and(|s| s.name == name)
    }

    /// The origin announced the second channel: its ingest starts.
    pub(crate) fn second_ready(&mut self, desc: &ChannelDesc) {
        let now = self.now;
        let Some(s) = self.second.as_mut().filter(|s| s.name == desc.name) else {
            return;
        };
        s.id = Some(desc.id);
        if s.ingest.start.is_none() {
            s.ingest.start = Some(now);
            self.queue.push(now, crate::queue::Ev::IngestSecond);
        }
    }

    /// The origin announces the second channel (at its creation).
    pub(crate) fn announce_second(&mut self, origin: u32) {
        let Some(name) = self.second.as_ref().map(|s| s.name.clone()) else {
            return;
        };
        let key = self.signing.public_key();
        if let Some(n) = self.slots[origin as usize].node.as_mut() {
            n.announce(&name, key);
        }
        self.drain_node(origin);
    }

    /// The origin cuts the second channel's next block.
    pub(crate) fn ingest_second(&mut self) {
        let origin = self.origin;
        let alive = self.is_alive(origin);
        let now = self.now;
        let Some(s) = self.second.as_mut() else {
            return;
        };
        let Some(channel) = s.id else {
            return;
        };
        let seq = s.ingest.next_seq;
        s.ingest.next_seq += 1;
        let next = s.ingest.origin_time(s.ingest.next_seq);
        let mut block = Block::new(
            channel,
            seq,
            Timestamp(now),
            seq.is_multiple_of(s.ingest.keyframe_every),
            s.ingest.payload.clone(),
        );
        self.signing.sign(&mut block);
        self.queue.push(next, crate::queue::Ev::IngestSecond);
        if !alive {
            return;
        }
        if let Some(n) = self.slots[origin as usize].node.as_mut() {
            n.ingest_block(Timestamp(now), block);
        }
        self.drain_node(origin);
    }

    /// Viewer `id` (just arrived) watches the second channel too.
    pub(crate) fn watch_second(&mut self, id: u32) {
        let vi = id - self.first_viewer;
        let now = self.now;
        let Some(s) = self.second.as_mut() else {
            return;
        };
        let name = s.name.clone();
        s.views.insert(vi, ViewerStats::new(now, 0));
        s.playouts.remove(&vi);
        s.viewers += 1;
        if let Some(n) = self.slots[id as usize].node.as_mut() {
            n.watch(Timestamp(now), &name);
        }
        self.drain_node(id);
    }

    /// A leaving viewer stops watching the second channel (if it did).
    pub(crate) fn unwatch_second(&mut self, id: u32, node: &mut Node) {
        let vi = id - self.first_viewer;
        let Some(s) = self.second.as_ref().filter(|s| s.views.contains_key(&vi)) else {
            return;
        };
        node.unwatch(Timestamp(self.now), &s.name);
    }

    /// A block of the second channel was stored at node `id` (counted at a
    /// viewer watching it).
    pub(crate) fn second_block(&mut self, id: u32, block: &Block) {
        let Some(vi) = id.checked_sub(self.first_viewer) else {
            return;
        };
        let now = self.now;
        let deadline = self.sc.playout_deadline_ms * 1000;
        let Some(v) = self.second.as_mut().and_then(|s| s.views.get_mut(&vi)) else {
            return;
        };
        match v.mark(block.seq) {
            Mark::New => {}
            Mark::Duplicate => {
                let label = self.label(NodeId(id));
                self.checker.record(
                    "duplicate_block",
                    format!(
                        "block {} of the second channel counted twice at viewer {label} (t={:.6}s)",
                        block.seq,
                        now as f64 / 1e6
                    ),
                );
                return;
            }
            Mark::Resent | Mark::TooOld => return,
        }
        v.last_new_at = now;
        if v.first_at == crate::viewer::NONE {
            v.first_at = now;
        }
        let lag = now.saturating_sub(block.origin_time_us);
        if let Some(cfg) = self.playout_cfg.as_ref() {
            let b = SimBlock {
                seq: block.seq,
                keyframe: block.is_keyframe(),
                origin_time_us: block.origin_time_us,
            };
            let cfg = cfg.clone();
            self.second_played(vi, now, |p, t, out| p.push(t, b, out), Some(cfg));
        } else if lag <= deadline && block.seq >= v.first_seq {
            v.on_time += 1;
        }
    }

    /// Viewer `vi`'s stage for the second channel is driven to `t` by `step`
    /// (created from `cfg` if given); what it played in time is counted on time.
    fn second_played(
        &mut self,
        vi: u32,
        t: u64,
        step: impl FnOnce(&mut ViewerPlayout, u64, &mut Vec<(u64, SimBlock)>),
        cfg: Option<tiercast_node::PlayoutConfig>,
    ) {
        let deadline = self.sc.playout_deadline_ms * 1000;
        let Some(s) = self.second.as_mut() else {
            return;
        };
        let p = match (s.playouts.contains_key(&vi), cfg) {
            (true, _) => s.playouts.get_mut(&vi),
            (false, Some(cfg)) => Some(
                s.playouts
                    .entry(vi)
                    .or_insert_with(|| ViewerPlayout::new(cfg, None)),
            ),
            (false, None) => None,
        };
        let Some(p) = p else {
            return;
        };
        let mut out = std::mem::take(&mut self.playout_scratch);
        step(p, t, &mut out);
        p.keep_on_time(&mut out, deadline);
        if let Some(v) = s.views.get_mut(&vi) {
            v.on_time += out.len() as u64;
        }
        out.clear();
        self.playout_scratch = out;
    }

    /// A viewer was refused (or turned away from) the second channel.
    pub(crate) fn second_denied(&mut self) {
        if let Some(s) = self.second.as_mut() {
            s.watch_denied += 1;
        }
    }

    /// Viewer `id` was sent to a relay for the second channel (a new session).
    pub(crate) fn second_session(&mut self, id: u32) {
        let vi = id - self.first_viewer;
        if let Some(v) = self.second.as_mut().and_then(|s| s.views.get_mut(&vi)) {
            v.new_session();
        }
    }

    /// Closes viewer `vi`'s books on the second channel at `t`.
    pub(crate) fn finalize_second(&mut self, vi: usize, t: u64) {
        let deadline = self.sc.playout_deadline_ms * 1000;
        let grace = self.sc.startup_grace_ms * 1000;
        self.second_played(vi as u32, t, |p, t, out| p.catch_up(t, out), None);
        let plays_out = self.plays_out();
        let Some(s) = self.second.as_mut() else {
            return;
        };
        let Some(mut v) = s.views.remove(&(vi as u32)) else {
            return;
        };
        v.end_at = t;
        let stage = s.playouts.remove(&(vi as u32));
        let played = plays_out.then_some(stage.as_ref());
        let tally = tally_blocks(&s.ingest, &v, t, (deadline, grace), None, played);
        s.expected += tally.expected as f64;
        s.delivered += tally.received as f64;
    }

    /// Both channels' figures, when there is a second one.
    pub(crate) fn channel_figures(&self) -> Option<Vec<ChannelFigures>> {
        let s = self.second.as_ref()?;
        let m = &self.metrics;
        Some(vec![
            ChannelFigures::new(
                &self.sc.stream.channel,
                m.viewers_arrived,
                (m.expected, m.delivered),
                m.watch_denied,
                self.lending_of(self.channel),
            ),
            ChannelFigures::new(
                &s.name,
                s.viewers,
                (s.expected, s.delivered),
                s.watch_denied,
                self.lending_of(s.id),
            ),
        ])
    }

    /// What `channel` borrows and lends on the shared nodes now (bps).
    fn lending_of(&self, channel: Option<ChannelId>) -> (u64, u64) {
        let Some(c) = channel else {
            return (0, 0);
        };
        let ledger = self.coord.uplink_ledger();
        let mut out = (0u64, 0u64);
        for n in ledger.shared_nodes() {
            let (Some(share), Some(base)) = (ledger.share(n, c), ledger.base_share(n, c)) else {
                continue;
            };
            out.0 += share.saturating_sub(base);
            out.1 += base.saturating_sub(share);
        }
        out
    }
}
