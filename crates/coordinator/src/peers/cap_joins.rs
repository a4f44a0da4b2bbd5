//! Joins into a region reached only across caps, paced (C3's network policy
//! `link_cap`, C6's admission). A peer that joins gets a start backlog from
//! each of its new parents (the newest keyframe on), on top of the rate the
//! overlay books for its links; when many join a capped region in one second —
//! the peers an ejection held out come back together — those bursts cross the
//! cap (`region-cap`: 20 joins at 84.5 s carried the pair 1.03–1.13 × its cap
//! in that second, with every booking under 95 % of it).
//!
//! So joins into such a region draw on a token bucket per region: it fills at
//! the part of its caps the overlay does not book (`1 − CAP_BOOKABLE_SHARE`),
//! holds one second of that (at least one join's worth), and a join takes one
//! second of the stream. A peer that finds it empty is told to come back
//! (turned away or waiting for room, as when it does not fit). Without a cap
//! nothing is kept.

use super::caps::CAP_BOOKABLE_SHARE;
use super::overlay::PeerOverlay;
use crate::registry::RegionId;
use tiercast_proto::Timestamp;

/// What one join is charged: this many seconds of the stream.
const JOIN_COST_S: f64 = 1.0;

impl PeerOverlay {
    /// The rate (bit/s) at which joins into `region` may spend: the unbooked
    /// part of its caps, when it is reached only across caps.
    fn cap_join_allowance_bps(&self, region: RegionId) -> Option<f64> {
        if !self.capped_group(region) {
            return None;
        }
        let caps: u64 = self
            .region_caps()
            .caps()
            .filter(|((a, b), _)| *a == region || *b == region)
            .map(|(_, cap)| cap)
            .sum();
        Some(caps as f64 * (1.0 - CAP_BOOKABLE_SHARE))
    }

    /// The bucket of `region` at `now`: (bits in it, its size), or `None`
    /// when joins into `region` are not paced.
    fn cap_join_bucket(&self, now: Timestamp, region: RegionId) -> Option<(f64, f64)> {
        let rate = self.cap_join_allowance_bps(region)?;
        let cost = self.rate_bps as f64 * JOIN_COST_S;
        let size = rate.max(cost);
        let bits = match self.cap_joins.get(&region) {
            Some((at, bits)) => {
                let dt = now.saturating_since(*at) as f64 / 1e6;
                (bits + rate * dt).min(size)
            }
            None => size,
        };
        Some((bits, size))
    }

    /// Whether a peer may join `region` now as far as the caps into it go.
    pub fn cap_join_allowed(&self, now: Timestamp, region: RegionId) -> bool {
        self.cap_join_bucket(now, region)
            .is_none_or(|(bits, _)| bits >= self.rate_bps as f64 * JOIN_COST_S)
    }

    /// A peer joins `region`: its start backlog is charged to the bucket.
    pub(crate) fn charge_cap_join(&mut self, now: Timestamp, region: RegionId) {
        if let Some((bits, _)) = self.cap_join_bucket(now, region) {
            let left = (bits - self.rate_bps as f64 * JOIN_COST_S).max(0.0);
            self.cap_joins.insert(region, (now, left));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PeerConfig;
    use crate::peers::overlay::MemberKind;
    use crate::peers::select::AllowAll;
    use crate::peers::tests::{info, RATE};
    use crate::registry::RegionId;
    use std::collections::BTreeMap;
    use tiercast_proto::Timestamp;

    #[test]
    fn joins_into_a_region_reached_only_across_a_cap_are_paced_by_its_unbooked_part() {
        let cfg = PeerConfig::default();
        let t0 = Timestamp(0);
        let mut o = crate::peers::tests::overlay_with(&cfg, t0);
        let (eu, us) = (RegionId(0), RegionId(1));
        o.join(
            t0,
            info(1),
            eu,
            MemberKind::Origin,
            8 * RATE,
            &cfg,
            &AllowAll,
        );
        o.join(t0, info(2), us, MemberKind::Peer, RATE, &cfg, &AllowAll);
        assert!(o.cap_join_allowed(t0, us), "no cap: never paced");
        o.charge_cap_join(t0, us);
        assert!(o.cap_join_allowed(t0, us), "no cap: nothing charged");
        // A cap of 60 streams' worth leaves 5 % of it unbooked: 3 streams a
        // second, so three joins at once, then one every third of a second.
        let mut caps = BTreeMap::new();
        caps.insert((eu, us), 60 * RATE);
        o.set_region_caps(caps);
        assert!(o.capped_group(us), "us is reached only across the cap");
        assert!(!o.capped_group(eu));
        let mut joined = 0;
        while o.cap_join_allowed(t0, us) {
            o.charge_cap_join(t0, us);
            joined += 1;
            assert!(joined < 10, "the bucket never ran dry");
        }
        assert_eq!(joined, 3, "one second of the unbooked part");
        assert!(o.cap_join_allowed(t0, eu), "eu is not behind the cap");
        let third = Timestamp(0).plus_millis(334);
        assert!(
            o.cap_join_allowed(third, us),
            "refilled after a third of a second"
        );
        o.charge_cap_join(third, us);
        assert!(!o.cap_join_allowed(third, us));
        // A cap too small for one join a second still lets one in now and then.
        let mut caps = BTreeMap::new();
        caps.insert((eu, us), 10 * RATE);
        o.set_region_caps(caps);
        let later = Timestamp(0).plus_millis(2_334);
        assert!(
            o.cap_join_allowed(later, us),
            "2 s at half a stream a second"
        );
        o.charge_cap_join(later, us);
        assert!(!o.cap_join_allowed(Timestamp(0).plus_millis(3_334), us));
    }
}
