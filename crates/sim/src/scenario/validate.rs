//! Checks a parsed scenario once, before anything runs (X5): every error names the
//! field (`node_classes[2].capacity`, `faults[0].until_s`, ...) and says why.

use super::{ClassRole, DataPlane, NodeClass, Scenario};
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;
use tiercast_netmodel::{Distribution, Regions};

#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("cannot read the scenario: {0}")]
    Io(String),
    #[error("scenario does not parse: {0}")]
    Parse(String),
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    #[error("{file}: {inner}")]
    InFile {
        file: String,
        inner: Box<ScenarioError>,
    },
}

impl ScenarioError {
    pub fn in_file(self, path: &Path) -> Self {
        ScenarioError::InFile {
            file: path.display().to_string(),
            inner: Box::new(self),
        }
    }
}

pub(super) fn bad(field: impl Into<String>, why: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// Label of node `i` (0-based) of a class: the class name with `i + 1` appended,
/// or the bare name for a class of one (`S`, `P11`, `P12`, ...).
pub fn class_label(name: &str, count: u32, i: u32) -> String {
    if count == 1 {
        name.to_string()
    } else {
        format!("{name}{}", i + 1)
    }
}

pub(super) fn time(field: String, v: f64, max: f64) -> Result<(), ScenarioError> {
    if v.is_finite() && v >= 0.0 && v <= max {
        Ok(())
    } else {
        Err(bad(field, format!("must be between 0 and {max} (got {v})")))
    }
}

pub(super) fn dist(field: String, d: &Distribution) -> Result<(), ScenarioError> {
    d.validate().map_err(|e| bad(field, e.to_string()))
}

pub(super) fn placement(
    field: &str,
    region: &Option<String>,
    weights: &Option<BTreeMap<String, f64>>,
    regions: &Regions,
) -> Result<(), ScenarioError> {
    if region.is_some() && weights.is_some() {
        return Err(bad(
            format!("{field}.region_weights"),
            "give either region or region_weights, not both",
        ));
    }
    if let Some(r) = region {
        if regions.id(r).is_none() {
            return Err(bad(
                format!("{field}.region"),
                format!("unknown region {r:?} (regions: {:?})", regions.names()),
            ));
        }
    }
    if let Some(w) = weights {
        for (r, x) in w {
            if regions.id(r).is_none() {
                return Err(bad(
                    format!("{field}.region_weights"),
                    format!("unknown region {r:?}"),
                ));
            }
            if !(x.is_finite() && *x >= 0.0) {
                return Err(bad(
                    format!("{field}.region_weights.{r}"),
                    "must be a number >= 0",
                ));
            }
        }
        if w.values().sum::<f64>() <= 0.0 {
            return Err(bad(
                format!("{field}.region_weights"),
                "weights must not all be zero",
            ));
        }
    }
    Ok(())
}

impl Scenario {
    /// The regions and their latency / loss, as the network model takes them.
    pub fn build_regions(&self) -> Result<Regions, ScenarioError> {
        let names: Vec<String> = self.regions.iter().map(|r| r.name.clone()).collect();
        let matrix = match &self.latency.matrix_ms {
            Some(m) => m.clone(),
            None if names.len() == 1 => vec![vec![0.0]],
            None => {
                return Err(bad(
                    "latency.matrix_ms",
                    format!("required with {} regions", names.len()),
                ))
            }
        };
        Regions::new(
            names,
            &matrix,
            self.latency.jitter_ms,
            self.network.loss,
            self.network.loss_matrix.as_deref(),
        )
        .map_err(|e| bad("regions", e.to_string()))
    }

    /// Labels of every origin and relay, in creation order.
    pub fn class_labels(&self) -> Vec<String> {
        self.node_classes
            .iter()
            .flat_map(|c| (0..c.count).map(move |i| class_label(&c.name, c.count, i)))
            .collect()
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0 && self.duration_s <= 864_000.0) {
            return Err(bad(
                "duration_s",
                "must be > 0 and at most 864000 (10 days)",
            ));
        }
        let dur = self.duration_s;
        if let Some(s) = self.steady_from_s {
            time("steady_from_s".into(), s, dur)?;
        }
        self.validate_stream()?;
        self.validate_second_stream()?;
        let regions = self.build_regions()?;
        if let Some(r) = &self.network.coordinator_region {
            if regions.id(r).is_none() {
                return Err(bad(
                    "network.coordinator_region",
                    format!("unknown region {r:?}"),
                ));
            }
        }
        if self.network.link_timeout_ms == 0 {
            return Err(bad("network.link_timeout_ms", "must be > 0"));
        }
        if self.network.uplink_queue_limit_ms == 0 {
            return Err(bad("network.uplink_queue_limit_ms", "must be > 0"));
        }
        self.validate_classes(&regions)?;
        self.validate_strategy()?;
        let v = &self.viewers;
        dist("viewers.uplink_kbps".into(), &v.uplink_kbps)?;
        for (i, r) in self.regions.iter().enumerate() {
            if let Some(d) = &r.viewer_uplink_kbps {
                dist(format!("regions[{i}].viewer_uplink_kbps"), d)?;
            }
        }
        dist("viewers.downlink_kbps".into(), &v.downlink_kbps)?;
        if v.buffer_blocks < 8 {
            return Err(bad("viewers.buffer_blocks", "must be >= 8"));
        }
        if !(0.0..=1.0).contains(&v.premium_fraction) {
            return Err(bad("viewers.premium_fraction", "must be within 0..=1"));
        }
        if v.networks_per_region > 256 {
            return Err(bad("viewers.networks_per_region", "must be <= 256"));
        }
        if v.label.is_empty() {
            return Err(bad("viewers.label", "must not be empty"));
        }
        if self.peers_mode() {
            self.peer_config()
                .validate()
                .map_err(|e| bad("peers", e.trim_start_matches("peers.")))?;
            if self.peers.buffer_blocks < 8 {
                return Err(bad("peers.buffer_blocks", "must be >= 8"));
            }
            if self.peer_heartbeat_ms() == 0 {
                return Err(bad("peers.heartbeat_interval_ms", "must be > 0"));
            }
        }
        for (i, a) in self.arrivals.iter().enumerate() {
            self.validate_arrival(&format!("arrivals[{i}]"), a, &regions)?;
        }
        for (i, f) in self.faults.iter().enumerate() {
            self.validate_fault(&format!("faults[{i}]"), f, &regions)?;
        }
        if self.policies.len() > usize::from(u16::MAX) {
            return Err(bad("policies", "at most 65535 steps"));
        }
        for (i, p) in self.policies.iter().enumerate() {
            crate::policies::validate_step(self, p)
                .map_err(|e| bad(format!("policies[{i}]"), e))?;
        }
        Ok(())
    }

    fn validate_second_stream(&self) -> Result<(), ScenarioError> {
        let Some(s) = &self.second_stream else {
            return Ok(());
        };
        if !tiercast_proto::ids::valid_channel_name(&s.channel) {
            return Err(bad(
                "second_stream.channel",
                "must be 1-64 chars of A-Za-z0-9_-",
            ));
        }
        if s.channel == self.stream.channel {
            return Err(bad(
                "second_stream.channel",
                "must differ from stream.channel",
            ));
        }
        if self.data_plane != DataPlane::Blocks {
            return Err(bad("second_stream", "needs data_plane = \"blocks\""));
        }
        Ok(())
    }

    fn validate_stream(&self) -> Result<(), ScenarioError> {
        let s = &self.stream;
        if s.rate_kbps == 0 {
            return Err(bad("stream.rate_kbps", "must be > 0"));
        }
        if !(188..=4_000_000).contains(&s.block_bytes) {
            return Err(bad("stream.block_bytes", "must be between 188 and 4000000"));
        }
        if !tiercast_proto::ids::valid_channel_name(&s.channel) {
            return Err(bad("stream.channel", "must be 1-64 chars of A-Za-z0-9_-"));
        }
        if s.keyframe_interval_ms == 0 {
            return Err(bad("stream.keyframe_interval_ms", "must be > 0"));
        }
        if self.runs_playout() {
            // The peers' playout stage waits this long behind a gap (`playout_books.rs`).
            crate::playout_books::stage_config(self.playout_deadline_ms)
                .validate()
                .map_err(|e| bad("playout_deadline_ms", e))?;
        }
        if self.data_plane == DataPlane::Blocks {
            let window = self.playout_deadline_ms * 1000 / self.block_interval_us();
            if window > 200 {
                return Err(bad(
                    "playout_deadline_ms",
                    format!(
                        "spans {window} blocks at this rate and block size; at most 200 are tracked \
                         per viewer (shorten the deadline or use larger blocks)"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_classes(&self, regions: &Regions) -> Result<(), ScenarioError> {
        let mut origins = 0;
        let mut relays = 0u64;
        for (i, c) in self.node_classes.iter().enumerate() {
            let f = format!("node_classes[{i}]");
            if c.name.is_empty() {
                return Err(bad(format!("{f}.name"), "must not be empty"));
            }
            if self.node_classes[..i].iter().any(|o| o.name == c.name) {
                return Err(bad(
                    format!("{f}.name"),
                    format!("class {:?} defined twice", c.name),
                ));
            }
            self.validate_class(&f, c, regions)?;
            match c.role {
                ClassRole::Origin => origins += c.count,
                ClassRole::Relay => relays += c.count as u64,
            }
        }
        if origins != 1 {
            return Err(bad(
                "node_classes",
                format!("exactly one origin node is needed (found {origins})"),
            ));
        }
        if relays == 0 && !self.peers_mode() {
            return Err(bad(
                "node_classes",
                "at least one relay class is needed (or viewers.role = \"peer\")",
            ));
        }
        if relays > 1_000_000 {
            return Err(bad("node_classes", "at most 1000000 relays"));
        }
        Ok(())
    }

    fn validate_class(
        &self,
        f: &str,
        c: &NodeClass,
        regions: &Regions,
    ) -> Result<(), ScenarioError> {
        match c.role {
            ClassRole::Origin if c.tier != 0 => {
                return Err(bad(format!("{f}.tier"), "an origin is tier 0"))
            }
            ClassRole::Relay if c.tier == 0 || c.tier == u8::MAX => {
                return Err(bad(format!("{f}.tier"), "relay tiers are 1..=254"))
            }
            _ => {}
        }
        if c.count == 0 {
            return Err(bad(format!("{f}.count"), "must be >= 1"));
        }
        if c.capacity == 0 {
            return Err(bad(format!("{f}.capacity"), "must be >= 1"));
        }
        let max = c
            .max_threshold
            .unwrap_or(self.strategy.max_threshold)
            .min(c.capacity);
        let max = if max == 0 { c.capacity } else { max };
        if let Some(m) = c.max_threshold {
            if m > c.capacity {
                return Err(bad(
                    format!("{f}.max_threshold"),
                    format!("{m} exceeds capacity {}", c.capacity),
                ));
            }
        }
        let min = c.min_threshold.unwrap_or(self.strategy.min_threshold);
        if c.role == ClassRole::Relay && min > max {
            return Err(bad(
                format!("{f}.min_threshold"),
                format!("min threshold {min} exceeds the max threshold {max}"),
            ));
        }
        placement(f, &c.region, &c.region_weights, regions)?;
        dist(format!("{f}.uplink_kbps"), &c.uplink_kbps)?;
        if let Some(d) = &c.downlink_kbps {
            dist(format!("{f}.downlink_kbps"), d)?;
        }
        if c.buffer_blocks.is_some_and(|b| b < 8) {
            return Err(bad(format!("{f}.buffer_blocks"), "must be >= 8"));
        }
        Ok(())
    }

    fn validate_strategy(&self) -> Result<(), ScenarioError> {
        let s = &self.strategy;
        if s.parents_per_relay == 0 || s.parents_per_relay > 8 {
            return Err(bad("strategy.parents_per_relay", "must be 1..=8"));
        }
        if s.heartbeat_interval_ms == 0 {
            return Err(bad("strategy.heartbeat_interval_ms", "must be > 0"));
        }
        if s.heartbeat_timeout_ms <= s.heartbeat_interval_ms {
            return Err(bad(
                "strategy.heartbeat_timeout_ms",
                "must exceed heartbeat_interval_ms",
            ));
        }
        if self.viewer_heartbeat_ms() == 0 {
            return Err(bad("strategy.viewer_heartbeat_interval_ms", "must be > 0"));
        }
        if s.predict_delta_t_ms.is_some_and(|d| d != 0 && d < 10) {
            return Err(bad(
                "strategy.predict_delta_t_ms",
                "must be 0 (off) or >= 10 (rates are updated every ΔT/10)",
            ));
        }
        self.coordinator_config()
            .validate()
            .map_err(|e| bad("strategy", e))?;
        if s.watch_retry_ms == 0 {
            return Err(bad("strategy.watch_retry_ms", "must be > 0"));
        }
        Ok(())
    }

    pub fn class(&self, name: &str) -> Option<&NodeClass> {
        self.node_classes.iter().find(|c| c.name == name)
    }
}
