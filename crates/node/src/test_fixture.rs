//! Test fixture of the node's unit tests (C1, V9, D3, D4): channel "live" (1),
//! parents pushing a feed, parent sets handed to a node as the coordinator
//! sends them, a peer fed by two parents and a relay active in tier 2, and what
//! a node sends. Shared by the parent-set and switch tests, the start and the
//! pull tests.

use crate::{Node, NodeConfig};
use bytes::Bytes;
use tiercast_proto::{
    Block, ChannelDesc, ChannelId, Feed, Message, NodeId, NodeRole, PeerFeed, PeerInfo, Placement,
    SubstreamSet, Timestamp, COORDINATOR_ID,
};

pub(crate) const CH: ChannelId = ChannelId(1);

pub(crate) fn desc() -> ChannelDesc {
    ChannelDesc {
        id: CH,
        name: "live".into(),
        public_key: [0; 32],
    }
}

/// Parent `id` pushing `feed`.
pub(crate) fn parent(id: u32, feed: Feed) -> PeerFeed {
    PeerFeed {
        peer: PeerInfo {
            id: NodeId(id),
            addr: String::new(),
            http_addr: String::new(),
        },
        feed,
    }
}

/// Parent `id` pushing substreams `subs` of 4.
pub(crate) fn feed(id: u32, subs: &[u8]) -> PeerFeed {
    let mut s = SubstreamSet::single(4, subs[0]).unwrap();
    for x in &subs[1..] {
        s = s.with(*x);
    }
    parent(id, Feed::Substreams(s))
}

/// Parent `id` pushing everything.
pub(crate) fn all(id: u32) -> PeerFeed {
    parent(id, Feed::All)
}

/// The coordinator's parent set `version` for channel 1.
pub(crate) fn set(
    n: &mut Node,
    t: Timestamp,
    version: u64,
    placement: Placement,
    parents: Vec<PeerFeed>,
) {
    n.handle_message(
        t,
        COORDINATOR_ID,
        Message::ParentSet {
            channel: desc(),
            version,
            placement,
            parents,
        },
    );
}

/// The next parent set of a member of the peer overlay.
pub(crate) fn assign(n: &mut Node, t: Timestamp, parents: Vec<PeerFeed>) {
    let version = n.parent_set_version(CH).map_or(1, |v| v + 1);
    set(n, t, version, Placement::Member, parents);
}

pub(crate) fn logoffs(n: &mut Node) -> Vec<u32> {
    std::iter::from_fn(|| n.poll_transmit())
        .filter(|t| matches!(t.msg, Message::Logoff { .. }))
        .map(|t| t.to.0)
        .collect()
}

pub(crate) fn logins(n: &mut Node) -> Vec<(u32, Option<u64>)> {
    std::iter::from_fn(|| n.poll_transmit())
        .filter_map(|t| match t.msg {
            Message::Login { from_seq, .. } => Some((t.to.0, from_seq)),
            _ => None,
        })
        .collect()
}

pub(crate) fn parent_ids(n: &Node) -> Vec<u32> {
    n.channel(CH)
        .unwrap()
        .parents
        .ids()
        .into_iter()
        .map(|p| p.0)
        .collect()
}

/// The state of the node's link from parent `id` on channel 1, if any.
pub(crate) fn parent_state(n: &Node, id: u32) -> Option<crate::parents::ParentState> {
    n.channel(CH)
        .unwrap()
        .parents
        .get(NodeId(id))
        .map(|l| l.state)
}

pub(crate) fn block(seq: u64) -> Message {
    Message::Block(Block::new(
        CH,
        seq,
        Timestamp(seq),
        false,
        Bytes::from_static(b"x"),
    ))
}

/// Peer 9, blocks not verified, nothing assigned yet.
pub(crate) fn bare_peer() -> Node {
    let cfg = NodeConfig {
        id: NodeId(9),
        role: NodeRole::Peer,
        verify_blocks: false,
        ..NodeConfig::default()
    };
    Node::new(cfg, Timestamp::ZERO)
}

/// A peer fed substreams 0, 1 by node 5 and 2, 3 by node 6.
pub(crate) fn peer() -> Node {
    let mut n = bare_peer();
    assign(
        &mut n,
        Timestamp::ZERO,
        vec![feed(5, &[0, 1]), feed(6, &[2, 3])],
    );
    for p in [5, 6] {
        n.handle_message(
            Timestamp::ZERO,
            NodeId(p),
            Message::LoginAccepted { channel: CH },
        );
    }
    logoffs(&mut n);
    n
}

pub(crate) fn relay_cfg() -> NodeConfig {
    NodeConfig {
        id: NodeId(21),
        role: NodeRole::Relay,
        verify_blocks: false,
        ..NodeConfig::default()
    }
}

/// A relay active in tier 2 with parent 11, a child (99) that makes it log in there.
pub(crate) fn relay() -> Node {
    let mut n = Node::new(relay_cfg(), Timestamp::ZERO);
    let activate = Placement::Tier {
        tier: 2,
        activate: true,
    };
    set(&mut n, Timestamp::ZERO, 1, activate, vec![all(11)]);
    n.handle_message(
        Timestamp::ZERO,
        NodeId(99),
        Message::Login {
            channel: CH,
            from_seq: None,
            feed: Feed::All,
        },
    );
    n.handle_message(
        Timestamp::ZERO,
        NodeId(11),
        Message::LoginAccepted { channel: CH },
    );
    let _ = std::iter::from_fn(|| n.poll_transmit()).count();
    n
}

/// `msg` as an order of the coordinator of `epoch`.
pub(crate) fn order(epoch: u64, msg: Message) -> Message {
    Message::Order {
        epoch,
        order: Box::new(msg),
    }
}

/// A node of `cfg` the coordinator has registered (heartbeats every second).
pub(crate) fn registered(cfg: NodeConfig) -> Node {
    let mut n = Node::new(cfg, Timestamp::ZERO);
    n.handle_message(
        Timestamp::ZERO,
        COORDINATOR_ID,
        Message::Registered {
            heartbeat_interval_ms: 1000,
        },
    );
    n
}
