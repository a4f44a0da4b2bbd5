//! The ConnectionState table of V3 for one channel: child nodes (relays of the
//! tier below, protocol viewers) with what was last sent to each (D8, C2), and
//! local viewers (HTTP players on this node). Both count as load. Audio-only
//! viewers (C3, `audio_viewers.rs`) keep the channel here but count in no load:
//! they take slots of their own (`NodeConfig::audio_capacity`).

use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{Feed, NodeId, Timestamp, ViewerId};

#[derive(Clone, Debug, Default)]
pub struct ChildLink {
    pub last_seq_sent: Option<u64>,
    pub last_sent_at: Option<Timestamp>,
    pub blocks_sent: u64,
    /// What this child asked to be pushed (D3, D4).
    pub feed: Feed,
    /// Lazy child: the highest seq last announced to it with `Have`.
    pub have_sent: Option<u64>,
    /// A new child's first seq (its backlog's first, or the live edge when it
    /// had none): an older block stored later (a repair) is not pushed to it.
    pub starts_at: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct Children {
    pub nodes: BTreeMap<NodeId, ChildLink>,
    pub viewers: BTreeSet<ViewerId>,
    /// Local viewers of the audio-only feed (C3): not load, but not nobody.
    pub audio_viewers: BTreeSet<ViewerId>,
}

impl Children {
    pub fn load(&self) -> u32 {
        (self.nodes.len() + self.viewers.len()) as u32
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.viewers.is_empty() && self.audio_viewers.is_empty()
    }

    pub fn has_lazy(&self) -> bool {
        self.nodes.values().any(|l| l.feed == Feed::Lazy)
    }
}
