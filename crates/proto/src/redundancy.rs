//! Redundancy per cluster for the D5 erasure groups (shared by the nodes and the
//! coordinator, which picks n per region): the least n that keeps a
//! group's loss under a target, given the cluster's measured block loss.

/// Upper bound on k+n a codec accepts (a shard index fits in one byte).
pub const MAX_GROUP_SHARDS: usize = 255;

/// The least n for which a group of k+n shards, each lost independently with
/// probability `loss`, loses more than n shards with probability ≤ `target_loss`.
/// Capped at `MAX_GROUP_SHARDS - k`; a NaN loss counts as total loss.
pub fn redundancy_for_loss(loss: f64, k: usize, target_loss: f64) -> usize {
    let cap = MAX_GROUP_SHARDS.saturating_sub(k);
    if loss.is_nan() || loss >= 1.0 {
        return cap;
    }
    if loss <= 0.0 || k == 0 {
        return 0;
    }
    (0..=cap)
        .find(|&n| group_loss_probability(loss, k, n) <= target_loss)
        .unwrap_or(cap)
}

/// P[more than n of the k+n shards are lost], shards lost independently with
/// probability `loss`. Summed in log space: (1−p)^255 underflows.
pub fn group_loss_probability(loss: f64, k: usize, n: usize) -> f64 {
    if loss.is_nan() || loss >= 1.0 {
        return if k > 0 { 1.0 } else { 0.0 };
    }
    if loss <= 0.0 {
        return 0.0;
    }
    let m = k + n;
    let (ln_p, ln_q) = (loss.ln(), (1.0 - loss).ln());
    let mut ln_fact = vec![0.0f64; m + 1];
    for i in 1..=m {
        ln_fact[i] = ln_fact[i - 1] + (i as f64).ln();
    }
    ((n + 1)..=m)
        .map(|i| {
            let ln_choose = ln_fact[m] - ln_fact[i] - ln_fact[m - i];
            (ln_choose + i as f64 * ln_p + (m - i) as f64 * ln_q).exp()
        })
        .sum::<f64>()
        .min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redundancy_follows_loss() {
        assert_eq!(redundancy_for_loss(0.0, 8, 1e-6), 0);
        assert_eq!(redundancy_for_loss(-0.5, 8, 1e-6), 0);
        assert_eq!(redundancy_for_loss(1.0, 8, 1e-6), MAX_GROUP_SHARDS - 8);
        assert_eq!(redundancy_for_loss(f64::NAN, 8, 1e-6), MAX_GROUP_SHARDS - 8);
        assert_eq!(group_loss_probability(1.0, 3, 2), 1.0);
        assert_eq!(group_loss_probability(0.0, 3, 2), 0.0);
        // k = 1: lose more than n of n+1 ⇔ lose all: 0.1^(n+1) ≤ 2e-3 ⇒ n = 2.
        assert_eq!(redundancy_for_loss(0.1, 1, 2e-3), 2);
        // k = 4, loss 1%: P[≥1 of 4] ≈ 3.9% > 1%, P[≥2 of 5] ≈ 0.098% ≤ 1% ⇒ n = 1.
        assert_eq!(redundancy_for_loss(0.01, 4, 0.01), 1);
        let high = redundancy_for_loss(0.99, 16, 1e-9);
        assert!(high > 0 && high <= MAX_GROUP_SHARDS - 16);
        let mut last = 0;
        for loss in [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3] {
            let n = redundancy_for_loss(loss, 10, 1e-4);
            assert!(n >= last, "more loss never needs less redundancy");
            last = n;
        }
    }

    proptest! {
        #[test]
        fn redundancy_is_the_least_that_meets_the_target(
            loss in 0.0005f64..0.5, k in 1usize..32, exp in 2i32..9,
        ) {
            let target = 10f64.powi(-exp);
            let n = redundancy_for_loss(loss, k, target);
            prop_assert!(n < MAX_GROUP_SHARDS - k, "reachable well below the cap");
            prop_assert!(group_loss_probability(loss, k, n) <= target);
            if n > 0 {
                prop_assert!(group_loss_probability(loss, k, n - 1) > target);
            }
        }
    }
}
