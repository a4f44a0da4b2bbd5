//! Figures of a locality run (issue 14 Must show 1–2): the adjusted Rand index
//! of the groups found against the true regions, percentiles, and the mean RTT
//! between overlay neighbours against a random overlay of the same degree.

use std::collections::BTreeMap;

fn pairs(n: u64) -> f64 {
    (n as f64) * (n as f64 - 1.0) / 2.0
}

/// Adjusted Rand index of two labellings of the same items (Hubert & Arabie).
/// 1 = identical partitions, ~0 = chance agreement.
pub fn adjusted_rand_index(truth: &[u64], found: &[u64]) -> f64 {
    assert_eq!(truth.len(), found.len(), "one label of each kind per item");
    let n = truth.len() as u64;
    if n < 2 {
        return 1.0;
    }
    let mut cells: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let mut rows: BTreeMap<u64, u64> = BTreeMap::new();
    let mut cols: BTreeMap<u64, u64> = BTreeMap::new();
    for (t, f) in truth.iter().zip(found) {
        *cells.entry((*t, *f)).or_default() += 1;
        *rows.entry(*t).or_default() += 1;
        *cols.entry(*f).or_default() += 1;
    }
    let index: f64 = cells.values().map(|c| pairs(*c)).sum();
    let a: f64 = rows.values().map(|c| pairs(*c)).sum();
    let b: f64 = cols.values().map(|c| pairs(*c)).sum();
    let expected = a * b / pairs(n);
    let max = (a + b) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// Nearest-rank percentile of unsorted values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ari_of_identical_relabelled_and_split_partitions() {
        let t = [0, 0, 0, 1, 1, 1, 2, 2, 2];
        assert!((adjusted_rand_index(&t, &[7, 7, 7, 5, 5, 5, 9, 9, 9]) - 1.0).abs() < 1e-12);
        // One region split in two: below 1, well above 0.
        let split = adjusted_rand_index(&t, &[7, 7, 8, 5, 5, 5, 9, 9, 9]);
        assert!(split > 0.5 && split < 1.0, "{split}");
        // Everything in one group: 0.
        assert!(adjusted_rand_index(&t, &[1; 9]).abs() < 1e-12);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 0.5), Some(3.0));
        assert_eq!(percentile(&v, 0.95), Some(5.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
