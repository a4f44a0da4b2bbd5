//! Waypoints only where a region has no preferred peers (D1, seed 003): the
//! operator's tier-1 relays start on the top level of every channel's overlay (no
//! peer is preferred yet); at each review a waypoint whose region now has a
//! preferred peer is retired to standby — when the overlay stays feasible
//! without its uplink (with a margin) — and told to drop its links (an empty
//! `ParentSet`); a standby waypoint whose region has lost its preferred peers
//! comes back. Retired waypoints still serve viewers the overlay ejects (C6).

use super::overlay::{MemberKind, PeerOverlay};
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use crate::registry::RegionId;
use std::collections::BTreeSet;
use tiercast_proto::{NodeId, PeerInfo, Timestamp};

/// A waypoint out of the overlay, ready to come back.
#[derive(Clone, Debug)]
pub struct StandbyWaypoint {
    pub info: std::sync::Arc<PeerInfo>,
    pub region: RegionId,
    pub uplink_bps: u64,
}

/// Supply must exceed demand by this much without a waypoint before it retires.
const RETIRE_MARGIN: f64 = 1.2;

impl PeerOverlay {
    fn regions_with_preferred(&self) -> BTreeSet<RegionId> {
        self.members
            .values()
            .filter(|m| m.top && m.kind == MemberKind::Peer)
            .map(|m| m.region)
            .collect()
    }

    /// Slots the overlay has and needs if `without` left (aggregate, C6).
    fn feasible_without(&self, without: NodeId) -> bool {
        let k = u64::from(self.k);
        let supply: u64 = self
            .members
            .iter()
            .filter(|(id, _)| **id != without)
            .map(|(_, m)| u64::from(m.slots))
            .sum();
        let top_after = self.top_order.iter().filter(|id| **id != without).count() as u64;
        let recovery: u64 = self.members.values().map(|m| m.recovery.len() as u64).sum();
        let demand = self.bottom_count() as u64 * k + top_after.saturating_sub(1) * k + recovery;
        supply as f64 >= demand as f64 * RETIRE_MARGIN
    }

    /// D1's periodic review of the waypoints; true when the top level changed.
    pub(crate) fn review_waypoints(
        &mut self,
        now: Timestamp,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let preferred = self.regions_with_preferred();
        let mut changed = false;
        let active: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.kind == MemberKind::Waypoint && preferred.contains(&m.region))
            .map(|m| m.info.id)
            .collect();
        for w in active {
            if !self.feasible_without(w) {
                continue;
            }
            let m = &self.members[&w];
            let standby = StandbyWaypoint {
                info: m.info.clone(),
                region: m.region,
                uplink_bps: m.uplink_bps,
            };
            self.remove(w, cfg, policy);
            self.standby.insert(w, standby);
            self.retired.push(w);
            self.stats.waypoints_retired += 1;
            changed = true;
        }
        let back: Vec<NodeId> = self
            .standby
            .iter()
            .filter(|(_, s)| !preferred.contains(&s.region))
            .map(|(id, _)| *id)
            .collect();
        for w in back {
            let Some(s) = self.standby.remove(&w) else {
                continue;
            };
            self.retired.retain(|r| *r != w);
            self.join(
                now,
                s.info,
                s.region,
                MemberKind::Waypoint,
                s.uplink_bps,
                cfg,
                policy,
            );
            self.stats.waypoints_recalled += 1;
            changed = true;
        }
        changed
    }

    /// Waypoints retired since the last call (each is told to drop its links).
    pub(crate) fn take_retired(&mut self) -> Vec<NodeId> {
        std::mem::take(&mut self.retired)
    }
}
