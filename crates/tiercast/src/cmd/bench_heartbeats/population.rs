//! The population of `tiercast bench heartbeats` (issue 12, X7/D8; D2-D4, C6):
//! one origin announcing the channels, a few tier-1 relays (the overlays'
//! waypoints, D1) and peers in a few regions with uplinks from a mix, each
//! registering and asking to watch its channel with the messages a real node
//! sends (`Register`, `Watch`), straight into a sans-IO `Coordinator`.

use tiercast_coordinator::{Coordinator, CoordinatorConfig};
use tiercast_proto::{Message, NodeClass, NodeId, NodeRole, Register, Timestamp};

/// Regions the nodes are spread over.
pub const REGIONS: [&str; 4] = ["eu", "us", "asia", "sa"];

/// Declared peer uplinks (kbit/s) and their weights (of 100): mean 5.45 Mbit/s
/// against the overlay's 2 Mbit/s stream.
pub const UPLINK_MIX: [(u32, u32); 5] = [
    (1_000, 15),
    (2_000, 25),
    (4_000, 30),
    (8_000, 20),
    (20_000, 10),
];

/// Child links a peer machine accepts (its declared capacity).
pub const PEER_CAPACITY: u32 = 64;

/// Who is who: node 1 is the origin, 2..=1+relays the relays, then the peers.
#[derive(Clone, Debug)]
pub struct Plan {
    pub nodes: u32,
    pub relays: u32,
    pub peers_per_channel: u32,
}

impl Plan {
    pub const ORIGIN: NodeId = NodeId(1);

    pub fn peers(&self) -> u32 {
        self.nodes - 1 - self.relays
    }

    pub fn channels(&self) -> u32 {
        self.peers().div_ceil(self.peers_per_channel).max(1)
    }

    pub fn channel_name(c: u32) -> String {
        format!("bench-{c}")
    }

    /// Every node id, the origin first.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        (1..=self.nodes).map(NodeId)
    }

    pub fn first_peer(&self) -> u32 {
        2 + self.relays
    }

    pub fn role(&self, id: NodeId) -> NodeRole {
        match id.0 {
            1 => NodeRole::Origin,
            i if i < self.first_peer() => NodeRole::Relay,
            _ => NodeRole::Peer,
        }
    }

    /// The channel (0-based) peer `id` watches: blocks of `peers_per_channel`.
    pub fn channel_of(&self, id: NodeId) -> u32 {
        (id.0 - self.first_peer()) / self.peers_per_channel
    }

    pub fn region(id: NodeId) -> &'static str {
        REGIONS[(mix(u64::from(id.0)) % REGIONS.len() as u64) as usize]
    }

    pub fn uplink_kbps(id: NodeId) -> u32 {
        let mut pick = (mix(u64::from(id.0) ^ 0x5eed) % 100) as u32;
        for (kbps, weight) in UPLINK_MIX {
            if pick < weight {
                return kbps;
            }
            pick -= weight;
        }
        UPLINK_MIX[0].0
    }

    pub fn register(&self, id: NodeId) -> Register {
        let role = self.role(id);
        let (tier, capacity, uplink_kbps) = match role {
            NodeRole::Origin => (0, 100, 0),
            NodeRole::Relay => (1, 1_000, 0),
            _ => (0, PEER_CAPACITY, Self::uplink_kbps(id)),
        };
        Register {
            role,
            tier,
            region: Self::region(id).to_string(),
            capacity,
            addr: format!("bench:{}", id.0),
            http_addr: format!("bench:{}", id.0),
            uplink_kbps,
            class: NodeClass::default(),
            incarnation: 1,
            manager_id: 0,
        }
    }
}

/// A 64-bit mix (splitmix64's finaliser): spreads ids over regions, uplinks,
/// clocks and send order, the same on every run.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The coordinator's configuration for the bench: heartbeats every
/// `interval_ms`, presumed crashed after 3.5 intervals (the default's ratio),
/// room for every node and channel.
pub fn config(plan: &Plan, interval_ms: u64) -> Result<CoordinatorConfig, String> {
    let mut cfg = CoordinatorConfig::default();
    cfg.heartbeat_interval_ms = interval_ms;
    cfg.heartbeat_timeout_ms = interval_ms.saturating_mul(7) / 2;
    cfg.channel_retire_after_ms = cfg.channel_retire_after_ms.max(cfg.heartbeat_timeout_ms);
    cfg.max_nodes = cfg.max_nodes.max(plan.nodes as usize + 1);
    cfg.max_channels = cfg.max_channels.max(plan.channels() as usize + 1);
    cfg.validate()?;
    Ok(cfg)
}

/// What the coordinator sent and logged, drained as a driver drains it.
#[derive(Default)]
pub struct Drained {
    pub transmits: Vec<tiercast_coordinator::Transmit>,
    pub events: u64,
}

impl Drained {
    pub fn take(&mut self, co: &mut Coordinator) {
        while let Some(t) = co.poll_transmit() {
            self.transmits.push(t);
        }
        while co.poll_event().is_some() {
            self.events += 1;
        }
    }
}

/// Register the origin and relays, announce the channels, then every peer
/// registers and watches, the clock moving from 0 to `span_us` over the joins
/// with the coordinator's timer run as a driver runs it; the set-up ends with
/// the coordinator's first tick after the last join. `on_out` sees every
/// batch of outputs (drained after each node); `progress` is told each tenth.
pub fn populate(
    co: &mut Coordinator,
    plan: &Plan,
    span_us: u64,
    mut on_out: impl FnMut(&mut Drained),
    mut progress: impl FnMut(u32),
) -> Timestamp {
    let mut out = Drained::default();
    let mut now = Timestamp::ZERO;
    let mut step = |co: &mut Coordinator, now: Timestamp, from: NodeId, msg: Message| {
        co.handle_message(now, from, msg);
        out.take(co);
        on_out(&mut out);
    };
    for id in plan.ids().take(plan.first_peer() as usize - 1) {
        step(co, now, id, Message::Register(plan.register(id)));
    }
    for c in 0..plan.channels() {
        let announce = Message::Announce {
            channel_name: Plan::channel_name(c),
            public_key: [7; 32],
            channel: None,
            backup: false,
        };
        step(co, now, Plan::ORIGIN, announce);
    }
    let peers = u64::from(plan.peers());
    let mut told = 0;
    for (i, id) in plan.ids().skip(plan.first_peer() as usize - 1).enumerate() {
        now = Timestamp(span_us * i as u64 / peers.max(1));
        while let Some(t) = co.poll_timeout().filter(|t| *t <= now) {
            co.handle_timeout(t);
        }
        step(co, now, id, Message::Register(plan.register(id)));
        let watch = Message::Watch {
            channel_name: Plan::channel_name(plan.channel_of(id)),
            region: Plan::region(id).to_string(),
        };
        step(co, now, id, watch);
        let tenth = ((i as u64 + 1) * 10 / peers.max(1)) as u32;
        if tenth > told {
            told = tenth;
            progress(tenth * 10);
        }
    }
    if let Some(t) = co.poll_timeout() {
        now = now.max(t);
        co.handle_timeout(now);
        out.take(co);
        on_out(&mut out);
    }
    now
}
