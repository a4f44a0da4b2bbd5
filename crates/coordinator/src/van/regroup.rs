//! Regrouping relays (V7, seed 001 [0060]–[0061], Figure 13): when the tier's room
//! covers the load predicted for `sp`, DISTRIBUTE looks for existing relays that
//! can take new viewers for the next ΔT instead of activating one. Each relay s
//! gets MIN_s, the least group size m for which its share SysLinRate/m fits; an
//! eligible group of size l exists when at least l relays have MIN_s ≤ l, and the
//! first l of them are taken.

use crate::coordinator::Coordinator;
use tiercast_proto::{ChannelId, NodeId, Tier};

/// MIN_s of [0061]: the least group size m for which relay s can take its share
/// SysLinRate/m of the logins for ΔT — `SysLinRate/m < Loffrate_s` or
/// `ΔT·(SysLinRate/m − Loffrate_s) < Max_s − Load_s`, i.e. m > SysLinRate /
/// (Loffrate_s + room/ΔT). None when the relay has neither room nor logoffs.
pub fn min_group_size(
    sys_login_rate: f64,
    logoff_rate: f64,
    room: f64,
    delta_t_ms: f64,
) -> Option<usize> {
    let absorbs = logoff_rate.max(0.0) + room.max(0.0) / delta_t_ms.max(1.0);
    if absorbs <= 0.0 {
        return None;
    }
    let ratio = sys_login_rate.max(0.0) / absorbs;
    if !ratio.is_finite() || ratio >= 1e9 {
        return None;
    }
    Some(ratio.floor() as usize + 1)
}

/// The eligible group of [0061]: the least l such that at least l relays have
/// MIN_s ≤ l; the first l of those (in the given order).
pub fn eligible_group(mins: &[(NodeId, Option<usize>)]) -> Option<Vec<NodeId>> {
    (1..=mins.len()).find_map(|l| {
        let fit: Vec<NodeId> = mins
            .iter()
            .filter(|(_, m)| m.is_some_and(|m| m <= l))
            .map(|(n, _)| *n)
            .collect();
        (fit.len() >= l).then(|| fit[..l].to_vec())
    })
}

impl Coordinator {
    /// MIN_s of every active relay of the tier but `except`, most recent first.
    pub(crate) fn min_sizes(
        &self,
        channel: ChannelId,
        tier: Tier,
        except: NodeId,
    ) -> Vec<(NodeId, Option<usize>)> {
        let rate = self.forecast.sys_login_rate(channel, tier);
        let dt = self.cfg.delta_t_ms as f64;
        self.channels
            .get(&channel)
            .map(|m| m.active_in_tier(tier))
            .unwrap_or_default()
            .into_iter()
            .filter(|n| *n != except && self.registry.is_alive(*n))
            .map(|n| {
                let loff = self.forecast.relay_logoff_rate(n);
                (
                    n,
                    min_group_size(rate, loff, self.room_for(n, channel) as f64, dt),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_s_follows_the_seed_conditions() {
        // No logins expected: any relay with room or logoffs fits alone.
        assert_eq!(min_group_size(0.0, 0.0, 3.0, 10_000.0), Some(1));
        assert_eq!(min_group_size(0.0, 0.0, 0.0, 10_000.0), None);
        // 0.01 logins/ms, ΔT = 10 s: a relay with 50 free slots absorbs 0.005/ms, so
        // groups of m > 2 (m = 3) keep it under its max for ΔT.
        assert_eq!(min_group_size(0.01, 0.0, 50.0, 10_000.0), Some(3));
        // Its logoffs (0.005/ms) add to what it absorbs: m > 1, m = 2.
        assert_eq!(min_group_size(0.01, 0.005, 50.0, 10_000.0), Some(2));
        // Full, but logoffs exceed its share when m > 0.01/0.004 = 2.5: m = 3.
        assert_eq!(min_group_size(0.01, 0.004, 0.0, 10_000.0), Some(3));
        // Check the definition directly for m = 3 and m = 2.
        let ok = |m: f64| 0.01 / m < 0.004 || 10_000.0 * (0.01 / m - 0.004) < 0.0;
        assert!(ok(3.0) && !ok(2.0));
    }

    #[test]
    fn eligible_group_is_the_least_l_with_l_members() {
        let n = NodeId;
        // MIN_s: 3, 1, 2, None, 2 -> l = 1 fits one relay (n2): group [n2].
        let mins = vec![
            (n(1), Some(3)),
            (n(2), Some(1)),
            (n(3), Some(2)),
            (n(4), None),
            (n(5), Some(2)),
        ];
        assert_eq!(eligible_group(&mins), Some(vec![n(2)]));
        // MIN_s: 3, 3, 2, 3 -> l = 1: none; l = 2: one (n3); l = 3: four -> first three.
        let mins = vec![
            (n(1), Some(3)),
            (n(2), Some(3)),
            (n(3), Some(2)),
            (n(4), Some(3)),
        ];
        assert_eq!(eligible_group(&mins), Some(vec![n(1), n(2), n(3)]));
        // Not enough relays for any l.
        let mins = vec![(n(1), Some(3)), (n(2), Some(5))];
        assert_eq!(eligible_group(&mins), None);
        assert_eq!(eligible_group(&[]), None);
    }
}
