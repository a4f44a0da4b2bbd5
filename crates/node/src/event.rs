//! What a node reports to its driver (logged, counted, shown on the dashboard; the
//! network driver also fans `BlockStored` out to its HTTP viewers).

use tiercast_proto::{Block, ChannelDesc, ChannelId, DenyReason, NodeId, PeerInfo, Tier, ViewerId};

#[derive(Clone, Debug)]
pub enum Event {
    Registered,
    RegisterDenied(DenyReason),
    /// The coordinator link reached a process that does not serve this node
    /// (D7, X7): point the link at `leader`, or at the next coordinator address
    /// when `None`; the Register follows [`crate::elsewhere::MOVE_DELAY_MS`] later.
    CoordinatorElsewhere {
        leader: Option<String>,
    },
    /// The coordinator listed every coordinator process of its cluster (X7):
    /// the driver learns the addresses it did not know.
    CoordinatorsKnown {
        addrs: Vec<String>,
    },
    /// A Register got no answer: sent again (`attempts` so far), next in `retry_in_ms`.
    CoordinatorUnanswered {
        attempts: u32,
        retry_in_ms: u64,
    },
    /// The origin's channel was announced and is ready for ingest: cut from
    /// `next_seq` on (at least).
    ChannelReady {
        desc: ChannelDesc,
        next_seq: u64,
    },
    /// The coordinator made this origin the channel's standby (D7): keep the
    /// ingest ready, feed nobody until a `ChannelReady` promotes it.
    StandbyAccepted {
        desc: ChannelDesc,
    },
    /// The coordinator's publish keys for `channel_name` (X1, X3: SHA-256
    /// digests, kept in its store): the origin's ingest checks publishers
    /// against them besides its own flags and file; empty: none from the
    /// coordinator.
    PublishKeys {
        channel_name: String,
        digests: Vec<[u8; 32]>,
    },
    /// The coordinator refused the origin's channel.
    AnnounceDenied {
        channel_name: String,
        reason: DenyReason,
    },
    /// The coordinator moved this node to another bottom cluster manager (C8).
    ClusterAssigned {
        channel: ChannelId,
        cluster: tiercast_proto::ClusterId,
    },
    /// The coordinator gave a new origin key for a channel this node carries.
    ChannelKeyChanged {
        channel: ChannelId,
    },
    Activated {
        channel: ChannelId,
        tier: Tier,
        parents: Vec<NodeId>,
    },
    /// The node left the channel (consolidated and empty, or retired by the
    /// coordinator).
    Deactivated {
        channel: ChannelId,
    },
    ParentConnected {
        channel: ChannelId,
        parent: NodeId,
    },
    ParentDropped {
        channel: ChannelId,
        parent: NodeId,
    },
    /// A bad parent link was reported to the coordinator (V10).
    LinkDowngradeSent {
        channel: ChannelId,
        parent: NodeId,
    },
    ChildJoined {
        channel: ChannelId,
        child: NodeId,
    },
    ChildLeft {
        channel: ChannelId,
        child: NodeId,
    },
    ViewerJoined {
        channel: ChannelId,
        viewer: ViewerId,
    },
    ViewerLeft {
        channel: ChannelId,
        viewer: ViewerId,
    },
    DistributeSent {
        channel: ChannelId,
        load: u32,
    },
    ConsolidateSent {
        channel: ChannelId,
        load: u32,
    },
    /// Consolidated: local viewers should move to `to` (the driver decides how).
    ViewersMustMove {
        channel: ChannelId,
        to: PeerInfo,
    },
    BlockStored {
        block: Block,
    },
    BlockRejected {
        channel: ChannelId,
        from: NodeId,
        reason: &'static str,
    },
    LoginDenied {
        channel: ChannelId,
        by: NodeId,
        reason: DenyReason,
    },
    /// A LOGIN at `parent` got no answer for `parent_silence_ms`: sent again.
    LoginUnanswered {
        channel: ChannelId,
        parent: NodeId,
    },
    Watching {
        channel: ChannelDesc,
        relay: NodeId,
    },
    WatchDenied {
        channel_name: String,
        reason: DenyReason,
        retry_after_ms: u32,
    },
    /// A coordinator of a newer epoch spoke: its orders are followed from now
    /// on, an older one's ignored (D7, X7).
    CoordinatorEpoch {
        epoch: u64,
    },
    /// An order of an older coordinator epoch was ignored.
    StaleOrder {
        epoch: u64,
        current: u64,
        kind: &'static str,
    },
    /// A message that is not valid here was dropped.
    Invalid {
        from: NodeId,
        kind: &'static str,
        why: &'static str,
    },
}
