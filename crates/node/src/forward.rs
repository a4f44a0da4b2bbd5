//! The inbound and outbound sides of the block buffer (V9): blocks from parents are
//! checked (sender is a parent, origin signature valid), deduplicated by seq, stored,
//! and forwarded to every child node; local viewers are served by the driver from
//! the `BlockStored` event. Each child gets what its LOGIN asked for (D3, D4): every
//! block, the blocks of its substreams (`seq mod k`), or none (a lazy link, served
//! by `Want`, see [`crate::pull`]), or the originals of its erasure-coded
//! substreams (D5, with their recovery shards, see [`crate::middle`]).

use crate::buffer::InsertOutcome;
use crate::event::Event;
use crate::node::Node;
use std::collections::VecDeque;
use tiercast_proto::{Block, ChannelId, Feed, Message, NodeId, Timestamp};

impl Node {
    pub(crate) fn on_block(&mut self, now: Timestamp, from: NodeId, block: Block) {
        let channel = block.channel;
        let verify = self.cfg.verify_blocks;
        let memo = verify.then(|| self.cfg.verify_memo.clone()).flatten();
        let Some(ch) = self.channels.get_mut(&channel) else {
            self.invalid(from, "block", "channel not carried");
            return;
        };
        let Some(link) = ch.parents.get_mut(from) else {
            if ch.parents.lately_retired(from, now) {
                // Left a parent we just dropped before our LOGOFF reached it.
                if !(verify && ch.verifier.verify_with(&block, memo.as_ref()).is_err()) {
                    self.stats.blocks_in += 1;
                    self.store_and_forward(now, block);
                }
                return;
            }
            self.foreign_push(now, from, channel);
            self.invalid(from, "block", "sender is not a parent");
            return;
        };
        if verify && ch.verifier.verify_with(&block, memo.as_ref()).is_err() {
            ch.rejected_blocks += 1;
            link.forged_run = link.forged_run.saturating_add(1);
            let report = link.forged_run == crate::parents::FORGED_RUN_REPORTED;
            self.events.push_back(Event::BlockRejected {
                channel,
                from,
                reason: "bad origin signature",
            });
            if report {
                self.report_downgrade(channel, from);
            }
            return;
        }
        link.forged_run = 0;
        link.last_seq = Some(link.last_seq.map_or(block.seq, |s| s.max(block.seq)));
        link.last_block_at = Some(now);
        link.blocks += 1;
        link.downgraded = false;
        let coded = matches!(link.feed, Feed::Coded(c) if c.contains_seq(block.seq));
        let repaired = ch.pull.was_asked(block.seq) && ch.buffer.get(block.seq).is_none();
        if link.feed == Feed::Lazy || repaired {
            ch.pull.pulled += 1;
        }
        if coded {
            ch.middle.block_pushed(&ch.parents, from, block.seq);
        }
        self.stats.blocks_in += 1;
        if self.cfg.role == tiercast_proto::NodeRole::Viewer {
            let limit = self.cfg.max_channels;
            self.continuity
                .block(now, &ch.desc.name, from, block.seq, limit);
        }
        self.store_and_forward(now, block);
    }

    /// The origin's own blocks, cut and signed by its ingest.
    /// Before the coordinator has confirmed an announce (just after a restart), the
    /// block is held (bounded) and stored when the channel is announced.
    pub fn ingest_block(&mut self, now: Timestamp, block: Block) {
        if !self.channels.contains_key(&block.channel) {
            if !self.announce_pending() {
                self.invalid(self.cfg.id, "block", "ingest for a channel not announced");
                return;
            }
            if self.held_ingest.len() >= self.cfg.buffer_blocks {
                self.held_ingest.pop_front();
            }
            self.held_ingest.push_back(block);
            return;
        }
        self.store_and_forward(now, block);
    }

    /// An announced channel the coordinator has not confirmed yet.
    fn announce_pending(&self) -> bool {
        self.announcing.keys().any(|n| {
            self.names
                .get(n)
                .is_none_or(|id| !self.channels.contains_key(id))
        })
    }

    /// Stores the held ingest blocks of a channel just announced; others stay held.
    pub(crate) fn store_held_ingest(&mut self, now: Timestamp, channel: ChannelId) {
        let (mine, rest): (VecDeque<Block>, VecDeque<Block>) =
            std::mem::take(&mut self.held_ingest)
                .into_iter()
                .partition(|b| b.channel == channel);
        self.held_ingest = rest;
        for b in mine {
            self.store_and_forward(now, b);
        }
    }

    /// Stores a block and forwards it to the children whose feed pushes it (not
    /// to a child that started after it: a block repaired late, pushed alone
    /// to a child that joined at the live edge, was a start its player could
    /// not play on from — the tight population's joiners missed the 40 blocks
    /// between it and their first live one); the
    /// middle level (D5, [`crate::middle`]) then sends the recovery shards of a
    /// group it completes, and the blocks its group lets this node rebuild take
    /// the same path.
    pub(crate) fn store_and_forward(&mut self, now: Timestamp, block: Block) {
        let mut queue = VecDeque::from([block]);
        while let Some(block) = queue.pop_front() {
            let channel = block.channel;
            let Some(ch) = self.channels.get_mut(&channel) else {
                continue;
            };
            let highest = ch.buffer.highest_seq();
            if ch.buffer.insert(block.clone()) != InsertOutcome::Stored {
                continue;
            }
            let seq = block.seq;
            if highest.is_none_or(|h| seq > h) {
                ch.advanced_at = Some(now);
            }
            let children: Vec<NodeId> = ch
                .children
                .nodes
                .iter()
                .filter(|(_, l)| l.feed.pushes(seq) && l.starts_at.is_none_or(|s| seq >= s))
                .map(|(id, _)| *id)
                .collect();
            for c in children {
                self.send_block_to_child(now, channel, c, block.clone());
            }
            let rebuilt = self.middle_stored(now, &block);
            self.play(now, block);
            queue.extend(rebuilt);
        }
    }

    pub(crate) fn send_block_to_child(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        child: NodeId,
        block: Block,
    ) {
        if let Some(link) = self
            .channels
            .get_mut(&channel)
            .and_then(|c| c.children.nodes.get_mut(&child))
        {
            // (A repair sent on a push link is older: the highest sent stands.)
            link.last_seq_sent = Some(link.last_seq_sent.map_or(block.seq, |s| s.max(block.seq)));
            link.last_sent_at = Some(now);
            link.blocks_sent += 1;
        }
        self.stats.blocks_out += 1;
        self.stats.bytes_out += block.wire_len() as u64;
        self.send(child, Message::Block(block));
    }
}
