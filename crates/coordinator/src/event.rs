//! Everything the coordinator decides is an event it can log and a dashboard can show.

use tiercast_proto::{ChannelId, DenyReason, NodeId, NodeRole, Tier};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordEvent {
    NodeRegistered {
        node: NodeId,
        role: NodeRole,
        tier: Tier,
    },
    ChannelStarted {
        channel: ChannelId,
        name: String,
        origin: NodeId,
    },
    Activated {
        channel: ChannelId,
        node: NodeId,
        tier: Tier,
        parents: Vec<NodeId>,
    },
    DistributeRequested {
        channel: ChannelId,
        node: NodeId,
        load: u32,
    },
    /// DISTRIBUTE found no idle relay to activate in the tier.
    DistributeUnmet {
        channel: ChannelId,
        tier: Tier,
    },
    Consolidated {
        channel: ChannelId,
        node: NodeId,
        moved_to: NodeId,
    },
    ConsolidateIgnored {
        channel: ChannelId,
        node: NodeId,
        why: &'static str,
    },
    Reassigned {
        channel: ChannelId,
        node: NodeId,
        added: Vec<NodeId>,
        removed: Vec<NodeId>,
    },
    Redirected {
        channel: ChannelId,
        to: NodeId,
    },
    Denied {
        channel_name: String,
        reason: DenyReason,
    },
    NodeTimedOut {
        node: NodeId,
    },
    /// A relay reported a bad link to a parent (V10).
    LinkDowngraded {
        channel: ChannelId,
        node: NodeId,
        parent: NodeId,
    },
    /// A relay's children were moved to a sibling and it left the VAN (V10).
    Migrated {
        channel: ChannelId,
        node: NodeId,
        to: NodeId,
    },
    Invalid {
        from: NodeId,
        kind: &'static str,
        why: &'static str,
    },
}
