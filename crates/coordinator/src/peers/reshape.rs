//! A member's uplink changed from outside the overlay (C9, C3): the uplink
//! ledger's share of a node on several channels (`uplink_ledger/apply.rs`) and
//! the client policies' relaying hours (`policy/relay_rules.rs`) ask the overlay
//! through these methods; they never write its members.
//!
//! - [`PeerOverlay::set_member_uplink`] — a share grown or shrunk: in place while
//!   the member's booked children fit, else placed again with its children
//!   re-homed (C6), its premium, history and fed state kept.
//! - [`PeerOverlay::member_need_bps`] — what the member's booked children take
//!   of its uplink (the channel's use, which the ledger lends around).
//! - [`PeerOverlay::stop_relaying`] / [`PeerOverlay::resume_relaying`] — a peer
//!   that may not relay now is placed again with no uplink (a leaf in every tree,
//!   its children re-homed as when it leaves), and gets its uplink back later.

use super::overlay::{MemberKind, PeerOverlay};
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use tiercast_proto::{NodeId, Timestamp};

impl PeerOverlay {
    /// `id`'s kind and the uplink the overlay books for it, if a member.
    pub(crate) fn member_uplink(&self, id: NodeId) -> Option<(MemberKind, u64)> {
        self.members.get(&id).map(|m| (m.kind, m.uplink_bps))
    }

    /// The least uplink that still gives `id` the slots its booked children
    /// take (what the channel uses of the node, C9's lending), if a member.
    pub(crate) fn member_need_bps(&self, id: NodeId) -> Option<u64> {
        let m = self.members.get(&id)?;
        if m.used == 0 {
            return Some(0);
        }
        if self.slots_of(m.top, m.uplink_bps) < m.used {
            return Some(m.uplink_bps);
        }
        // Slots grow with the uplink: the least one giving `used` of them.
        let (mut lo, mut hi) = (0u64, m.uplink_bps);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.slots_of(m.top, mid) >= m.used {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(hi)
    }

    /// Whether `id` is a member or a waypoint on standby.
    pub(crate) fn holds(&self, id: NodeId) -> bool {
        self.members.contains_key(&id) || self.standby.contains_key(&id)
    }

    /// The peers (not the origin or waypoints) and their booked uplinks.
    pub(crate) fn peer_uplinks(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.members
            .iter()
            .filter(|(_, m)| m.kind == MemberKind::Peer)
            .map(|(id, m)| (*id, m.uplink_bps))
    }

    /// The overlay books `uplink` for `id` (a peer or a waypoint; a waypoint on
    /// standby stores it for its return): in place while its booked children
    /// fit, else placed again and its children re-homed. True when a member
    /// changed (its moves are then to be told).
    pub(crate) fn set_member_uplink(
        &mut self,
        now: Timestamp,
        id: NodeId,
        uplink: u64,
        standby_uplink: u64,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        if let Some(s) = self.standby.get_mut(&id) {
            s.uplink_bps = standby_uplink;
        }
        let Some(m) = self.members.get(&id) else {
            return false;
        };
        if !matches!(m.kind, MemberKind::Peer | MemberKind::Waypoint) || m.uplink_bps == uplink {
            return false;
        }
        let kind = m.kind;
        let slots = self.slots_of(m.top, uplink);
        if slots >= m.used {
            self.update(id, |m| {
                m.uplink_bps = uplink;
                m.slots = slots;
            });
        } else {
            let (info, region) = (m.info.clone(), m.region);
            let (premium, history, proven) = (m.premium, m.history, m.proven);
            self.remove(id, cfg, policy);
            self.join(now, info, region, kind, uplink, cfg, policy);
            self.update(id, |m| {
                m.premium = premium;
                m.history = history;
                m.proven = proven;
            });
        }
        true
    }

    /// `id` may not relay now: placed again with no uplink, its children
    /// re-homed as when it leaves; its premium and history kept.
    pub(crate) fn stop_relaying(
        &mut self,
        now: Timestamp,
        id: NodeId,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) {
        let Some(m) = self.members.get(&id) else {
            return;
        };
        let (info, region, premium, history) = (m.info.clone(), m.region, m.premium, m.history);
        self.remove(id, cfg, policy);
        self.join(now, info, region, MemberKind::Peer, 0, cfg, policy);
        self.update(id, |m| {
            m.premium = premium;
            m.history = history;
        });
    }

    /// `id` may relay again: its uplink `declared` (its channel's share) is
    /// booked again, in place.
    pub(crate) fn resume_relaying(&mut self, id: NodeId, declared: u64) {
        let slots = self.slots_for(declared);
        self.update(id, |m| {
            m.uplink_bps = declared;
            m.slots = slots;
        });
    }
}
