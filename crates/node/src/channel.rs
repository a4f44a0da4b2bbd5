//! What a node keeps for one channel (V8: a node carries many channels, each with
//! its own parents, children, phase and buffer).

use crate::buffer::BlockBuffer;
use crate::children::Children;
use crate::parents::Parents;
use tiercast_proto::{ChannelDesc, Feed, OriginVerifier, Tier, Timestamp};

/// How far back (by the origin's clock, from the newest block held) a peer's
/// LOGIN at a new parent reaches for a hole in that parent's feed
/// ([`ChannelState::resume_seq_for`]): well inside the parent's full-backlog
/// range (`watch::PEER_RESYNC_MS`), and blocks this recent are still ahead of the
/// playout position.
pub const FEED_HOLE_LOOKBACK_MS: u64 = 1500;

/// V4/V5 phases of an active node for one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepting new children until the max threshold.
    Expanding,
    /// DISTRIBUTE sent: no new children are sent here; may CONSOLIDATE.
    Contracting,
}

#[derive(Debug)]
pub struct ChannelState {
    pub desc: ChannelDesc,
    pub verifier: OriginVerifier,
    pub tier: Tier,
    pub phase: Phase,
    pub parents: Parents,
    pub children: Children,
    pub buffer: BlockBuffer,
    /// LOGIN sent to the parents (the node has children to feed).
    pub logged_in: bool,
    pub consolidate_pending: bool,
    /// CONSOLIDATE accepted: no new children; the node leaves once empty.
    pub consolidated: bool,
    /// Blocks whose origin signature failed.
    pub rejected_blocks: u64,
    /// Blocks from a node that is not a parent.
    pub foreign_blocks: u64,
    /// Senders of those, told LOGOFF again ([`crate::foreign`]).
    pub foreign: crate::foreign::ForeignSenders,
    /// Protocol viewer: when it logged in at its relay (the silence baseline before
    /// the first block).
    pub watching_since: Option<Timestamp>,
    /// The node wants the stream for itself (a peer playing it, a member of the
    /// top mesh): its parents stay logged in without children.
    pub keep: bool,
    /// A member of the peer overlay for this channel (its parents come in
    /// `Placement::Member` sets, C4, C6): a LOGIN at a new parent asks again for
    /// the recent holes of the link's feed ([`ChannelState::login_resume_seq`]).
    pub member: bool,
    /// The lowest seq a child asked to resume at while this buffer was still empty:
    /// where this node's own LOGIN at its parents resumes (a relay just activated
    /// for viewers moved off a silent one, V9: they keep an unbroken run).
    pub children_resume_at: Option<u64>,
    /// Have/Want state of the lazy links (D3).
    pub pull: crate::pull::Pull,
    /// Erasure-coded substreams: encoders, decoders, loss (D5).
    pub middle: crate::middle::Middle,
    /// When a block above the highest held last arrived: the stream advances here
    /// (blocks swapped inside a cut region, all older, do not count).
    pub advanced_at: Option<Timestamp>,
    /// A peer kept this channel's links when it registered again (it looked fed),
    /// at this time: if the stream has not advanced one interval later, its
    /// parents were fed from inside the cut and it asks again (`Node::rejoined`).
    pub kept_at_rejoin: Option<Timestamp>,
    /// A fresh peer's first blocks, held until its start across its substream
    /// parents is known ([`crate::start`]).
    pub start_gate: Option<crate::start::StartGate>,
    /// The seq this node's own playing starts at, once its gate opened: older
    /// blocks are stored and forwarded, never played.
    pub play_from: Option<u64>,
    /// The bottom cluster manager the coordinator last told this node it
    /// belongs to (C8, [`crate::cluster`]); reported in every heartbeat.
    pub cluster: tiercast_proto::ClusterId,
}

impl ChannelState {
    pub fn new(desc: ChannelDesc, tier: Tier, buffer_blocks: usize) -> Self {
        ChannelState {
            verifier: OriginVerifier::new(desc.public_key),
            desc,
            tier,
            phase: Phase::Expanding,
            parents: Parents::default(),
            children: Children::default(),
            buffer: BlockBuffer::new(buffer_blocks),
            logged_in: false,
            consolidate_pending: false,
            consolidated: false,
            rejected_blocks: 0,
            foreign_blocks: 0,
            foreign: Default::default(),
            watching_since: None,
            keep: false,
            member: false,
            children_resume_at: None,
            pull: crate::pull::Pull::default(),
            advanced_at: None,
            kept_at_rejoin: None,
            start_gate: None,
            play_from: None,
            cluster: Default::default(),
            middle: crate::middle::Middle::default(),
        }
    }

    pub fn load(&self) -> u32 {
        self.children.load()
    }

    /// When any parent last delivered a block.
    pub fn newest_block_at(&self) -> Option<Timestamp> {
        self.parents
            .iter()
            .filter_map(|(_, l)| l.last_block_at)
            .max()
    }

    /// Protocol viewer: since when its stream has been silent (its last block, or
    /// its login if none came yet).
    pub fn silent_since(&self) -> Option<Timestamp> {
        self.newest_block_at().or(self.watching_since)
    }

    /// Where a (re)connecting child or parent should resume.
    pub fn resume_seq(&self) -> Option<u64> {
        self.buffer.highest_seq().map(|h| h + 1)
    }

    /// Where a LOGIN at a new parent of `feed` resumes: at the oldest block of
    /// that feed missing in the last [`FEED_HOLE_LOOKBACK_MS`], else after the
    /// newest block. The parent this one replaces may have held those blocks in
    /// its queue for us when we logged off from it (a parent switched while its
    /// uplink was behind: its queue is dropped at the LOGOFF), and a substream's
    /// path may lag the others; resuming after the newest block of any
    /// substream lost them for this node's whole subtree (`full-recompute` seed
    /// 33: one substream's 426 and 430 for 100 peers).
    pub fn resume_seq_for(&self, feed: &Feed) -> Option<u64> {
        let hi = self.buffer.highest_seq()?;
        let lo = self
            .buffer
            .newer_than(FEED_HOLE_LOOKBACK_MS * 1000)
            .unwrap_or(hi);
        (lo..=hi)
            .find(|s| feed.pushes(*s) && self.buffer.get(*s).is_none())
            .or(Some(hi + 1))
    }

    /// Where this node's LOGIN at its parents resumes: after its newest block, or
    /// with none yet where its children asked to resume.
    pub fn parent_resume_seq(&self) -> Option<u64> {
        self.resume_seq().or(self.children_resume_at)
    }

    /// Where a LOGIN at a new (or re-listed) parent pushing `feed` resumes when the
    /// parents change ([`crate::switch`]): a member of the peer overlay asks again
    /// for the recent holes of that feed ([`ChannelState::resume_seq_for`]: its
    /// old parent's paced queue may have held them); a relay or a protocol viewer
    /// resumes after its newest block, or where its children asked
    /// ([`ChannelState::parent_resume_seq`]).
    pub fn login_resume_seq(&self, feed: &Feed) -> Option<u64> {
        if self.member {
            self.resume_seq_for(feed).or(self.resume_seq())
        } else {
            self.parent_resume_seq()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tiercast_proto::{Block, ChannelId, SubstreamSet};

    fn state_holding(seqs: impl Iterator<Item = u64>) -> ChannelState {
        let desc = ChannelDesc {
            id: ChannelId(1),
            name: "live".into(),
            public_key: [0; 32],
        };
        let mut ch = ChannelState::new(desc, 2, 64);
        for s in seqs {
            // 100 ms apart by the origin's clock.
            let b = Block::new(ChannelId(1), s, Timestamp(s * 100_000), false, Bytes::new());
            ch.buffer.insert(b);
        }
        ch
    }

    #[test]
    fn a_login_at_a_new_parent_asks_again_for_a_recent_hole_of_its_feed() {
        // Substream 2 of 4 lost 22 (its old parent's queue dropped at the LOGOFF).
        let ch = state_holding((0..=30).filter(|s| *s != 22));
        let sub = |i| Feed::Substreams(SubstreamSet::single(4, i).expect("k = 4"));
        assert_eq!(ch.resume_seq_for(&sub(2)), Some(22), "the hole in its feed");
        assert_eq!(ch.resume_seq_for(&sub(1)), Some(31), "no hole in this feed");
        assert_eq!(ch.resume_seq_for(&Feed::All), Some(22));
        // A hole older than FEED_HOLE_LOOKBACK_MS (1.5 s = 15 blocks) is let go.
        let old = state_holding((0..=30).filter(|s| *s != 10));
        assert_eq!(old.resume_seq_for(&sub(2)), Some(31));
        let empty = state_holding(std::iter::empty());
        assert_eq!(empty.resume_seq_for(&sub(2)), None, "nothing held yet");
    }
}
