//! The simulated nodes' own books for `tiercast bench heartbeats` (issue 12,
//! X7/D8; C1, C2): per node and channel its parents (what its `ParentSet`s
//! told it, with each link's feed) and its children (the nodes that took it
//! as a parent), kept up to date from the coordinator's `ParentSet`s as a
//! node applies them, and the heartbeat each node sends from them: every link
//! delivering the current block seq (so no link lags, C2), buffers full, the
//! node's own clock offset from the others.
//!
//! The books are kept small (they share the process, so the bench's resident
//! memory counts them): a link is the other end's id and its feed's number in a
//! table of the feeds seen (≈ 8 B, not the 24 of a `(NodeId, Feed)`), a node's
//! channels and parents take exactly their room.

use super::population::{mix, Plan, PEER_CAPACITY};
use tiercast_coordinator::{Coordinator, Transmit};
use tiercast_proto::{
    ChannelId, ChannelReport, ClusterId, Feed, Heartbeat, LinkReport, Message, NodeId, NodeRole,
    PeerFeed,
};

/// The stream's blocks: one every 100 ms, seen by every node 200 ms late.
const BLOCK_US: u64 = 100_000;
const SEEN_LATE_US: u64 = 200_000;
/// Blocks each node holds.
const BUFFERED: u64 = 50;

/// A link: the node at its other end and its feed's number in [`Feeds`].
type Link = (NodeId, u16);

/// The distinct feeds the books' links carry, numbered in order seen.
#[derive(Default)]
struct Feeds {
    all: Vec<Feed>,
    index: std::collections::HashMap<Feed, u16>,
}

impl Feeds {
    fn number(&mut self, feed: Feed) -> u16 {
        if let Some(i) = self.index.get(&feed) {
            return *i;
        }
        let i = u16::try_from(self.all.len()).expect("fewer than 65 536 distinct feeds");
        self.all.push(feed);
        self.index.insert(feed, i);
        i
    }

    fn get(&self, i: u16) -> Feed {
        self.all[usize::from(i)]
    }
}

#[derive(Clone, Debug, Default)]
struct ChanBook {
    channel: ChannelId,
    /// The bottom cluster the coordinator told (C8), reported back.
    cluster: ClusterId,
    parents: Box<[Link]>,
    children: Vec<Link>,
}

#[derive(Clone, Debug, Default)]
struct NodeBook {
    chans: Vec<ChanBook>,
}

impl NodeBook {
    fn chan(&mut self, channel: ChannelId) -> &mut ChanBook {
        let i = match self.chans.iter().position(|c| c.channel == channel) {
            Some(i) => i,
            None => {
                self.chans.reserve_exact(1);
                self.chans.push(ChanBook {
                    channel,
                    ..ChanBook::default()
                });
                self.chans.len() - 1
            }
        };
        &mut self.chans[i]
    }
}

/// Every node's books, indexed by id − 1 (ids are 1..=N).
pub struct Books {
    nodes: Vec<NodeBook>,
    roles: Vec<NodeRole>,
    feeds: Feeds,
    /// `ParentSet`s applied since the books were built.
    pub parent_sets: u64,
    /// Other messages to nodes (refusals, moves, ...), by kind.
    pub other_messages: std::collections::BTreeMap<&'static str, u64>,
}

impl Books {
    /// The books as the coordinator's overlays stand: each member's parents
    /// are its current assignment (the last `ParentSet` it was sent).
    pub fn from_overlays(co: &Coordinator, plan: &Plan) -> Books {
        let mut b = Books {
            nodes: vec![NodeBook::default(); plan.nodes as usize],
            roles: plan.ids().map(|id| plan.role(id)).collect(),
            feeds: Feeds::default(),
            parent_sets: 0,
            other_messages: Default::default(),
        };
        // The origin reports every channel it announced.
        for o in co.peer_overlays() {
            b.nodes[0].chan(o.desc.id);
        }
        for o in co.peer_overlays() {
            for id in o.members.keys() {
                if *id == Plan::ORIGIN {
                    continue; // never told parents: it makes the blocks
                }
                let parents = o.assignment(*id).unwrap_or_default();
                b.set_parents(*id, o.desc.id, &parents);
            }
        }
        b
    }

    fn book(&mut self, id: NodeId) -> Option<&mut NodeBook> {
        self.nodes.get_mut((id.0 as usize).checked_sub(1)?)
    }

    /// `id` applies a parent set for `channel`: its old parents lose it as a
    /// child, the new ones gain it (with the feed of the link).
    fn set_parents(&mut self, id: NodeId, channel: ChannelId, parents: &[PeerFeed]) {
        if self.book(id).is_none() {
            return;
        }
        let new: Box<[Link]> = parents
            .iter()
            .map(|p| (p.peer.id, self.feeds.number(p.feed)))
            .collect();
        let Some(me) = self.book(id) else { return };
        let old = std::mem::replace(&mut me.chan(channel).parents, new.clone());
        for (p, _) in old {
            if let Some(pb) = self.book(p) {
                pb.chan(channel).children.retain(|(c, _)| *c != id);
            }
        }
        for (p, feed) in new.iter().copied() {
            if let Some(pb) = self.book(p) {
                pb.chan(channel).children.push((id, feed));
            }
        }
    }

    /// Applies what the coordinator sent: parent sets change the books.
    pub fn apply(&mut self, transmits: impl IntoIterator<Item = Transmit>) {
        for t in transmits {
            match t.msg {
                Message::ParentSet {
                    channel, parents, ..
                } => {
                    self.set_parents(t.to, channel.id, &parents);
                    self.parent_sets += 1;
                }
                Message::ChannelRetired { channel } => {
                    if let Some(b) = self.book(t.to) {
                        b.chans.retain(|c| c.channel != channel);
                    }
                    *self.other_messages.entry("ChannelRetired").or_default() += 1;
                }
                // The answer to a peer's first heartbeats (C8): its cluster,
                // reported back from then on; not a refusal or a move.
                Message::ClusterAssigned { channel, cluster } => {
                    if let Some(b) = self.book(t.to) {
                        b.chan(channel).cluster = cluster;
                    }
                }
                other => *self.other_messages.entry(other.kind()).or_default() += 1,
            }
        }
    }

    /// Links over all nodes and channels (parents + children).
    pub fn links(&self) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| &n.chans)
            .map(|c| c.parents.len() + c.children.len())
            .sum()
    }

    /// The heartbeat node `id` sends at `now_us` (the coordinator's clock) as
    /// its `seq`-th.
    pub fn heartbeat(&self, id: NodeId, now_us: u64, seq: u64) -> Heartbeat {
        let i = id.0 as usize - 1;
        let clock_offset_us = mix(u64::from(id.0) ^ 0xc10c) % 3_600_000_000;
        let local = now_us + clock_offset_us;
        let last = now_us.saturating_sub(SEEN_LATE_US) / BLOCK_US;
        let link = |(peer, feed): &Link| {
            let feed = self.feeds.get(*feed);
            let pushed = feed != Feed::Lazy;
            LinkReport {
                peer: *peer,
                last_seq: pushed.then_some(last),
                last_block_time_us: pushed.then_some(local.saturating_sub(SEEN_LATE_US / 2)),
                feed,
            }
        };
        let node = &self.nodes[i];
        let load: usize = node.chans.iter().map(|c| c.children.len()).sum();
        let capacity = match self.roles[i] {
            NodeRole::Origin => 100,
            NodeRole::Relay => 1_000,
            _ => PEER_CAPACITY,
        };
        Heartbeat {
            node: id,
            seq,
            local_time_us: local,
            load: load as u32,
            capacity,
            channels: node
                .chans
                .iter()
                .map(|c| ChannelReport {
                    channel: c.channel,
                    parents: c.parents.iter().map(link).collect(),
                    children: c.children.iter().map(link).collect(),
                    local_viewers: 0,
                    buffered_blocks: BUFFERED as u32,
                    first_seq: Some(last.saturating_sub(BUFFERED - 1)),
                    last_seq: Some(last),
                    missing_blocks: 0,
                    shards_expected: 0,
                    shards_received: 0,
                    groups_rebuilt: 0,
                    cluster: c.cluster,
                })
                .collect(),
            // The coordinator's own (a node follows the epoch it was ordered in).
            epoch: 1,
            manager_id: 0,
        }
    }
}
