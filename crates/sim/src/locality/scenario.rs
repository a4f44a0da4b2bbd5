//! The locality scenario file (issue 14): regions with a one-way latency
//! matrix, jitter and loss (the network model's, crates/netmodel), a node
//! count and arrival window, the leader crashes to inject, and overrides of
//! the locality machine's settings. TOML, every table `deny_unknown_fields`.

use serde::Deserialize;
use std::path::Path;
use tiercast_locality::LocalityConfig;
use tiercast_netmodel::Regions;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalityScenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub seed: u64,
    pub duration_s: f64,
    pub regions: Vec<RegionSpec>,
    pub latency: Latency,
    pub locality: Population,
    /// Overrides of `LocalityConfig` fields (seed 004's figures by default).
    #[serde(default)]
    pub config: ConfigOverrides,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    pub name: String,
    /// Share of the nodes in this region (relative; default 1).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// One-way latency in ms, row = sender's region.
    pub matrix_ms: Vec<Vec<f64>>,
    #[serde(default)]
    pub jitter_ms: f64,
    #[serde(default)]
    pub loss: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    pub nodes: u32,
    /// Joins spread uniformly at random over `[0, arrival_s]`.
    pub arrival_s: f64,
    /// Region of the rendezvous point (a node of its own that joins no group).
    pub rendezvous_region: String,
    /// When the leader crashes happen (s).
    #[serde(default)]
    pub crash_at_s: Option<f64>,
    /// The leaders of this many of the largest groups crash (succession).
    #[serde(default)]
    pub leader_crashes: u32,
    /// In this many further groups the whole leadership list crashes (election).
    #[serde(default)]
    pub leaderless_crashes: u32,
    /// Nodes (ids 1..=flooders) that never join and flood every leader with
    /// Measure from `flood_from_s` on (L2's rate limits at scale).
    #[serde(default)]
    pub flooders: u32,
    /// Measure per second each flooder sends to each leader.
    #[serde(default = "d_flood")]
    pub flood_per_s: u32,
    #[serde(default)]
    pub flood_from_s: f64,
}

fn d_flood() -> u32 {
    1000
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigOverrides {
    pub tolerance_ms: Option<u64>,
    pub max_leader_rtt_ms: Option<u64>,
    pub target_links: Option<usize>,
    pub probes_per_measure: Option<u8>,
    pub merge_rtt_ms: Option<u64>,
    pub measure_rate_total: Option<u32>,
    pub measure_rate_per_peer: Option<u32>,
}

impl LocalityScenario {
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let sc: LocalityScenario = toml::from_str(text).map_err(|e| e.to_string())?;
        sc.validate()?;
        Ok(sc)
    }

    fn validate(&self) -> Result<(), String> {
        self.regions()?;
        if self.locality.flooders >= self.locality.nodes {
            return Err("locality.flooders must be fewer than locality.nodes".into());
        }
        if self.locality.flood_per_s > 100_000 {
            return Err("locality.flood_per_s must be at most 100000".into());
        }
        if self.locality.nodes == 0 {
            return Err("locality.nodes must be at least 1".into());
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0) {
            return Err("duration_s must be positive".into());
        }
        if !(self.locality.arrival_s.is_finite() && self.locality.arrival_s >= 0.0) {
            return Err("locality.arrival_s must be 0 or more".into());
        }
        if self
            .regions
            .iter()
            .any(|r| !(r.weight.is_finite() && r.weight >= 0.0))
            || self.regions.iter().all(|r| r.weight == 0.0)
        {
            return Err("regions: weights must be ≥ 0 and not all 0".into());
        }
        if !self
            .regions
            .iter()
            .any(|r| r.name == self.locality.rendezvous_region)
        {
            return Err(format!(
                "locality.rendezvous_region {:?} is not a region",
                self.locality.rendezvous_region
            ));
        }
        self.config().validate().map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn regions(&self) -> Result<Regions, String> {
        Regions::new(
            self.regions.iter().map(|r| r.name.clone()).collect(),
            &self.latency.matrix_ms,
            self.latency.jitter_ms,
            self.latency.loss,
            None,
        )
        .map_err(|e| e.to_string())
    }

    pub fn config(&self) -> LocalityConfig {
        let o = &self.config;
        let d = LocalityConfig::default();
        LocalityConfig {
            tolerance_ms: o.tolerance_ms.unwrap_or(d.tolerance_ms),
            max_leader_rtt_ms: o.max_leader_rtt_ms.unwrap_or(d.max_leader_rtt_ms),
            target_links: o.target_links.unwrap_or(d.target_links),
            probes_per_measure: o.probes_per_measure.unwrap_or(d.probes_per_measure),
            merge_rtt_ms: o.merge_rtt_ms.unwrap_or(d.merge_rtt_ms),
            measure_rate_total: o.measure_rate_total.unwrap_or(d.measure_rate_total),
            measure_rate_per_peer: o.measure_rate_per_peer.unwrap_or(d.measure_rate_per_peer),
            ..d
        }
    }
}
