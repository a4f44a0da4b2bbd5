//! The heartbeat of D8 (fields of seed 003, FIG. 9): node id, heartbeat seq, parents,
//! children, local timestamp, buffer per substream, last block time per parent and
//! per child — plus the last seq received per parent and sent per child (C2), so the
//! coordinator can compare the two ends of every link.

use crate::feed::Feed;
use crate::ids::{ChannelId, ClusterId, NodeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: NodeId,
    pub seq: u64,
    /// The node's own clock when the heartbeat was made (µs).
    pub local_time_us: u64,
    /// Children over all channels (machine-wide load, V8).
    pub load: u32,
    pub capacity: u32,
    pub channels: Vec<ChannelReport>,
    /// The coordinator epoch the node follows (D7, X7; 0: none heard yet). A
    /// coordinator that reads a newer one than its own knows a successor has
    /// taken its managers over: it answers `ServedElsewhere` and orders
    /// nothing more (`coordinator/src/client_manager/epoch_gate.rs`).
    pub epoch: u64,
    /// The coordinator manager this node belongs to (D7, X7; `Register`'s
    /// `manager_id`): a process that does not hold it answers with where to go.
    pub manager_id: u16,
}

impl Default for NodeId {
    fn default() -> Self {
        NodeId(u32::MAX)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelReport {
    pub channel: ChannelId,
    pub parents: Vec<LinkReport>,
    /// Child nodes (relays, protocol viewers).
    pub children: Vec<LinkReport>,
    /// Local viewers (HTTP players) on this node.
    pub local_viewers: u32,
    /// Blocks held in the buffer for this channel (one substream for now).
    pub buffered_blocks: u32,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Blocks found missing (gaps in seq) since the node joined the channel.
    pub missing_blocks: u64,
    /// Middle level (D5), since the node joined: shards of closed groups its coded
    /// links should have pushed, and those that arrived before the group closed —
    /// the loss the coordinator sizes the cluster's redundancy from.
    pub shards_expected: u64,
    pub shards_received: u64,
    /// Groups that needed recovery shards to be whole.
    pub groups_rebuilt: u64,
    /// The bottom cluster manager the node was last told it belongs to for this
    /// channel (C8; `ClusterId(0)`: none told). A coordinator that has moved the
    /// node answers with `Message::ClusterAssigned`.
    pub cluster: ClusterId,
}

/// One end of a link: the last block seq seen on it and when, and what the link
/// pushes (a parent link: the feed received; a child link: the feed sent) — so a
/// coordinator that lost the node can take its links back ([`Feed::All`] for
/// relays and viewers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    pub peer: NodeId,
    pub last_seq: Option<u64>,
    pub last_block_time_us: Option<u64>,
    pub feed: Feed,
}
