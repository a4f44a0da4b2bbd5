//! The static overlay (V1, V11): every registered node with its role, tier, region,
//! capacity and address, its last heartbeat, and the coordinator's estimate of its
//! machine-wide load (last report plus viewers redirected there since). Relays are
//! indexed by (region, tier) with live counts, so the hot paths (a viewer's watch)
//! never scan all relays.

use super::last_report::LastReport;
use std::collections::BTreeMap;
use std::sync::Arc;
use tiercast_proto::{Heartbeat, NodeId, NodeRole, PeerInfo, Register, Tier, Timestamp};

/// A region's index in the registry (names are interned in order of appearance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RegionId(pub u16);

#[derive(Clone, Debug)]
pub struct NodeRecord {
    /// Its ids and addresses, shared with its overlay members (one copy a node).
    pub info: Arc<PeerInfo>,
    pub role: NodeRole,
    pub tier: Tier,
    /// Its region's name, shared with every node of the region (interned).
    pub region: Arc<str>,
    pub region_id: RegionId,
    pub capacity: u32,
    /// Upload it declared (peers; 0 when not declared).
    pub uplink_kbps: u32,
    /// A premium viewer (declared at registration; C3's `premium_first`).
    pub premium: bool,
    /// Its device class (declared at registration; C3's client rules).
    pub device_class: tiercast_proto::DeviceClass,
    pub registered_at: Timestamp,
    pub last_heard: Timestamp,
    pub alive: bool,
    pub reported_load: u32,
    /// Viewers sent here since the last report.
    pub pending: u32,
    /// What the coordinator reads of its last heartbeat ([`LastReport`]).
    pub last_heartbeat: Option<LastReport>,
    /// The process start it registered from (see `Register::incarnation`).
    pub incarnation: u64,
    /// It registered again, same process, after it was presumed gone (a partition
    /// healed): until its first heartbeat is taken in ([`crate::adopt`]) it is not
    /// activated afresh, and `last_heartbeat` is still the one from before.
    pub rejoined_at: Option<Timestamp>,
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
    nodes: super::node_table::NodeTable<NodeRecord>,
    /// Relays per (region, tier), in registration order (dead ones included).
    tiers: BTreeMap<(RegionId, Tier), Vec<NodeId>>,
    /// Live relays per (region, tier).
    live: BTreeMap<(RegionId, Tier), usize>,
    /// Origins and relays: the nodes that must heartbeat.
    heartbeaters: std::collections::BTreeSet<NodeId>,
    region_names: Vec<Arc<str>>,
    region_ids: BTreeMap<String, RegionId>,
}

/// Most distinct region names the registry interns: a registration naming one
/// more is refused (region names come from outside; issue 11's bounded maps).
pub const MAX_REGIONS: usize = 4096;

impl Registry {
    /// Whether a registration naming `name` fits ([`MAX_REGIONS`]).
    pub fn region_fits(&self, name: &str) -> bool {
        self.region_ids.contains_key(name) || self.region_names.len() < MAX_REGIONS
    }

    /// Distinct region names interned.
    pub fn region_count(&self) -> usize {
        self.region_names.len()
    }

    /// The id of a region name, interning it.
    pub fn intern_region(&mut self, name: &str) -> RegionId {
        if let Some(id) = self.region_ids.get(name) {
            return *id;
        }
        let id = RegionId(self.region_names.len().min(u16::MAX as usize) as u16);
        self.region_names.push(name.into());
        self.region_ids.insert(name.to_string(), id);
        id
    }

    /// Every region name interned, in the order first seen.
    pub fn region_names(&self) -> impl Iterator<Item = &str> {
        self.region_names.iter().map(|s| &**s)
    }

    pub fn region_id(&self, name: &str) -> Option<RegionId> {
        self.region_ids.get(name).copied()
    }

    pub fn region_name(&self, id: RegionId) -> &str {
        self.region_names
            .get(id.0 as usize)
            .map(|s| &**s)
            .unwrap_or("")
    }

    pub fn register(&mut self, now: Timestamp, id: NodeId, reg: Register) {
        // The same process back after it was presumed gone: what it last reported
        // is kept, so its links can be taken back (D7).
        let returning = self
            .nodes
            .get(&id)
            .filter(|old| !old.alive && old.incarnation == reg.incarnation && old.role == reg.role)
            .and_then(|old| old.last_heartbeat.clone());
        if let Some(old) = self.nodes.get(&id) {
            let key = (old.region_id, old.tier);
            let was_live_relay = old.alive && old.role == NodeRole::Relay;
            if let Some(v) = self.tiers.get_mut(&key) {
                v.retain(|n| *n != id);
            }
            if was_live_relay {
                self.dec_live(key);
            }
        }
        let region_id = self.intern_region(&reg.region);
        if reg.role == NodeRole::Viewer {
            self.heartbeaters.remove(&id);
        } else {
            self.heartbeaters.insert(id);
        }
        if reg.role == NodeRole::Relay {
            self.tiers
                .entry((region_id, reg.tier))
                .or_default()
                .push(id);
            *self.live.entry((region_id, reg.tier)).or_insert(0) += 1;
        }
        self.nodes.insert(
            id,
            NodeRecord {
                info: Arc::new(PeerInfo {
                    id,
                    addr: reg.addr,
                    http_addr: reg.http_addr,
                }),
                role: reg.role,
                tier: reg.tier,
                region: self
                    .region_names
                    .get(usize::from(region_id.0))
                    .cloned()
                    .unwrap_or_else(|| reg.region.as_str().into()),
                region_id,
                capacity: reg.capacity,
                uplink_kbps: reg.uplink_kbps,
                premium: reg.class.premium(),
                device_class: reg.class.device(),
                registered_at: now,
                last_heard: now,
                alive: true,
                reported_load: 0,
                pending: 0,
                rejoined_at: returning.as_ref().map(|_| now),
                last_heartbeat: returning,
                incarnation: reg.incarnation,
            },
        );
    }

    pub fn get(&self, id: NodeId) -> Option<&NodeRecord> {
        self.nodes.get(&id)
    }

    // No `get_mut`: other parts change a record only by the narrow methods below.

    /// A message from `id` arrived (any kind): it is heard from now.
    pub fn heard_from(&mut self, id: NodeId, now: Timestamp) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.last_heard = now;
        }
    }

    /// `n` more children were sent to `id` (a viewer redirected, a relay given
    /// it as a parent, children moved to it) and are not in its reported load
    /// yet: counted until its next heartbeat or load report.
    pub fn book_pending(&mut self, id: NodeId, n: u32) {
        if let Some(r) = self.nodes.get_mut(&id) {
            r.pending = r.pending.saturating_add(n);
        }
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

    /// Origins and relays (the nodes liveness watches), without scanning viewers.
    pub fn heartbeaters(&self) -> impl Iterator<Item = (&NodeId, &NodeRecord)> {
        self.heartbeaters
            .iter()
            .filter_map(|id| self.nodes.get_key_value(id))
    }

    /// Every node by ascending id (sorts: for a status page, not a hot path).
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &NodeRecord)> {
        self.nodes.iter()
    }

    fn dec_live(&mut self, key: (RegionId, Tier)) {
        if let Some(c) = self.live.get_mut(&key) {
            *c = c.saturating_sub(1);
        }
    }

    /// A node is presumed gone: it leaves the live indexes.
    pub fn mark_dead(&mut self, id: NodeId) {
        let Some(r) = self.nodes.get_mut(&id) else {
            return;
        };
        if !r.alive {
            return;
        }
        r.alive = false;
        if r.role == NodeRole::Relay {
            let key = (r.region_id, r.tier);
            self.dec_live(key);
        }
    }

    /// Live relays of a region's tier in registration order.
    pub fn relays_in(&self, region: RegionId, tier: Tier) -> Vec<NodeId> {
        self.tiers
            .get(&(region, tier))
            .map(|v| v.iter().copied().filter(|n| self.is_alive(*n)).collect())
            .unwrap_or_default()
    }

    /// Tiers of a region that have live relays, ascending.
    pub fn tiers_in(&self, region: RegionId) -> Vec<Tier> {
        self.live
            .range((region, 0)..=(region, Tier::MAX))
            .filter(|(_, c)| **c > 0)
            .map(|((_, t), _)| *t)
            .collect()
    }

    /// Regions that have live relays.
    pub fn regions_with_relays(&self) -> Vec<RegionId> {
        let mut v: Vec<RegionId> = self
            .live
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|((r, _), _)| *r)
            .collect();
        v.dedup();
        v
    }

    /// The bottom tier of a region (where its viewers enter).
    pub fn bottom_tier(&self, region: RegionId) -> Option<Tier> {
        self.tiers_in(region).last().copied()
    }

    /// The nearest tier above `tier` in the region with live relays (None: the origin).
    pub fn tier_above(&self, region: RegionId, tier: Tier) -> Option<Tier> {
        self.live
            .range((region, 0)..(region, tier))
            .rev()
            .find(|(_, c)| **c > 0)
            .map(|((_, t), _)| *t)
    }

    pub fn heard(&mut self, now: Timestamp, hb: Heartbeat) {
        if let Some(n) = self.nodes.get_mut(&hb.node) {
            n.last_heard = now;
            n.reported_load = hb.load;
            n.pending = 0;
            match &mut n.last_heartbeat {
                Some(last) => last.update(&hb),
                None => n.last_heartbeat = Some(LastReport::of(&hb)),
            }
            n.rejoined_at = None;
        }
    }

    pub fn set_load(&mut self, id: NodeId, load: u32) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.reported_load = load;
            n.pending = 0;
        }
    }
}
