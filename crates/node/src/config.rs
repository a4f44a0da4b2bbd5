//! Node configuration: plain data with defaults that work on one machine; units in
//! the field names; checked once by [`NodeConfig::validate`].

use tiercast_proto::{NodeId, NodeRole, Tier};

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub role: NodeRole,
    pub tier: Tier,
    pub region: String,
    /// Most children (child nodes + local viewers) over all channels (V8).
    pub capacity: u32,
    /// Audio-only viewers (C3) taken beyond `capacity`, over all channels: they are
    /// a few percent of a full viewer's bytes, so they do not count as load.
    pub audio_capacity: u32,
    /// DISTRIBUTE when the machine-wide load reaches this (V4). 0 means `capacity`.
    pub max_threshold: u32,
    /// CONSOLIDATE when contracting and the load falls below this (V5).
    pub min_threshold: u32,
    pub heartbeat_interval_ms: u64,
    /// Send heartbeats to the coordinator (D8). Relays and origins must; a protocol
    /// viewer may stay silent (the simulator's million viewers do).
    pub send_heartbeats: bool,
    /// Blocks kept per channel.
    pub buffer_blocks: usize,
    /// Check the origin signature of every block (X3). The simulator may turn it off.
    pub verify_blocks: bool,
    /// Blocks already found genuine, shared with the other nodes of this
    /// process (the simulator's: each block is hashed and checked once, not
    /// once per node; the same answer). `None` in a real node.
    pub verify_memo: Option<tiercast_proto::VerifyMemo>,
    /// A protocol viewer retries `Watch` after a refusal, this long later.
    pub watch_retry_ms: u64,
    /// A connected parent silent this long while another parent delivers is reported
    /// as downgraded (V10); 0 turns the watch off.
    pub parent_silence_ms: u64,
    /// A tier-1 relay whose parent (the channel's origin) delivered and then
    /// stays silent this long reports it at once (`LinkDowngrade`), even with
    /// no other parent to compare with: the coordinator probes the origin and,
    /// when it does not answer, promotes the channel's backup (D7, issue 12).
    /// Well under a GOP: the cutter cuts a block at every PAT (ffmpeg's muxer
    /// writes one every ~100 ms), and a false alarm costs one probe. 0 turns
    /// it off.
    pub origin_silence_ms: u64,
    /// A protocol viewer whose stream stays silent this long (since its last block,
    /// or since it logged in) gives up on its relay and asks the coordinator again;
    /// 0 (the default) leaves it to the link timeout. Only for streams that never
    /// pause: a paused origin would send every viewer back to the coordinator.
    pub viewer_silence_ms: u64,
    /// V7: ΔT of the look-ahead — a relay sends DISTRIBUTE when at its login/logoff
    /// rates it would reach the max threshold within this time, and CONSOLIDATE only
    /// while log-offs exceed log-ins. 0 turns it off (thresholds only).
    pub predict_delta_t_ms: u64,
    /// Lazy links (D3): a parent announces its highest seq to lazy children this
    /// often, and a child pulls what it misses.
    pub have_interval_ms: u64,
    /// A block announced by a lazy parent and still missing this long after is
    /// asked for (`Want`); asked again after as long.
    pub pull_delay_ms: u64,
    /// Upload a peer offers the overlay (kbit/s), sent at registration.
    pub uplink_kbps: u32,
    /// A premium viewer (sent at registration; C3's `premium_first`).
    pub premium: bool,
    /// Its device class (sent at registration; C3's client rules).
    pub device_class: tiercast_proto::DeviceClass,
    /// A peer's block that waited this long for its uplink cap is dropped rather
    /// than sent late (the child pulls it elsewhere, D3); 0: never. 1 s: 1.5 s
    /// and 2 s keep an interior peer's switch backlog from being dropped for
    /// its whole subtree (`full-recompute` seed 33), but in a flash crowd's
    /// steady overload they only delay every block further down the trees
    /// (`tight-strong-125` seed 37: admitted 0.9987 at 1 s, 0.9923 at 1.5 s,
    /// 0.9937 at 2 s; docs/BENCHMARKS.md).
    pub uplink_max_wait_ms: u64,
    /// Blocks sent in answer to `Want`s are limited to this share of
    /// `uplink_kbps` (a token bucket; unlimited when no uplink is declared), so
    /// repairs never crowd out the pushed substreams.
    pub repair_share: f64,
    /// Most channels one node carries at once.
    pub max_channels: usize,
    /// Drawn by the driver at every process start (0 in the simulator): tells the
    /// coordinator a restarted node from a retried registration.
    pub incarnation: u64,
    /// The coordinator manager this node belongs to (D7, X7), sent in its
    /// Register and every heartbeat; 0 by default.
    pub manager_id: u16,
    /// Where this node can be reached (advertised at registration).
    pub addr: String,
    pub http_addr: String,
    /// Measure startup, stored lag and stored bytes per channel for the report
    /// ([`crate::timings`]); `None` (the default, the simulator): not measured.
    pub timings: Option<crate::timings::TimingsConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: NodeId(1),
            role: NodeRole::Relay,
            tier: 1,
            region: String::new(),
            capacity: 100,
            audio_capacity: 400,
            max_threshold: 0,
            min_threshold: 2,
            heartbeat_interval_ms: 1000,
            send_heartbeats: true,
            buffer_blocks: 512,
            verify_blocks: true,
            verify_memo: None,
            watch_retry_ms: 500,
            parent_silence_ms: 2000,
            origin_silence_ms: 300,
            viewer_silence_ms: 0,
            predict_delta_t_ms: 0,
            have_interval_ms: 200,
            pull_delay_ms: 1000,
            uplink_kbps: 0,
            premium: false,
            device_class: tiercast_proto::DeviceClass::Unspecified,
            uplink_max_wait_ms: 1000,
            repair_share: 0.2,
            incarnation: 0,
            manager_id: 0,
            max_channels: 64,
            addr: String::new(),
            http_addr: String::new(),
            timings: None,
        }
    }
}

impl NodeConfig {
    /// The uplink cap a peer that declared an uplink runs (C4); none otherwise.
    pub fn uplink(&self) -> Option<crate::uplink::UplinkConfig> {
        (self.role == NodeRole::Peer && self.uplink_kbps > 0).then(|| {
            let mut up = crate::uplink::UplinkConfig::new(self.uplink_kbps);
            up.max_wait_ms = self.uplink_max_wait_ms;
            up
        })
    }

    pub fn max_threshold(&self) -> u32 {
        if self.max_threshold == 0 {
            self.capacity
        } else {
            self.max_threshold
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.id == tiercast_proto::COORDINATOR_ID {
            return Err("node id 0 is the coordinator's".into());
        }
        if self.role != NodeRole::Viewer && !self.send_heartbeats {
            return Err("relays and origins must send heartbeats".into());
        }
        if self.role == NodeRole::Relay && self.capacity == 0 {
            return Err("a relay needs capacity >= 1".into());
        }
        if self.max_threshold() > self.capacity && self.role == NodeRole::Relay {
            return Err(format!(
                "max_threshold {} exceeds capacity {}",
                self.max_threshold(),
                self.capacity
            ));
        }
        if self.min_threshold > self.max_threshold() && self.role == NodeRole::Relay {
            return Err("min_threshold must not exceed max_threshold".into());
        }
        if self.predict_delta_t_ms != 0 && self.predict_delta_t_ms < 10 {
            return Err(format!(
                "predict_delta_t_ms must be 0 (off) or >= 10 (rates are updated every ΔT/10), got {}",
                self.predict_delta_t_ms
            ));
        }
        if self.heartbeat_interval_ms == 0 {
            return Err("heartbeat_interval_ms must be > 0".into());
        }
        if self.role == NodeRole::Peer && self.uplink_kbps == 0 && self.capacity > 0 {
            return Err("a peer that serves others needs uplink_kbps > 0".into());
        }
        if let Some(up) = self.uplink() {
            up.validate()?;
        }
        if !(self.repair_share.is_finite() && self.repair_share > 0.0 && self.repair_share <= 1.0) {
            return Err("repair_share must be in (0, 1]".into());
        }
        if self.have_interval_ms == 0 || self.pull_delay_ms == 0 {
            return Err("have_interval_ms and pull_delay_ms must be > 0".into());
        }
        if self.buffer_blocks < 8 {
            return Err("buffer_blocks must be >= 8".into());
        }
        Ok(())
    }
}
