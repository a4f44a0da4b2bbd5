//! Coordinator configuration: plain data, defaults that work on one machine.

#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Parents each relay takes from the tier above (V9); more when the tier has them.
    pub parents_per_relay: usize,
    pub heartbeat_interval_ms: u64,
    /// A node silent this long is presumed crashed.
    pub heartbeat_timeout_ms: u64,
    /// `Retry-After` given to viewers when the whole entry tier is full.
    pub retry_after_s: u32,
    /// Most channels and nodes the coordinator accepts.
    pub max_channels: usize,
    pub max_nodes: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            parents_per_relay: 1,
            heartbeat_interval_ms: 1000,
            heartbeat_timeout_ms: 3500,
            retry_after_s: 2,
            max_channels: 1024,
            max_nodes: 2_000_000,
        }
    }
}

impl CoordinatorConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.parents_per_relay == 0 || self.parents_per_relay > 8 {
            return Err("parents_per_relay must be 1..=8".into());
        }
        if self.heartbeat_interval_ms == 0 {
            return Err("heartbeat_interval_ms must be > 0".into());
        }
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms {
            return Err("heartbeat_timeout_ms must exceed heartbeat_interval_ms".into());
        }
        Ok(())
    }
}
