//! From the policy store to the managers (C3 → C4, C5): the network policy's caps
//! on links between regions, in the registry's region ids, handed to every peer
//! overlay at each tick and right after policies are installed — so a changed cap
//! is in force within one heartbeat interval — and the links over a cap shed.
//!
//! Several managers (one per channel here) share a cap through the reservation
//! ledger (C5, [`crate::reservation`]): each holds one reservation per capped link,
//! the rate its links across book, refreshed at every tick (soft state: a manager
//! gone stops refreshing and its reservation expires after three heartbeat
//! intervals); a manager may book up to the cap less what the others hold — what
//! they book, or with `reservations_measured` what their links across really
//! carried at their children's last heartbeats (the network-condition monitor's
//! measure; until it has one, what they book).
//!
//! Caps apply to viewers of the free class; a cap's declared `fallback`, when it
//! covers premium viewers, is handed over beside it as the premium-only cap
//! (`peers/cap_fallback.rs`): a premium peer left with no parent by the cap
//! crosses within it.

use crate::coordinator::Coordinator;
use crate::peers::caps::{region_pair, RegionPair};
use crate::policy::ViewerClass;
use crate::registry::RegionId;
use crate::reservation::{ConnId, LinkKey, ManagerId};
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, Timestamp};

impl Coordinator {
    /// The caps in force between every two regions the registry knows (bit/s).
    pub fn region_caps_bps(&self) -> BTreeMap<RegionPair, u64> {
        self.region_caps_for(false)
    }

    /// The premium fall-backs declared for those caps (bit/s): a pair is in it
    /// when its cap names a `fallback` that covers premium viewers.
    pub fn region_cap_fallbacks_bps(&self) -> BTreeMap<RegionPair, u64> {
        self.region_caps_for(true)
    }

    fn region_caps_for(&self, fallback: bool) -> BTreeMap<RegionPair, u64> {
        let mut caps = BTreeMap::new();
        let names: Vec<(RegionId, &str)> = self
            .registry
            .region_names()
            .enumerate()
            .map(|(i, n)| (RegionId(i as u16), n))
            .collect();
        for (i, (a, an)) in names.iter().enumerate() {
            for (b, bn) in &names[i + 1..] {
                let Some(pair) = region_pair(*a, *b) else {
                    continue;
                };
                let policies = &self.policy.policies;
                let Some(cap) = policies.region_link_cap(an, bn, ViewerClass::Free) else {
                    continue;
                };
                let cap = if fallback {
                    match policies.cap_fallback(&cap, ViewerClass::Premium) {
                        Some(f) => f,
                        None => continue,
                    }
                } else {
                    cap
                };
                caps.insert(pair, (cap.mbps * 1e6).round().max(0.0) as u64);
            }
        }
        caps
    }

    /// Every peer overlay takes its share of the caps in force, sheds what is
    /// over it, and refreshes its reservations; `policy_changed`: a new policy
    /// file was just installed, and every overlay is recomputed in full with
    /// it (C7: any policy change is a trigger — caps, affinity groups, caps
    /// between nodes, peering, relaying rules).
    pub(crate) fn enforce_link_caps(&mut self, now: Timestamp, policy_changed: bool) {
        let caps = self.region_caps_bps();
        let fallbacks = self.region_cap_fallbacks_bps();
        if !policy_changed
            && caps.is_empty()
            && self.reservations.is_empty()
            && !self.any_overlay_capped()
        {
            return;
        }
        self.reservations.set_caps(
            now,
            caps.iter()
                .filter_map(|(p, c)| Some((LinkKey::regions(p.0, p.1)?, *c))),
        );
        self.reservations.handle_timeout(now);
        let pc = self.cfg.peers.clone();
        let rules = self.parent_rules.clone();
        let policy = crate::policy::parent_rules::parent_policy(&rules);
        let chans: Vec<ChannelId> = self.peers.keys().copied().collect();
        for c in chans {
            let mgr = ManagerId(c.0);
            let conn = manager_conn(c);
            let others = |p: &RegionPair| -> Option<u64> {
                let link = LinkKey::regions(p.0, p.1)?;
                let own = self
                    .reservations
                    .reservation(link, conn)
                    .map_or(0, |r| r.counted_bps);
                Some(self.reservations.booked(link).saturating_sub(own))
            };
            let allowed: BTreeMap<RegionPair, u64> = caps
                .iter()
                .filter_map(|(p, cap)| Some((*p, cap.saturating_sub(others(p)?))))
                .collect();
            let allowed_fallbacks: BTreeMap<RegionPair, u64> = fallbacks
                .iter()
                .filter_map(|(p, cap)| Some((*p, cap.saturating_sub(others(p)?))))
                .collect();
            let Some(o) = self.peers.get_mut(&c) else {
                continue;
            };
            if o.set_region_caps(allowed) {
                // A cap below what crosses: its hand-over's ceiling first, so
                // the recomputation below builds within it (C3, C5).
                o.begin_cap_handovers(now);
            }
            o.end_cap_handovers(now);
            o.set_region_cap_fallbacks(allowed_fallbacks);
            if policy_changed {
                // C7: a policy change is a trigger. The overlay is rebuilt at once
                // with the new rules (a region reached only across caps becomes a
                // group of its own; links a new rule refuses are made anew),
                // rather than shed now and rebuilt when its members have waited:
                // one hand-over, not two.
                let ejected = o.full_recompute(now, &pc, policy);
                self.recomputed(now, c, ejected);
            }
            let Some(o) = self.peers.get_mut(&c) else {
                continue;
            };
            let shed = o.shed_over_caps(&pc, policy);
            let booked: Vec<(LinkKey, u64)> = caps
                .keys()
                .filter_map(|p| Some((LinkKey::regions(p.0, p.1)?, o.booked_across(*p))))
                .collect();
            for (link, bps) in booked {
                // Within its allowance by construction; a refusal (another
                // manager booked in between) leaves the old reservation, and the
                // next tick's allowance sheds the difference.
                let _ = self.reservations.reserve(now, mgr, link, conn, bps);
                if self.cfg.reservations_measured {
                    let carried = self.carried_across_bps(c, link);
                    self.reservations.refresh(now, mgr, link, conn, carried);
                }
            }
            if shed > 0 {
                self.flush_peers(now, c);
            }
        }
    }

    /// `channel` was retired: its manager's reservations on every capped link
    /// are released at once (not left to expire).
    pub(crate) fn release_channel_reservations(&mut self, channel: ChannelId) {
        let (mgr, conn) = (ManagerId(channel.0), manager_conn(channel));
        let links: Vec<LinkKey> = self.reservations.links().map(|(l, _, _)| l).collect();
        for link in links {
            self.reservations.release(mgr, link, conn);
        }
    }

    /// `channel`'s manager's reservation on the capped `link`, if it holds one.
    pub fn channel_reservation(
        &self,
        channel: ChannelId,
        link: LinkKey,
    ) -> Option<&crate::reservation::Reservation> {
        self.reservations.reservation(link, manager_conn(channel))
    }

    /// Capped links on which `channel`'s manager holds a reservation.
    pub fn channel_reservations(&self, channel: ChannelId) -> usize {
        let conn = manager_conn(channel);
        self.reservations
            .links()
            .filter(|(l, _, _)| self.reservations.reservation(*l, conn).is_some())
            .count()
    }

    /// C5's measured mode: what `channel`'s links across `link` (a pair of
    /// regions) really carried at their children's last heartbeats
    /// (`NetworkMonitor::carried_between_bps`); `None` until that is known.
    fn carried_across_bps(&self, channel: ChannelId, link: LinkKey) -> Option<u64> {
        let (a, b) = link.region_ends()?;
        let stream_bps = u64::from(self.cfg.peers.stream_rate_kbps) * 1000;
        self.network.carried_between_bps(channel, a, b, stream_bps)
    }

    fn any_overlay_capped(&self) -> bool {
        self.peers.values().any(|o| o.region_caps().any())
    }

    /// The reservation ledger (read-only).
    pub fn reservations(&self) -> &crate::reservation::Reservations {
        &self.reservations
    }
}

/// A manager's one reservation on a link: the aggregate of its links across it.
fn manager_conn(channel: ChannelId) -> ConnId {
    ConnId {
        child: tiercast_proto::NodeId(channel.0),
        parent: tiercast_proto::NodeId(0),
        tree: ConnId::WHOLE_STREAM,
    }
}
