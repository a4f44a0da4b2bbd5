//! Middle level (D5): erasure-coded k+n substreams — any k of a group's k+n
//! shards rebuild it; the redundancy n is chosen per cluster from its network
//! quality (the loss measured here and reported in heartbeats).
//!
//! A coded link ([`Feed::Coded`]) carries some of the k originals of every group
//! of k consecutive blocks (as ordinary blocks) and some of its n recovery shards
//! (as [`Message::Shard`](tiercast_proto::Message::Shard)s). What is coded is a block's *body* —
//! `origin_time_us (8, LE) ‖ flags (1) ‖ signature (64) ‖ payload` — so a
//! rebuilt original is a whole signed [`Block`] again, checked against the origin
//! key like any other before it is stored, forwarded and played.
//!
//! - A parent with coded children runs one [`ErasureEncoder`] per (k, n) in use:
//!   every block it stores (from a parent, ingest, a pull or a rebuild) goes in,
//!   and when a group's k blocks are in, each coded child gets the recovery
//!   shards of its mask.
//! - A node with coded parents keeps a decoder per recent group
//!   ([`window`]): stored blocks and the parents' shards go in, and a group that
//!   becomes whole gives back its missing blocks, which are stored and forwarded.
//! - The loss of the coded links is counted as groups close (`shards_expected`,
//!   `shards_received`, heartbeat fields of D8).

mod encode;
mod shard;
pub mod window;

use crate::node::Node;
use crate::parents::Parents;
use crate::strategy::erasure::{ErasureEncoder, ErasureParams};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;
use tiercast_proto::block::SIGNATURE_LEN;
use tiercast_proto::{Block, ChannelId, Feed, NodeId, Timestamp};
use window::{Offer, Window};

pub use window::DECODE_WINDOW_GROUPS;

/// Most distinct (k, n) layouts a node encodes for at once.
pub const MAX_ENCODERS: usize = 8;
/// Bytes of a block body before the payload: origin time, flags, signature.
pub const BODY_HEAD_LEN: usize = 8 + 1 + SIGNATURE_LEN;
/// Upper bound of a `Shard` frame's bytes around its data (message tag, channel,
/// group, k, n, index, data length), for the byte counters.
pub const SHARD_HEADER_LEN: usize = 24;

/// The coded form of a block: `origin_time_us (LE) ‖ flags ‖ signature ‖ payload`.
pub fn block_body(block: &Block) -> Bytes {
    let mut out = BytesMut::with_capacity(BODY_HEAD_LEN + block.payload.len());
    out.put_u64_le(block.origin_time_us);
    out.put_u8(block.flags);
    out.put_slice(&block.signature);
    out.put_slice(&block.payload);
    out.freeze()
}

/// The block `seq` of `channel` from its coded body; `None` when too short.
pub fn block_from_body(channel: ChannelId, seq: u64, body: &Bytes) -> Option<Block> {
    if body.len() < BODY_HEAD_LEN {
        return None;
    }
    let origin_time_us = u64::from_le_bytes(body[..8].try_into().ok()?);
    let flags = body[8];
    let signature: [u8; SIGNATURE_LEN] = body[9..BODY_HEAD_LEN].try_into().ok()?;
    Some(Block {
        channel,
        seq,
        origin_time_us,
        flags,
        payload: body.slice(BODY_HEAD_LEN..),
        signature,
    })
}

/// What a node keeps of the middle level for one channel.
#[derive(Debug, Default)]
pub struct Middle {
    /// One encoder per (k, n) of the coded children.
    encoders: BTreeMap<(u8, u8), ErasureEncoder>,
    /// Decoding (and counting), while a parent link is coded.
    window: Option<Window>,
    /// Since the node joined the channel (heartbeat fields, D8).
    pub shards_expected: u64,
    pub shards_received: u64,
    /// Groups in which at least one block was rebuilt, and the blocks rebuilt.
    pub groups_rebuilt: u64,
    pub blocks_rebuilt: u64,
}

/// The decoding layout: that of the first coded parent with recovery shards,
/// else of any coded parent (n = 0: nothing to rebuild, but the loss the
/// coordinator sizes n from is still counted).
fn layout_of(parents: &Parents) -> Option<(u8, u8)> {
    let coded = || parents.iter().filter_map(|(_, l)| l.feed.coded());
    coded()
        .find(|c| c.n >= 1)
        .or_else(|| coded().next())
        .map(|c| (c.k, c.n))
}

/// Coded parents of layout (k, n), with their masks.
fn coded_masks(parents: &Parents, (k, n): (u8, u8)) -> Vec<(NodeId, u64)> {
    parents
        .iter()
        .filter_map(|(id, l)| match l.feed {
            Feed::Coded(c) if (c.k, c.n) == (k, n) => Some((*id, c.mask)),
            _ => None,
        })
        .collect()
}

impl Middle {
    /// The decoding layout in use, if any.
    pub fn decoding(&self) -> Option<ErasureParams> {
        self.window.as_ref().map(Window::params)
    }

    /// Groups held open for decoding.
    pub fn open_groups(&self) -> usize {
        self.window.as_ref().map_or(0, Window::open_groups)
    }

    /// Layouts encoded for.
    pub fn encoding(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        self.encoders.keys().copied()
    }

    /// Follows the parents' feeds: a new layout starts a new window (the groups
    /// open in the old one are dropped uncounted); no coded parent, no window.
    fn sync(&mut self, parents: &Parents) -> Option<(u8, u8)> {
        let Some((k, n)) = layout_of(parents) else {
            self.window = None;
            return None;
        };
        let params = ErasureParams::new(usize::from(k), usize::from(n)).ok()?;
        if self.decoding() != Some(params) {
            self.window = Some(Window::new(params));
        }
        let w = self.window.as_mut()?;
        w.retain_parents(|id| {
            parents
                .get(id)
                .and_then(|l| l.feed.coded())
                .is_some_and(|c| (c.k, c.n) == (k, n))
        });
        Some((k, n))
    }

    /// Moves the window to `group`, counting the loss of the groups it closes.
    fn advance(&mut self, parents: &Parents, layout: (u8, u8), group: u64) {
        if let Some(w) = self.window.as_mut().filter(|w| w.moves_to(group)) {
            // (Looked up only when groups close: this runs for every block.)
            let coded = coded_masks(parents, layout);
            let (expected, received) = w.advance(group, &coded);
            self.shards_expected += expected;
            self.shards_received += received;
        }
    }

    /// Block `seq` arrived pushed on coded link `from` (before the duplicate check:
    /// a block that came another way first still arrived on the link).
    pub(crate) fn block_pushed(&mut self, parents: &Parents, from: NodeId, seq: u64) {
        let Some(layout) = self.sync(parents) else {
            return;
        };
        let Some(c) = parents.get(from).and_then(|l| l.feed.coded()).copied() else {
            return;
        };
        if (c.k, c.n) != layout {
            return;
        }
        let k = u64::from(c.k);
        let group = seq / k;
        self.advance(parents, layout, group);
        if let Some(w) = self.window.as_mut() {
            let has_recovery = c.recovery().next().is_some();
            w.note_pushed(from, has_recovery, group, (seq % k) as usize);
        }
    }

    /// A block was stored: its body goes to its group's decoder.
    fn block_stored(&mut self, parents: &Parents, block: &Block) -> Option<(u64, Offer)> {
        let layout = self.sync(parents)?;
        let k = u64::from(layout.0);
        let group = block.seq / k;
        self.advance(parents, layout, group);
        let offer = self
            .window
            .as_mut()?
            .offer(group, (block.seq % k) as usize, block_body(block));
        Some((group, offer))
    }
}

impl Node {
    /// After a block was stored (D5): the recovery shards of a group it completes
    /// go to the coded children, and its body to its group's decoder; returns the
    /// blocks that group lets this node rebuild (to be stored in turn).
    pub(crate) fn middle_stored(&mut self, now: Timestamp, block: &Block) -> Vec<Block> {
        self.send_recovery(now, block);
        let channel = block.channel;
        let decoded = self
            .channels
            .get_mut(&channel)
            .and_then(|ch| ch.middle.block_stored(&ch.parents, block));
        match decoded {
            Some((group, Offer::Restored(restored))) => {
                self.rebuilt_blocks(channel, group, restored)
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
