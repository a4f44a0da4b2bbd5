//! The decoding side of the middle level (D5): recovery shards from coded
//! parents are checked against the link's feed and offered to their group's
//! decoder; the originals a whole group gives back become blocks again, which
//! must pass the origin signature check before they are stored.

use super::window::Offer;
use super::{block_from_body, layout_of};
use crate::node::Node;
use bytes::Bytes;
use tiercast_proto::{Block, ChannelId, Message, NodeId, Timestamp};

impl Node {
    /// A recovery shard from a coded parent.
    pub(crate) fn on_shard(&mut self, now: Timestamp, from: NodeId, shard: Message) {
        let Message::Shard {
            channel,
            group,
            k,
            n,
            index,
            data,
        } = shard
        else {
            return;
        };
        let refused = self.check_shard(from, channel, group, k, n, index);
        if let Err(why) = refused {
            let parent = self
                .channels
                .get(&channel)
                .map(|c| c.parents.contains(from));
            if parent == Some(false) {
                self.foreign_push(now, from, channel);
            }
            self.stats.shards_invalid += 1;
            self.invalid(from, "shard", why);
            return;
        }
        self.stats.shards_in += 1;
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if let Some(link) = ch.parents.get_mut(from) {
            // The link is alive (V10), though it brought no block.
            link.last_block_at = Some(now);
            link.downgraded = false;
        }
        let Some(layout) = ch.middle.sync(&ch.parents) else {
            return;
        };
        ch.middle.advance(&ch.parents, layout, group);
        let Some(w) = ch.middle.window.as_mut() else {
            return;
        };
        let at = usize::from(k) + usize::from(index);
        let offer = w.offer(group, at, Bytes::from(data));
        if !matches!(offer, Offer::Bad(_) | Offer::Late) {
            w.note_pushed(from, true, group, at);
        }
        match offer {
            Offer::Restored(restored) => {
                for b in self.rebuilt_blocks(channel, group, restored) {
                    self.store_and_forward(now, b);
                }
            }
            Offer::Bad(_) => self.stats.shards_invalid += 1,
            Offer::Taken | Offer::Late => {}
        }
    }

    /// Why a shard is refused before it reaches a decoder.
    fn check_shard(
        &self,
        from: NodeId,
        channel: ChannelId,
        group: u64,
        k: u8,
        n: u8,
        index: u8,
    ) -> Result<(), &'static str> {
        let ch = self.channels.get(&channel).ok_or("channel not carried")?;
        let link = ch.parents.get(from).ok_or("sender is not a parent")?;
        let c = link.feed.coded().ok_or("the link is not coded")?;
        if (c.k, c.n) != (k, n) {
            return Err("k+n differ from the link's");
        }
        if !c.recovery().any(|j| j == index) {
            return Err("index not in the link's recovery shards");
        }
        if layout_of(&ch.parents) != Some((k, n)) {
            return Err("k+n differ from the other coded parents'");
        }
        if group.checked_mul(u64::from(k)).is_none() {
            return Err("group out of range");
        }
        Ok(())
    }

    /// Restored bodies of `group` as blocks that pass the origin signature check.
    pub(super) fn rebuilt_blocks(
        &mut self,
        channel: ChannelId,
        group: u64,
        restored: Vec<(usize, Bytes)>,
    ) -> Vec<Block> {
        let verify = self.cfg.verify_blocks;
        let memo = verify.then(|| self.cfg.verify_memo.clone()).flatten();
        let Some(ch) = self.channels.get_mut(&channel) else {
            return Vec::new();
        };
        let Some(params) = ch.middle.decoding() else {
            return Vec::new();
        };
        let mut blocks = Vec::new();
        let mut rejected = 0;
        for (i, body) in restored {
            let block = params
                .seq_of(group, i)
                .and_then(|seq| block_from_body(channel, seq, &body));
            match block {
                Some(b) if !verify || ch.verifier.verify_with(&b, memo.as_ref()).is_ok() => {
                    blocks.push(b)
                }
                _ => rejected += 1,
            }
        }
        ch.rejected_blocks += rejected;
        if !blocks.is_empty() {
            ch.middle.groups_rebuilt += 1;
            ch.middle.blocks_rebuilt += blocks.len() as u64;
            self.stats.groups_rebuilt += 1;
            self.stats.blocks_rebuilt += blocks.len() as u64;
        }
        if rejected > 0 {
            self.events.push_back(crate::event::Event::BlockRejected {
                channel,
                from: self.cfg.id,
                reason: "rebuilt block fails the origin signature",
            });
        }
        blocks
    }
}
