//! A zero-latency in-memory message bus that runs the real coordinator and node
//! machines together, for deterministic walk-through tests (no sockets, no sleeps).

use std::collections::{BTreeMap, VecDeque};
use tiercast_coordinator::{CoordEvent, Coordinator, CoordinatorConfig};
use tiercast_node::{Event, Node, NodeConfig};
use tiercast_proto::{Message, NodeId, NodeRole, Timestamp, COORDINATOR_ID};

/// A policy file capping the link between regions "eu" and "us" at 5.3 Mbit/s.
#[allow(dead_code)]
pub const CAPPED_EU_US: &str = r#"
[[network.link_cap]]
name = "atlantic"
regions = ["eu", "us"]
cap_mbps = 5.3
"#;

pub struct Bus {
    pub now: Timestamp,
    pub coordinator: Coordinator,
    pub nodes: BTreeMap<NodeId, Node>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    pub coord_events: Vec<CoordEvent>,
    pub node_events: Vec<(NodeId, Event)>,
}

impl Bus {
    pub fn new(cfg: CoordinatorConfig) -> Self {
        Bus {
            now: Timestamp::ZERO,
            coordinator: Coordinator::new(cfg, Timestamp::ZERO),
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            coord_events: Vec::new(),
            node_events: Vec::new(),
        }
    }

    #[allow(dead_code)]
    pub fn add_node(
        &mut self,
        id: u32,
        role: NodeRole,
        tier: u8,
        capacity: u32,
        min_threshold: u32,
    ) {
        let cfg = NodeConfig {
            id: NodeId(id),
            role,
            tier,
            capacity,
            max_threshold: capacity,
            min_threshold,
            addr: format!("sim:{id}"),
            http_addr: format!("sim:{id}"),
            ..NodeConfig::default()
        };
        self.add_node_with(cfg);
    }

    /// Origin 1, relays 11 (tier 1) and 21 (tier 2), viewer 100 watching
    /// "live" (announced with a fresh key), settled.
    #[allow(dead_code)]
    pub fn two_tiers(cfg: CoordinatorConfig) -> Bus {
        let mut bus = Bus::new(cfg);
        bus.add_node(1, NodeRole::Origin, 0, 100, 0);
        bus.add_node(11, NodeRole::Relay, 1, 10, 1);
        bus.add_node(21, NodeRole::Relay, 2, 10, 1);
        bus.add_node(100, NodeRole::Viewer, 255, 0, 0);
        let key = tiercast_proto::OriginKey::generate().expect("a key");
        bus.node(1).announce("live", key.public_key());
        bus.settle();
        let now = bus.now;
        bus.node(100).watch(now, "live");
        bus.settle();
        bus
    }

    /// An origin's configuration: room for 100 children, `uplink_kbps`, sim addresses.
    #[allow(dead_code)]
    pub fn origin_config(id: u32, uplink_kbps: u32) -> NodeConfig {
        NodeConfig {
            id: NodeId(id),
            role: NodeRole::Origin,
            tier: 0,
            capacity: 100,
            uplink_kbps,
            addr: format!("sim:{id}"),
            http_addr: format!("sim:{id}"),
            ..NodeConfig::default()
        }
    }

    /// A tier-1 relay's configuration: room for `capacity` viewers, never idle.
    #[allow(dead_code)]
    pub fn relay_config(id: u32, capacity: u32) -> NodeConfig {
        NodeConfig {
            id: NodeId(id),
            role: NodeRole::Relay,
            tier: 1,
            capacity,
            min_threshold: 0,
            addr: format!("sim:{id}"),
            http_addr: format!("sim:{id}"),
            ..NodeConfig::default()
        }
    }

    /// A peer's configuration: `uplink_kbps`, room for 64 children, sim
    /// addresses; change the rest with `NodeConfig { region, ..peer_config(..) }`.
    #[allow(dead_code)]
    pub fn peer_config(id: u32, uplink_kbps: u32) -> NodeConfig {
        NodeConfig {
            id: NodeId(id),
            role: NodeRole::Peer,
            tier: 0,
            uplink_kbps,
            capacity: 64,
            addr: format!("sim:{id}"),
            http_addr: format!("sim:{id}"),
            ..NodeConfig::default()
        }
    }

    /// An origin (node 1) and the tier-1 relays `relays` of `capacity` viewers
    /// (their DISTRIBUTE threshold too), channel "a" announced.
    #[allow(dead_code)]
    pub fn with_relays(
        cfg: CoordinatorConfig,
        relays: std::ops::RangeInclusive<u32>,
        capacity: u32,
    ) -> Bus {
        let mut bus = Bus::new(cfg);
        bus.add_node(1, NodeRole::Origin, 0, 1000, 0);
        for id in relays {
            bus.add_node_with(NodeConfig {
                max_threshold: capacity,
                ..Bus::relay_config(id, capacity)
            });
        }
        bus.node(1).announce("a", [1; 32]);
        bus.settle();
        bus
    }

    /// A configuration for the peer overlay's tests: 4 substreams of a 2 Mbit/s
    /// stream, no repair links.
    #[allow(dead_code)]
    pub fn peers_config() -> CoordinatorConfig {
        let mut c = CoordinatorConfig::default();
        c.peers.substreams = 4;
        c.peers.stream_rate_kbps = 2000;
        c.peers.repair_link = false;
        c
    }

    /// A bus whose origin (node 1, `uplink_kbps`) announced `channels` in
    /// order (ids 1, 2, …), each with a key of its own.
    #[allow(dead_code)]
    pub fn with_channels(cfg: CoordinatorConfig, uplink_kbps: u32, channels: &[&str]) -> Bus {
        let mut bus = Bus::new(cfg);
        bus.add_node_with(NodeConfig {
            id: NodeId(1),
            role: NodeRole::Origin,
            tier: 0,
            uplink_kbps,
            addr: "sim:1".into(),
            http_addr: "sim:1".into(),
            ..NodeConfig::default()
        });
        for name in channels {
            let key = tiercast_proto::OriginKey::generate().expect("a key");
            bus.node(1).announce(name, key.public_key());
            bus.settle();
        }
        bus
    }

    /// Adds a node and has it watch `channels`, one after the other, settled.
    #[allow(dead_code)]
    pub fn add_watching_each(&mut self, cfg: NodeConfig, channels: &[&str]) {
        let id = cfg.id.0;
        self.add_node_with(cfg);
        for name in channels {
            let now = self.now;
            self.node(id).watch(now, name);
            self.settle();
        }
    }

    /// The uplink `channel`'s peer overlay books for `id`, if a member.
    #[allow(dead_code)]
    pub fn overlay_uplink(&self, channel: tiercast_proto::ChannelId, id: u32) -> Option<u64> {
        let o = self.coordinator.peer_overlay(channel)?;
        o.members.get(&NodeId(id)).map(|m| m.uplink_bps)
    }

    /// Adds a node, registers it and has it watch `channel`, settled.
    #[allow(dead_code)]
    pub fn add_watching(&mut self, cfg: NodeConfig, channel: &str) {
        let id = cfg.id.0;
        self.add_node_with(cfg);
        let now = self.now;
        self.node(id).watch(now, channel);
        self.settle();
    }

    /// Viewers `ids` watch `channel`, one after the other; the bus then runs
    /// past a heartbeat.
    #[allow(dead_code)]
    pub fn add_viewers(&mut self, ids: std::ops::RangeInclusive<u32>, channel: &str) {
        for id in ids {
            self.add_node(id, NodeRole::Viewer, 255, 0, 0);
            let now = self.now;
            self.node(id).watch(now, channel);
            self.settle();
        }
        self.advance(1_500);
    }

    /// Adds a node with any configuration (e.g. a region), and registers it.
    pub fn add_node_with(&mut self, cfg: NodeConfig) {
        cfg.validate().expect("test config is valid");
        self.nodes.insert(cfg.id, Node::new(cfg, self.now));
        self.settle();
    }

    pub fn node(&mut self, id: u32) -> &mut Node {
        self.nodes.get_mut(&NodeId(id)).expect("node exists")
    }

    /// Delivers every queued message (and what they cause) until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..1_000_000 {
            self.collect();
            let Some((from, to, msg)) = self.queue.pop_front() else {
                return;
            };
            if to == COORDINATOR_ID {
                self.coordinator.handle_message(self.now, from, msg);
            } else if let Some(n) = self.nodes.get_mut(&to) {
                n.handle_message(self.now, from, msg);
            }
        }
        panic!("bus did not settle");
    }

    /// Moves the clock `ms` forward: every machine whose `poll_timeout` falls on the
    /// way gets `handle_timeout` at that time (earliest first), and the bus settles.
    #[allow(dead_code)]
    pub fn advance(&mut self, ms: u64) {
        let target = self.now.plus_millis(ms);
        for _ in 0..1_000_000 {
            let coordinator_due = self.coordinator.poll_timeout();
            let next = self
                .nodes
                .values()
                .filter_map(|n| n.poll_timeout())
                .chain(coordinator_due)
                .filter(|t| *t <= target)
                .min();
            let Some(t) = next else {
                self.now = target;
                return;
            };
            self.now = self.now.max(t);
            let now = self.now;
            if coordinator_due.is_some_and(|t| t <= now) {
                self.coordinator.handle_timeout(now);
            }
            for n in self.nodes.values_mut() {
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                }
            }
            self.settle();
        }
        panic!("timers did not move past {target}");
    }

    fn collect(&mut self) {
        while let Some(t) = self.coordinator.poll_transmit() {
            self.queue.push_back((COORDINATOR_ID, t.to, t.into_wire()));
        }
        while let Some(e) = self.coordinator.poll_event() {
            self.coord_events.push(e);
        }
        for (id, n) in self.nodes.iter_mut() {
            while let Some(t) = n.poll_transmit() {
                self.queue.push_back((*id, t.to, t.msg));
            }
            while let Some(e) = n.poll_event() {
                self.node_events.push((*id, e));
            }
        }
    }

    /// The relay a protocol viewer was last placed on.
    #[allow(dead_code)]
    pub fn watching_relay(&self, viewer: u32) -> Option<u32> {
        self.node_events.iter().rev().find_map(|(n, e)| match e {
            Event::Watching { relay, .. } if n.0 == viewer => Some(relay.0),
            _ => None,
        })
    }

    /// The origin (node 1) cuts block `seq` of channel 1, signs it and sends it on.
    #[allow(dead_code)]
    pub fn ingest_signed(
        &mut self,
        key: &tiercast_proto::OriginKey,
        seq: u64,
        keyframe: bool,
        payload: bytes::Bytes,
    ) {
        let mut b = tiercast_proto::Block::new(
            tiercast_proto::ChannelId(1),
            seq,
            Timestamp(seq),
            keyframe,
            payload,
        );
        key.sign(&mut b);
        let now = self.now;
        self.node(1).ingest_block(now, b);
        self.settle();
    }

    /// Seqs of the blocks a node stored, in order.
    #[allow(dead_code)]
    pub fn blocks_stored(&self, node: u32) -> Vec<u64> {
        self.node_events
            .iter()
            .filter_map(|(n, e)| match e {
                Event::BlockStored { block } if n.0 == node => Some(block.seq),
                _ => None,
            })
            .collect()
    }

    /// Nodes activated since event index `since`, in order.
    #[allow(dead_code)]
    pub fn activated_since(&self, since: usize) -> Vec<(u32, Vec<u32>)> {
        self.coord_events[since..]
            .iter()
            .filter_map(|e| match e {
                CoordEvent::Activated { node, parents, .. } => {
                    Some((node.0, parents.iter().map(|p| p.0).collect()))
                }
                _ => None,
            })
            .collect()
    }
}
