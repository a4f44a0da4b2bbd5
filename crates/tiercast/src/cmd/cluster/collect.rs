//! metrics.json from the nodes' own reports (issue 13, Must show 1): the
//! simulator's field names and formulas (crates/sim/src/report.rs), computed over
//! the JSON every process wrote of its `/status` (`--report`). A crashed node's figures are those of its
//! last report (at most a second old). Fields a report lacks stay `null`, never 0.
//! The coordinator's sends are counted by the nodes that received them.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The figures of one run; the names are the simulator's where the meaning is.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterMetrics {
    pub scenario: String,
    pub seed: u64,
    pub world: &'static str,
    /// "namespaces" or "loopback" (and why, when it fell back).
    pub network: String,
    pub network_fallback: Option<String>,
    pub continuity_index: Option<f64>,
    pub blocks_expected: u64,
    pub blocks_missed: u64,
    pub startup_delay_ms_p50: Option<u64>,
    pub startup_delay_ms_p95: Option<u64>,
    pub startup_playable_ms_p50: Option<u64>,
    pub startup_playable_ms_p95: Option<u64>,
    pub viewers_started: u64,
    pub lag_ms_p50: Option<u64>,
    pub lag_ms_p95: Option<u64>,
    pub delivered_bytes: u64,
    pub origin_upload_bytes: Option<u64>,
    pub offload: Option<f64>,
    pub control_overhead: Option<f64>,
    pub duplicate_factor: Option<f64>,
    pub control_bytes: Option<u64>,
    pub media_bytes: Option<u64>,
    pub nodes: u64,
    pub viewers: u64,
    pub processes_started: u64,
    pub processes_crashed: u64,
    pub processes_left: u64,
    /// Started processes with no report at the end (each lowers what is counted).
    pub reports_missing: Vec<String>,
    pub wall_seconds: f64,
}

/// A merged lag histogram: `[lowest, highest, count]` buckets summed.
#[derive(Default)]
struct Lag {
    buckets: BTreeMap<(u64, u64), u64>,
    max: u64,
}

impl Lag {
    fn add(&mut self, h: &Value) {
        if let Some(bs) = h.get("buckets").and_then(Value::as_array) {
            for b in bs {
                let lo = b.get(0).and_then(Value::as_u64);
                let hi = b.get(1).and_then(Value::as_u64);
                let n = b.get(2).and_then(Value::as_u64);
                if let (Some(lo), Some(hi), Some(n)) = (lo, hi, n) {
                    *self.buckets.entry((lo, hi)).or_default() += n;
                }
            }
        }
        self.max = self
            .max
            .max(h.get("max_ms").and_then(Value::as_u64).unwrap_or(0));
    }

    /// The highest value of the bucket holding quantile `q`, capped at the maximum
    /// (never below the true quantile, as the nodes' own histograms).
    fn quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.buckets.values().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for ((_, hi), n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some((*hi).min(self.max.max(1)));
            }
        }
        Some(self.max)
    }
}

/// Nearest-rank quantile of exact samples.
fn quantile(v: &mut [u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

fn u(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

/// One node's report and what it was.
pub struct Report {
    pub role: &'static str,
    pub json: Value,
}

/// The figures over every report.
///
/// Formulas (the simulator's, crates/sim/src/report.rs; the mapping is in
/// docs/ARCHITECTURE.md "What a node reports"):
/// - continuity: played / (played + skipped) of the peers' playout stages, and
///   received / (received + missing) of the protocol viewers;
/// - startup and lag: each viewer's figures (peers: the playout stage's lag);
/// - offload: 1 − origin media out / Σ viewers' delivered bytes;
/// - duplicate factor: Σ block messages in / Σ unique blocks stored (every node);
/// - control overhead: (Σ control out + Σ control in from the coordinator) / Σ media out.
pub fn compute(reports: &[Report], m: &mut ClusterMetrics) {
    let (mut expected, mut delivered) = (0u64, 0u64);
    let mut startup = Vec::new();
    let mut playable = Vec::new();
    let mut lag = Lag::default();
    let (mut msgs, mut unique) = (0u64, 0u64);
    let (mut control, mut media) = (Some(0u64), Some(0u64));
    let mut delivered_bytes = 0u64;
    for r in reports {
        let j = &r.json;
        // A protocol viewer's figures are kept across relay switches in
        // `continuity`; every other node's in `channels`.
        let per_channel = if r.role == "viewer" {
            "continuity"
        } else {
            "channels"
        };
        for c in j
            .get(per_channel)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            unique += u(c, "unique_blocks_stored").unwrap_or(0);
            match r.role {
                "peer" => {
                    if let Some(p) = c.get("playout").filter(|p| !p.is_null()) {
                        let played = u(p, "played").unwrap_or(0);
                        let skipped = u(p, "skipped_missing").unwrap_or(0)
                            + u(p, "skipped_resync").unwrap_or(0);
                        expected += played + skipped;
                        delivered += played;
                        if let Some(l) = p.get("lag") {
                            lag.add(l);
                        }
                    }
                }
                "viewer" => {
                    let received = u(c, "received").unwrap_or(0);
                    expected += received + u(c, "missing").unwrap_or(0);
                    delivered += received;
                    if let Some(l) = c.get("lag") {
                        lag.add(l);
                    }
                }
                _ => continue,
            }
            delivered_bytes += u(c, "delivered_bytes").unwrap_or(0);
            startup.extend(u(c, "startup_ms"));
            playable.extend(u(c, "startup_playable_ms"));
        }
        msgs += u(j, "block_msgs_in").unwrap_or(0);
        if r.role == "origin" {
            m.origin_upload_bytes = u(j, "media_bytes_out");
        }
        let sent = u(j, "control_bytes_out").zip(u(j, "coordinator_bytes_in"));
        control = control.zip(sent).map(|(a, (o, c))| a + o + c);
        media = media.zip(u(j, "media_bytes_out")).map(|(a, b)| a + b);
    }
    m.delivered_bytes = delivered_bytes;
    m.blocks_expected = expected;
    m.blocks_missed = expected - delivered;
    m.continuity_index = (expected > 0).then(|| delivered as f64 / expected as f64);
    m.viewers_started = startup.len() as u64;
    m.startup_delay_ms_p50 = quantile(&mut startup, 0.50);
    m.startup_delay_ms_p95 = quantile(&mut startup, 0.95);
    m.startup_playable_ms_p50 = quantile(&mut playable, 0.50);
    m.startup_playable_ms_p95 = quantile(&mut playable, 0.95);
    m.lag_ms_p50 = lag.quantile(0.50);
    m.lag_ms_p95 = lag.quantile(0.95);
    m.offload = m
        .origin_upload_bytes
        .filter(|_| m.delivered_bytes > 0)
        .map(|o| 1.0 - o as f64 / m.delivered_bytes as f64);
    m.duplicate_factor = (unique > 0).then(|| msgs as f64 / unique as f64);
    m.control_bytes = control;
    m.media_bytes = media;
    m.control_overhead = control
        .zip(media)
        .filter(|(_, md)| *md > 0)
        .map(|(c, md)| c as f64 / md as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_follow_the_simulators_formulas() {
        let peer = json!({
            "media_bytes_out": 500, "control_bytes_out": 50, "coordinator_bytes_in": 40,
            "block_msgs_in": 12,
            "channels": [{"unique_blocks_stored": 10, "delivered_bytes": 1000,
              "startup_ms": 400, "startup_playable_ms": 900,
              "playout": {"played": 9, "skipped_missing": 1, "skipped_resync": 0,
                          "lag": {"max_ms": 700, "buckets": [[300, 319, 5], [640, 679, 5]]}}}]
        });
        let origin = json!({"media_bytes_out": 250, "control_bytes_out": 10,
                            "coordinator_bytes_in": 0, "block_msgs_in": 0, "channels": []});
        let reports = vec![
            Report {
                role: "peer",
                json: peer,
            },
            Report {
                role: "origin",
                json: origin,
            },
        ];
        let mut m = ClusterMetrics::default();
        compute(&reports, &mut m);
        assert_eq!(m.continuity_index, Some(0.9));
        assert_eq!(m.offload, Some(0.75));
        assert_eq!(m.duplicate_factor, Some(1.2));
        assert_eq!(m.control_overhead, Some(100.0 / 750.0));
        assert_eq!(m.lag_ms_p50, Some(319));
        assert_eq!(m.lag_ms_p95, Some(679));
        assert_eq!(m.startup_delay_ms_p95, Some(400));
    }

    #[test]
    fn a_missing_counter_stays_null() {
        let reports = vec![Report {
            role: "viewer",
            json: json!({}),
        }];
        let mut m = ClusterMetrics::default();
        compute(&reports, &mut m);
        assert_eq!(m.control_overhead, None);
        assert_eq!(m.continuity_index, None);
        assert_eq!(m.offload, None);
    }
}
