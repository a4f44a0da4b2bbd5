//! The static overlay (V1): every registered node with its role, tier, region,
//! capacity and address, its last heartbeat, and the coordinator's estimate of its
//! machine-wide load (last report plus viewers redirected there since).

use std::collections::BTreeMap;
use tiercast_proto::{Heartbeat, NodeId, NodeRole, PeerInfo, Register, Tier, Timestamp};

#[derive(Clone, Debug)]
pub struct NodeRecord {
    pub info: PeerInfo,
    pub role: NodeRole,
    pub tier: Tier,
    pub region: String,
    pub capacity: u32,
    pub registered_at: Timestamp,
    pub last_heard: Timestamp,
    pub alive: bool,
    pub reported_load: u32,
    /// Viewers sent here since the last report.
    pub pending: u32,
    pub last_heartbeat: Option<Heartbeat>,
}

impl NodeRecord {
    pub fn estimated_load(&self) -> u32 {
        self.reported_load.saturating_add(self.pending)
    }

    pub fn has_room(&self) -> bool {
        self.estimated_load() < self.capacity
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    nodes: BTreeMap<NodeId, NodeRecord>,
    /// Relays per tier, in registration order.
    tiers: BTreeMap<Tier, Vec<NodeId>>,
}

impl Registry {
    pub fn register(&mut self, now: Timestamp, id: NodeId, reg: Register) {
        if let Some(old) = self.nodes.get(&id) {
            let old_tier = old.tier;
            if let Some(v) = self.tiers.get_mut(&old_tier) {
                v.retain(|n| *n != id);
            }
        }
        if reg.role == NodeRole::Relay {
            self.tiers.entry(reg.tier).or_default().push(id);
        }
        self.nodes.insert(
            id,
            NodeRecord {
                info: PeerInfo {
                    id,
                    addr: reg.addr,
                    http_addr: reg.http_addr,
                },
                role: reg.role,
                tier: reg.tier,
                region: reg.region,
                capacity: reg.capacity,
                registered_at: now,
                last_heard: now,
                alive: true,
                reported_load: 0,
                pending: 0,
                last_heartbeat: None,
            },
        );
    }

    pub fn get(&self, id: NodeId) -> Option<&NodeRecord> {
        self.nodes.get(&id)
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut NodeRecord> {
        self.nodes.get_mut(&id)
    }

    pub fn is_alive(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.alive)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &NodeRecord)> {
        self.nodes.iter()
    }

    /// Live relays of a tier in registration order.
    pub fn relays_in_tier(&self, tier: Tier) -> Vec<NodeId> {
        self.tiers
            .get(&tier)
            .map(|v| v.iter().copied().filter(|n| self.is_alive(*n)).collect())
            .unwrap_or_default()
    }

    /// Tiers that have live relays, ascending.
    pub fn tiers(&self) -> Vec<Tier> {
        self.tiers
            .keys()
            .copied()
            .filter(|t| !self.relays_in_tier(*t).is_empty())
            .collect()
    }

    /// The bottom tier with live relays (where viewers enter).
    pub fn bottom_tier(&self) -> Option<Tier> {
        self.tiers().last().copied()
    }

    /// The nearest tier above `tier` with live relays (None: the origin).
    pub fn tier_above(&self, tier: Tier) -> Option<Tier> {
        self.tiers().into_iter().filter(|t| *t < tier).max()
    }

    pub fn heard(&mut self, now: Timestamp, hb: Heartbeat) {
        if let Some(n) = self.nodes.get_mut(&hb.node) {
            n.last_heard = now;
            n.reported_load = hb.load;
            n.pending = 0;
            n.last_heartbeat = Some(hb);
        }
    }

    pub fn set_load(&mut self, id: NodeId, load: u32) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.reported_load = load;
            n.pending = 0;
        }
    }
}
