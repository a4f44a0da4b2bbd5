//! Operators' policies in a scenario (C3, issue 11): `[[policies]]` steps applied
//! to the coordinator at their time, as `tiercast policy apply` applies a file to
//! a running one (checked against the regions and channel the coordinator knows
//! then: a region none of whose nodes has registered yet is refused), and the
//! media carried between every two regions in each second of the timeline,
//! against the caps in force (blocks data plane: bytes counted over the time the
//! sender's uplink transmits them, as the origin's upload is).
//!
//! A second `[k, k+1)` is held to a cap when the cap was in force at `k − 1`, `k`
//! and `k + 1` (against the largest of the three): one second of grace after a
//! cap comes in force, for the coordinator's tick and the nodes' hand-overs. The
//! seconds over are listed (the first 100).

use crate::scenario::Scenario;
use crate::upload::UploadMeter;
use crate::world::Simulation;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tiercast_coordinator::policy::{check, Known};

/// One policy file applied at `at_s` (the whole file replaces the one in force).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyStep {
    pub at_s: f64,
    /// The policy file (`docs/POLICIES.md`).
    pub text: String,
}

/// A step refused by a check against the scenario's own regions and channel.
pub(crate) fn validate_step(sc: &Scenario, step: &PolicyStep) -> Result<(), String> {
    if !(step.at_s.is_finite() && step.at_s >= 0.0 && step.at_s <= sc.duration_s) {
        return Err(format!("at_s must be within 0..={}", sc.duration_s));
    }
    let known = Known {
        regions: Some(sc.regions.iter().map(|r| r.name.clone()).collect()),
        channels: Some(BTreeSet::from([sc.stream.channel.clone()])),
    };
    check(&step.text, &known)
        .map(|_| ())
        .map_err(|e| format!("text, line {}: {}", e.line, e.reason))
}

/// Media bytes between region pairs per second, and the caps sampled each second.
#[derive(Default)]
pub(crate) struct RegionPairMeter {
    sent: BTreeMap<(u16, u16), UploadMeter>,
    /// At the sample of time `k` s: the caps in force, by region names (bit/s).
    caps_at: BTreeMap<u64, BTreeMap<(String, String), u64>>,
    /// Each step applied: (time s, rules in force, or the refusal).
    pub applied: Vec<(f64, Result<usize, String>)>,
}

/// One region pair's traffic against its cap.
#[derive(Clone, Debug, Serialize)]
pub struct PairFigures {
    pub regions: [String; 2],
    /// The cap at the end of the run (bit/s; none: uncapped then).
    pub cap_bps: Option<u64>,
    /// The most any second carried between the two regions (bit/s), whether
    /// capped or not.
    pub max_second_bps: f64,
    /// The most a second held to a cap carried, over that cap (1 = at the cap).
    pub max_ratio_to_cap: Option<f64>,
    /// Seconds held to a cap, and those over it.
    pub capped_seconds: u64,
    pub seconds_over_cap: u64,
    /// The seconds over (their start, s; the first 100).
    pub over_cap_at_s: Vec<u64>,
    /// The mean of the seconds held to a cap, over their cap (1 = at the cap).
    pub mean_ratio_to_cap: Option<f64>,
    pub bytes: f64,
}

/// The policies' figures in metrics.json.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyFigures {
    /// Each step: when, and the rules it installed or why it was refused.
    pub steps: Vec<String>,
    pub pairs: Vec<PairFigures>,
    /// Substream links the overlay shed to keep within a cap.
    pub links_shed: u64,
}

impl RegionPairMeter {
    pub(crate) fn sent(&mut self, a: u16, b: u16, start: u64, end: u64, bytes: u64) {
        let key = if a < b { (a, b) } else { (b, a) };
        self.sent.entry(key).or_default().sent(start, end, bytes);
    }
}

impl Simulation {
    /// Applies policy step `i` as an operator would.
    pub(crate) fn apply_policy_step(&mut self, i: u16) {
        let Some(step) = self.sc.policies.get(usize::from(i)).cloned() else {
            return;
        };
        let now = tiercast_proto::Timestamp(self.now);
        let r = self
            .coord
            .apply_policies(now, &step.text)
            .map_err(|e| format!("line {}: {}", e.line, e.reason));
        self.pair_meter.applied.push((self.now as f64 / 1e6, r));
        self.drain_coord();
    }

    /// Media between two regions (blocks plane), counted as the uplink sends it.
    pub(crate) fn meter_pair(&mut self, from: u32, to: u32, start: u64, end: u64, bytes: u64) {
        if self.sc.policies.is_empty() {
            return;
        }
        let (a, b) = (self.net.region_of(from), self.net.region_of(to));
        if a != b {
            self.pair_meter.sent(a, b, start, end, bytes);
        }
    }

    /// The caps in force now, by region names (each second's sample).
    pub(crate) fn sample_caps(&mut self) {
        if self.sc.policies.is_empty() {
            return;
        }
        let names: Vec<String> = self
            .coord
            .registry()
            .region_names()
            .map(str::to_string)
            .collect();
        let caps = self
            .coord
            .region_caps_bps()
            .into_iter()
            .filter_map(|((a, b), cap)| {
                let (a, b) = (names.get(usize::from(a.0))?, names.get(usize::from(b.0))?);
                let key = if a < b {
                    (a.clone(), b.clone())
                } else {
                    (b.clone(), a.clone())
                };
                Some((key, cap))
            })
            .collect();
        self.pair_meter.caps_at.insert(self.now / 1_000_000, caps);
    }

    /// Figures per region pair, for metrics.json; `None` without policy steps.
    pub(crate) fn policy_figures(&self) -> Option<PolicyFigures> {
        if self.sc.policies.is_empty() {
            return None;
        }
        let m = &self.pair_meter;
        let seconds = self.end / 1_000_000;
        let last_caps = m.caps_at.values().next_back();
        let mut pairs = Vec::new();
        for ((a, b), meter) in &m.sent {
            let (an, bn) = (
                self.net.regions().name(*a).to_string(),
                self.net.regions().name(*b).to_string(),
            );
            let key = if an < bn {
                (an.clone(), bn.clone())
            } else {
                (bn.clone(), an.clone())
            };
            let cap_at = |k: u64| m.caps_at.get(&k).and_then(|c| c.get(&key)).copied();
            let mut f = PairFigures {
                regions: [key.0.clone(), key.1.clone()],
                cap_bps: last_caps.and_then(|c| c.get(&key)).copied(),
                max_second_bps: 0.0,
                max_ratio_to_cap: None,
                capped_seconds: 0,
                seconds_over_cap: 0,
                over_cap_at_s: Vec::new(),
                mean_ratio_to_cap: None,
                bytes: meter.total_until(self.end),
            };
            let mut ratio_sum = 0.0;
            for k in 0..seconds {
                let bps = meter.second(k) * 8.0;
                f.max_second_bps = f.max_second_bps.max(bps);
                let (Some(c_1), Some(c0), Some(c1)) =
                    (cap_at(k.wrapping_sub(1)), cap_at(k), cap_at(k + 1))
                else {
                    continue;
                };
                let cap = c_1.max(c0).max(c1) as f64;
                f.capped_seconds += 1;
                let r = bps / cap.max(1.0);
                ratio_sum += r;
                f.max_ratio_to_cap = Some(f.max_ratio_to_cap.map_or(r, |x: f64| x.max(r)));
                if bps > cap {
                    f.seconds_over_cap += 1;
                    if f.over_cap_at_s.len() < 100 {
                        f.over_cap_at_s.push(k);
                    }
                }
            }
            if f.capped_seconds > 0 {
                f.mean_ratio_to_cap = Some(ratio_sum / f.capped_seconds as f64);
            }
            pairs.push(f);
        }
        let links_shed = self
            .coord
            .peer_overlays()
            .map(|o| o.region_caps().shed)
            .sum();
        Some(PolicyFigures {
            steps: m
                .applied
                .iter()
                .map(|(t, r)| match r {
                    Ok(n) => format!("{t:.1} s: {n} rules in force"),
                    Err(e) => format!("{t:.1} s: refused, {e}"),
                })
                .collect(),
            pairs,
            links_shed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{validate_step, PolicyStep};
    use crate::scenario::Scenario;

    fn scenario() -> Scenario {
        let mut sc: Scenario = toml::from_str(
            r#"
name = "t"
seed = 1
duration_s = 30
data_plane = "blocks"
[stream]
rate_kbps = 2000
[[regions]]
name = "eu"
[[regions]]
name = "us"
[latency]
matrix_ms = [[8, 45], [45, 8]]
[[node_classes]]
name = "S"
role = "origin"
region = "eu"
capacity = 10
uplink_kbps = { kind = "fixed", value = 20000 }
"#,
        )
        .expect("parses");
        sc.policies.clear();
        sc
    }

    fn step(text: &str) -> PolicyStep {
        PolicyStep {
            at_s: 5.0,
            text: text.into(),
        }
    }

    #[test]
    fn a_policy_step_naming_an_unknown_region_or_out_of_the_run_is_refused_with_the_line() {
        let sc = scenario();
        let cap = "[[network.link_cap]]\nname = \"c\"\nregions = [\"eu\", \"us\"]\ncap_mbps = 60\n";
        assert_eq!(validate_step(&sc, &step(cap)), Ok(()));
        let e = validate_step(&sc, &step(&cap.replace("\"us\"", "\"asia\""))).unwrap_err();
        assert!(e.starts_with("text, line 3"), "{e}");
        assert!(e.contains("asia"), "{e}");
        let late = PolicyStep {
            at_s: 31.0,
            text: cap.into(),
        };
        assert!(validate_step(&sc, &late).is_err());
    }
}
