//! What a node keeps for one channel (V8: a node carries many channels, each with
//! its own parents, children, phase and buffer).

use crate::buffer::BlockBuffer;
use crate::children::Children;
use crate::parents::Parents;
use tiercast_proto::{ChannelDesc, OriginVerifier, Tier, Timestamp};

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
            children_resume_at: None,
            pull: crate::pull::Pull::default(),
            advanced_at: None,
            kept_at_rejoin: None,
            start_gate: None,
            play_from: None,
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

    /// Where this node's LOGIN at its parents resumes: after its newest block, or
    /// with none yet where its children asked to resume.
    pub fn parent_resume_seq(&self) -> Option<u64> {
        self.resume_seq().or(self.children_resume_at)
    }
}
